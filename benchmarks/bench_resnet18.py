"""ResNet18 (CIFAR stem, 10 classes) throughput and memory: minitorch_nndl vs PyTorch, CPU or GPU.

For each batch size (default 128 and 32) and each framework:

* train: forward + cross-entropy + backward + SGD update (momentum 0.9, weight decay 5e-4)
* eval:  forward in eval mode without a graph
* memory: the peak resident memory (RSS) of the process after its training steps, and
  how much of it the steps added above the process with its model built (on a GPU:
  the peak GPU memory, ours as CuPy's pool holds it, PyTorch's reserved and allocated)

Every measurement runs in a fresh subprocess (so one framework's memory never inflates
the other's, and each starts cold), and the frameworks alternate: with ``--repeats 2``
(the default) the order is ours, PyTorch, then PyTorch, ours, so load from elsewhere
hits both; the table gives the median over the repeats and the ratio ours / PyTorch
(above 1: ours is faster or, for memory, larger).  The header names the CPU, the BLAS
NumPy uses and the OpenBLAS kernels it picked (``OPENBLAS_CORETYPE`` in the
environment forces a kernel family: it is printed, because it can halve the GEMM speed).

PyTorch runs with as many threads as CPUs (``torch.set_num_threads(os.cpu_count())``);
ours by default splits each convolution's batch over one thread per CPU with a
single-threaded BLAS (``minitorch_nndl.kernels.parallel.use_batch_threads()``;
``--ours-threads blas`` leaves the threads to NumPy's BLAS instead), and calls
``minitorch_nndl.backend.reuse_freed_memory()`` (glibc keeps freed memory for the next
step) unless ``--no-reuse-freed-memory``.

With ``--device cuda`` ours runs on CuPy and PyTorch on its own CUDA kernels (cuDNN), each
timed with a device sync.  ``--precision fp32`` (the default) keeps every matmul and
convolution in true float32 on both sides; ``--precision tf32`` lets both use TF32
tensor cores (``CUPY_TF32=1`` for CuPy, set by this script before CuPy is imported).

    python3 benchmarks/bench_resnet18.py --batch-sizes 128 32 --steps 3
    python3 benchmarks/bench_resnet18.py --device cuda --batch-sizes 256 128 --steps 20
    python3 benchmarks/bench_resnet18.py --device cuda --precision tf32 --batch-sizes 256 128
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import minitorch_nndl as mt
from minitorch_nndl import models, nn
from minitorch_nndl.kernels import parallel
from minitorch_nndl.optim import SGD


def _time(fn: Callable[[], None], steps: int, warmup: int, sync: Callable[[], None], min_seconds: float) -> float:
    """Seconds per call of ``fn``: the mean over rounds of ``steps`` calls (after ``warmup``
    calls), as many rounds as ``min_seconds`` of timing needs (a 0.15 s eval step timed 3
    times is at the mercy of the machine's hiccups); one device sync per round."""
    for _ in range(warmup):
        fn()
    sync()
    calls = 0
    start = time.perf_counter()
    while calls == 0 or time.perf_counter() - start < min_seconds:
        for _ in range(steps):
            fn()
        calls += steps
        sync()
    return (time.perf_counter() - start) / calls


def _rss_bytes() -> tuple[float, float]:
    """(current, peak) resident memory of this process in bytes (Linux: /proc; else the peak twice)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # KiB on Linux
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"), peak
    except OSError:
        return peak, peak


def _measure(
    model: Any,
    train_step: Callable[[], None],
    eval_step: Callable[[], None],
    batch: int,
    args: argparse.Namespace,
    sync: Callable[[], None],
) -> dict[str, float]:
    """Images/s of training and evaluation, and the memory the training steps needed."""
    before, _ = _rss_bytes()  # the process with its framework, model, optimizer and batch
    model.train()
    train = _time(train_step, args.steps, args.warmup, sync, args.min_seconds)
    _, peak = _rss_bytes()
    model.eval()
    evaluation = _time(eval_step, args.steps, args.warmup, sync, args.min_seconds)
    return {"train": batch / train, "eval": batch / evaluation, "peak_rss": peak, "step_rss": peak - before}


# ------------------------------------------------------------------ minitorch_nndl


def bench_ours(batch: int, args: argparse.Namespace) -> dict[str, float]:
    if not args.no_reuse_freed_memory:
        mt.backend.reuse_freed_memory()
    if args.ours_threads == "batch":
        parallel.use_batch_threads()
    device = mt.backend.normalize_device(args.device)
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

    result = _measure(model, train_step, eval_step, batch, args, sync)
    if device != "cpu":  # CuPy's pool keeps every block it needed: its size is the peak
        result["gpu"] = float(mt.backend.xp_for(device).get_default_memory_pool().total_bytes())
    return result


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


def _import_torch(args: argparse.Namespace) -> Any:
    import torch  # noqa: PLC0415  (only in the PyTorch subprocess)

    torch.set_num_threads(os.cpu_count() or 1)
    if args.device != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.benchmark = True
    return torch


def bench_torch(batch: int, args: argparse.Namespace) -> dict[str, float]:
    torch = _import_torch(args)
    device = "cuda" if args.device.startswith("cuda") else "cpu"
    torch.manual_seed(0)
    model = _torch_resnet18_cifar(torch).to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    criterion = torch.nn.CrossEntropyLoss()
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None

    def train_step() -> None:
        opt.zero_grad()
        criterion(model(x), y).backward()
        opt.step()

    def eval_step() -> None:
        with torch.no_grad():
            model(x)

    result = _measure(model, train_step, eval_step, batch, args, sync)
    if device == "cuda":
        result["gpu"] = float(torch.cuda.max_memory_reserved())
        result["gpu_allocated"] = float(torch.cuda.max_memory_allocated())
    result["threads"] = torch.get_num_threads()
    result["version"] = torch.__version__
    return result


# ------------------------------------------------------------------ the machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numpy_blas() -> str:
    """NumPy's BLAS, its version and (OpenBLAS) the kernels it chose at run time."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # an older NumPy without mode="dicts"
        return "unknown BLAS"
    kernels = parallel.blas_kernels()
    if kernels is not None:
        text += f", {kernels} kernels"
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if coretype:
        text += f" (forced by OPENBLAS_CORETYPE={coretype})"
    return text


# ------------------------------------------------------------------ main


def _worker(args: argparse.Namespace) -> None:
    """One framework at one batch size, in this (sub)process: one JSON line on stdout."""
    bench = bench_ours if args.worker == "ours" else bench_torch
    print(json.dumps(bench(args.worker_batch, args)), flush=True)


def _run_worker(framework: str, batch: int, argv: list[str]) -> dict[str, float] | None:
    command = [sys.executable, os.path.abspath(__file__), *argv, "--worker", framework, "--worker-batch", str(batch)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  {framework} at batch {batch} failed:\n{done.stderr.strip()[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB"


def _median(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def _row(label: str, ours: float, theirs: float | None, unit: Callable[[float], str]) -> str:
    line = f"{label:<34} {unit(ours):>16}"
    if theirs is not None:
        line += f" {unit(theirs):>16} {ours / theirs:>12.2f}"
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (at least)")
    parser.add_argument(
        "--min-seconds", type=float, default=2.0, help="time each measurement for at least this long (default 2)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each measurement")
    parser.add_argument("--repeats", type=int, default=2, help="subprocesses per framework and batch size")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (ours on CuPy, PyTorch on CUDA)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    parser.add_argument(
        "--no-reuse-freed-memory", action="store_true", help="leave glibc's malloc settings alone in ours"
    )
    parser.add_argument(
        "--precision", choices=("fp32", "tf32"), default="fp32", help="GPU matmul/conv precision (default fp32)"
    )
    parser.add_argument(
        "--ours-threads",
        choices=("batch", "blas"),
        default="batch",
        help="ours: batch (each thread a part of the batch, BLAS single-threaded: "
        "parallel.use_batch_threads()) or blas (only the GEMMs threaded, by BLAS)",
    )
    parser.add_argument("--worker", choices=("ours", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.batch_sizes) < 1 or args.steps < 1 or args.warmup < 0 or args.repeats < 1 or args.min_seconds < 0:
        raise SystemExit("error: --batch-sizes, --steps and --repeats must be >= 1, --warmup and --min-seconds >= 0")
    if args.precision == "tf32":
        os.environ["CUPY_TF32"] = "1"  # read by CuPy when it is imported, which has not happened yet
    if args.worker:
        _worker(args)
        return
    try:
        device = mt.backend.normalize_device(args.device)
    except (RuntimeError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    on_gpu = device != "cpu"
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch  # noqa: PLC0415  (only to see that it is there; it runs in subprocesses)

            if on_gpu and not torch.cuda.is_available():
                print("note: this PyTorch has no CUDA; timing ours alone")
                use_torch = False
        except ImportError:
            use_torch = False
    worker_argv = [
        f"--steps={args.steps}",
        f"--min-seconds={args.min_seconds}",
        f"--warmup={args.warmup}",
        f"--device={args.device}",
        f"--precision={args.precision}",
    ]
    if args.no_reuse_freed_memory:
        worker_argv.append("--no-reuse-freed-memory")
    worker_argv.append(f"--ours-threads={args.ours_threads}")

    print(f"ResNet18-CIFAR on {device}: {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"numpy {np.__version__} with {numpy_blas()}, {parallel.blas_threads()} BLAS threads")
    if args.ours_threads == "batch":
        print(f"ours: the batch split over {os.cpu_count()} threads, BLAS single-threaded (use_batch_threads)")
    else:
        print(f"ours: GEMMs on the BLAS threads, {parallel.num_threads()} copy thread(s)")
    print(f"ours: glibc keeps freed memory (reuse_freed_memory): {not args.no_reuse_freed_memory}")
    if on_gpu:
        print(f"cupy {mt.backend.xp_for(device).__version__}, {args.precision}")
    print(
        f"steps={args.steps} (and >= {args.min_seconds:g} s) warmup={args.warmup} repeats={args.repeats} "
        "(median; each a fresh subprocess)"
    )
    frameworks = ["ours", "torch"] if use_torch else ["ours"]
    results: dict[tuple[str, int], list[dict[str, float]]] = {(f, b): [] for f in frameworks for b in args.batch_sizes}
    for repeat in range(args.repeats):
        order = frameworks if repeat % 2 == 0 else frameworks[::-1]
        for batch in args.batch_sizes:
            for framework in order:
                result = _run_worker(framework, batch, worker_argv)
                if result is not None:
                    results[(framework, batch)].append(result)
    torch_info = next((r for (f, _), rs in results.items() if f == "torch" for r in rs), None)
    if torch_info is not None:
        print(f"torch {torch_info['version']} ({int(torch_info['threads'])} threads)")
    print()
    header = f"{'ResNet18-CIFAR':<34} {'minitorch_nndl':>16}"
    if use_torch:
        header += f" {'PyTorch':>16} {'ours/PyTorch':>12}"
    print(header)
    per_second = lambda v: f"{v:.1f} img/s"  # noqa: E731
    for batch in args.batch_sizes:
        ours = results[("ours", batch)]
        theirs = results[("torch", batch)] if use_torch else []
        if not ours:
            continue
        rows = [("train", per_second), ("eval", per_second), ("peak_rss", _gib), ("step_rss", _gib)]
        if on_gpu:
            rows.append(("gpu", _gib))
        labels = {
            "train": f"train, batch {batch}",
            "eval": f"eval, batch {batch}",
            "peak_rss": f"peak RSS of training, batch {batch}",
            "step_rss": "  of which the steps added",
            "gpu": f"peak GPU memory, batch {batch}",
        }
        for key, unit in rows:
            print(_row(labels[key], _median(ours, key), _median(theirs, key) if theirs else None, unit), flush=True)
        if on_gpu and theirs:
            print(f"{'  PyTorch allocated (of reserved)':<34} {'':>16} {_gib(_median(theirs, 'gpu_allocated')):>16}")


if __name__ == "__main__":
    main()
