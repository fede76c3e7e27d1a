"""ResNet18 (CIFAR stem, 10 classes) throughput: minitorch_nndl vs PyTorch, on the CPU or a GPU.

Measures, for each batch size:

* train: forward + cross-entropy + backward + SGD update (momentum 0.9, weight decay 5e-4)
* eval:  forward in eval mode without a graph

and prints images/s for each framework and the ratio (PyTorch / ours).  PyTorch is used
only when importable, with as many threads as CPUs (``torch.set_num_threads(os.cpu_count())``);
NumPy uses its BLAS's own threads (set ``OMP_NUM_THREADS`` etc. to change them).
With ``--device cuda`` ours runs on CuPy (our im2col kernels + cuBLAS; set ``CUPY_TF32=1``
for TF32) and PyTorch on its own CUDA kernels (cuDNN), each timed with a device sync.

    python benchmarks/bench_resnet18.py --batch-sizes 128 32 --steps 3 --warmup 1
    CUPY_TF32=1 python benchmarks/bench_resnet18.py --device cuda --batch-sizes 256 128 --steps 20
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import minitorch_nndl as mt
from minitorch_nndl import models, nn
from minitorch_nndl.optim import SGD


def _time(fn: Callable[[], None], steps: int, warmup: int, sync: Callable[[], None]) -> float:
    """Seconds per call of ``fn`` (the mean over ``steps`` calls after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return (time.perf_counter() - start) / steps


def _throughput(
    model: Any,
    train_step: Callable[[], None],
    eval_step: Callable[[], None],
    batch: int,
    steps: int,
    warmup: int,
    sync: Callable[[], None],
) -> tuple[float, float]:
    """(train, eval) images/s of one framework's model (both have train()/eval())."""
    model.train()
    train = _time(train_step, steps, warmup, sync)
    model.eval()
    evaluation = _time(eval_step, steps, warmup, sync)
    return batch / train, batch / evaluation


# ------------------------------------------------------------------ minitorch_nndl


def bench_ours(batch: int, steps: int, warmup: int, device: str) -> tuple[float, float]:
    mt.manual_seed(0)
    model = models.resnet18(device=device)
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal((batch, 3, 32, 32), dtype=np.float32), device=device)
    y = mt.tensor(rng.integers(0, 10, batch), device=device)
    criterion = nn.CrossEntropyLoss()
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    sync = lambda: mt.backend.synchronize(x.device)  # noqa: E731

    def train_step() -> None:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()

    def eval_step() -> None:
        with mt.no_grad():
            model(x)

    return _throughput(model, train_step, eval_step, batch, steps, warmup, sync)


# ------------------------------------------------------------------ PyTorch


def _torch_resnet18_cifar(torch: Any) -> Any:
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, inplanes: int, planes: int, stride: int) -> None:
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = tnn.Sequential(
                    tnn.Conv2d(inplanes, planes, 1, stride, bias=False), tnn.BatchNorm2d(planes)
                )

        def forward(self, x: Any) -> Any:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    layers = [tnn.Conv2d(3, 64, 3, 1, 1, bias=False), tnn.BatchNorm2d(64), tnn.ReLU(inplace=True)]
    inplanes = 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(inplanes, planes, stride), Block(planes, planes, 1)]
        inplanes = planes
    layers += [tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(512, 10)]
    return tnn.Sequential(*layers)


def bench_torch(torch: Any, batch: int, steps: int, warmup: int, device: str) -> tuple[float, float]:
    torch.manual_seed(0)
    model = _torch_resnet18_cifar(torch).to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    criterion = torch.nn.CrossEntropyLoss()
    sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None

    def train_step() -> None:
        opt.zero_grad()
        criterion(model(x), y).backward()
        opt.step()

    def eval_step() -> None:
        with torch.no_grad():
            model(x)

    return _throughput(model, train_step, eval_step, batch, steps, warmup, sync)


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each measurement")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (ours on CuPy, PyTorch on CUDA)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    args = parser.parse_args(argv)

    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
        except ImportError:
            torch = None
    device = mt.backend.normalize_device(args.device)
    info = f"ResNet18-CIFAR on {device}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    info += f", numpy {np.__version__}"
    if torch is not None:
        info += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    print(info)
    print(f"steps={args.steps} warmup={args.warmup}; images/s (higher is better)\n")
    header = f"{'batch':>5}  {'mode':<5}  {'minitorch_nndl':>14}"
    if torch is not None:
        header += f"  {'pytorch':>10}  {'torch/ours':>10}"
    print(header)
    for batch in args.batch_sizes:
        ours = bench_ours(batch, args.steps, args.warmup, device)
        ref = bench_torch(torch, batch, args.steps, args.warmup, device) if torch is not None else None
        for i, mode in enumerate(("train", "eval")):
            line = f"{batch:>5}  {mode:<5}  {ours[i]:>14.1f}"
            if ref is not None:
                line += f"  {ref[i]:>10.1f}  {ref[i] / ours[i]:>10.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
