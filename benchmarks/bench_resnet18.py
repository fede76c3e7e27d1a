"""ResNet18 (CIFAR stem, 10 classes) throughput: minitorch_nndl vs PyTorch, on the CPU or a GPU.

Measures, for each batch size:

* train: forward + cross-entropy + backward + SGD update (momentum 0.9, weight decay 5e-4)
* eval:  forward in eval mode without a graph

and prints images/s for each framework and the ratio (PyTorch / ours).  PyTorch is used
only when importable, with as many threads as CPUs (``torch.set_num_threads(os.cpu_count())``);
NumPy uses its BLAS's own threads (set ``OMP_NUM_THREADS`` etc. to change them).

With ``--device cuda`` ours runs on CuPy (our im2col kernels + cuBLAS) and PyTorch on its
own CUDA kernels (cuDNN), each timed with a device sync, and the peak GPU memory of the
training steps is printed too (ours: what CuPy's memory pool holds; PyTorch: its peak
reserved memory).  ``--precision fp32`` (the default) keeps every matmul and convolution
in true float32 on both sides (PyTorch's cuDNN would otherwise use TF32 for convolutions);
``--precision tf32`` lets both use TF32 tensor cores (``CUPY_TF32=1`` for CuPy, which
must be set before CuPy is imported: this script sets it itself).

    python3 benchmarks/bench_resnet18.py --batch-sizes 128 32 --steps 3 --warmup 1
    python3 benchmarks/bench_resnet18.py --device cuda --batch-sizes 256 128 --steps 20
    python3 benchmarks/bench_resnet18.py --device cuda --precision tf32 --batch-sizes 256 128
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


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB"


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


def ours_peak_memory() -> float:
    """Bytes CuPy's memory pool holds: it keeps every block it ever needed, so after the
    steps this is their peak (freed blocks are reused, not returned)."""
    return float(mt.backend.xp_for("cuda:0").get_default_memory_pool().total_bytes())


def ours_reset_memory() -> None:
    mt.backend.xp_for("cuda:0").get_default_memory_pool().free_all_blocks()


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
    parser.add_argument(
        "--precision", choices=("fp32", "tf32"), default="fp32", help="GPU matmul/conv precision (default fp32)"
    )
    args = parser.parse_args(argv)
    if min(args.batch_sizes) < 1 or args.steps < 1 or args.warmup < 0:
        raise SystemExit("error: --batch-sizes and --steps must be >= 1, --warmup >= 0")
    if args.precision == "tf32":
        os.environ["CUPY_TF32"] = "1"  # read by CuPy when it is imported, which has not happened yet
    try:
        device = mt.backend.normalize_device(args.device)
    except (RuntimeError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    on_gpu = device != "cpu"

    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
            if on_gpu and not torch.cuda.is_available():
                print("note: this PyTorch has no CUDA; timing ours alone")
                torch = None
        except ImportError:
            torch = None
    if torch is not None and on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.benchmark = True
    info = f"ResNet18-CIFAR on {device}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    info += f", numpy {np.__version__}"
    if on_gpu:
        info += f", cupy {mt.backend.xp_for(device).__version__}, {args.precision}"
    if torch is not None:
        info += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    print(info)
    print(f"steps={args.steps} warmup={args.warmup}; images/s (higher is better)\n")
    header = f"{'batch':>5}  {'mode':<5}  {'minitorch_nndl':>14}"
    if torch is not None:
        header += f"  {'pytorch':>10}  {'torch/ours':>10}"
    print(header)
    for batch in args.batch_sizes:
        if on_gpu:
            ours_reset_memory()
        ours = bench_ours(batch, args.steps, args.warmup, device)
        memory = f"peak GPU memory, train+eval at batch {batch}: ours {_gib(ours_peak_memory())}" if on_gpu else ""
        ref = None
        if torch is not None:
            if on_gpu:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            ref = bench_torch(torch, batch, args.steps, args.warmup, device)
            if on_gpu:
                memory += f", pytorch {_gib(torch.cuda.max_memory_reserved())} reserved"
                memory += f" ({_gib(torch.cuda.max_memory_allocated())} allocated)"
        for i, mode in enumerate(("train", "eval")):
            line = f"{batch:>5}  {mode:<5}  {ours[i]:>14.1f}"
            if ref is not None:
                line += f"  {ref[i]:>10.1f}  {ref[i] / ours[i]:>10.2f}"
            print(line, flush=True)
        if memory:
            print(f"       {memory}", flush=True)


if __name__ == "__main__":
    main()
