"""ResNet18 (CIFAR stem, 10 classes) throughput and memory: minitorch_nndl vs PyTorch, CPU or GPU.

For each batch size (default 128 and 32) and each framework:

* train: forward + cross-entropy + backward + SGD update (momentum 0.9, weight decay 5e-4)
* eval:  forward in eval mode without a graph, every round of it inside one inference block
  (ours ``mt.inference_mode()``, PyTorch ``torch.inference_mode()``), as an evaluation
  pass over a test set runs: the weights are fixed there, and ours prepares each
  convolution's filters (Winograd's U, the batch norm folded in) on the first batch only.
  Ours evaluates as the Trainer's ``evaluate`` does, through ``nn.ProcessReplicas`` (with
  the batch threads on: the model forked once per core, each process a share of the batch;
  ``--ours-eval threads`` calls the model itself, its batch split over threads)
* memory: the peak resident memory (RSS) of the process after its training steps, and
  how much of it the steps added above the process with its model built (on a GPU:
  the peak GPU memory, ours as CuPy's pool holds it, PyTorch's reserved and allocated)

Each framework runs in its own subprocess (so one framework's memory never inflates the
other's), both alive at once, and the driver alternates *rounds* of ``--steps`` steps
between them (ours then PyTorch, then PyTorch then ours, ...), each round timed with one
device sync, until every framework has had ``--rounds`` rounds and ``--min-seconds`` of
timing: the machine's speed drifts by 20% within seconds on a shared host, and rounds
a fraction of a second apart see the same drift.  The table gives the median over the
rounds and the ratio of the medians, ours / PyTorch (above 1: ours is faster or, for
memory, larger).  Both do ``--warmup`` untimed steps first (their second step still
pays for first-touch allocations).  The header names the CPU, the BLAS
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
from typing import Any, NamedTuple

import numpy as np

import minitorch_nndl as mt
from minitorch_nndl import models, nn
from minitorch_nndl.kernels import parallel
from minitorch_nndl.optim import SGD


def _rss_bytes() -> tuple[float, float]:
    """(current, peak) resident memory of this process in bytes (Linux: /proc; else the peak twice)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # KiB on Linux
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"), peak
    except OSError:
        return peak, peak


class Setup(NamedTuple):
    """One framework's ResNet18 at one batch size, ready to step."""

    model: Any
    train_step: Callable[[], None]
    eval_step: Callable[[], None]
    sync: Callable[[], None]
    gpu_memory: Callable[[], dict[str, float]]
    info: dict[str, Any]


# ------------------------------------------------------------------ minitorch_nndl


def bench_ours(batch: int, args: argparse.Namespace) -> Setup:
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
    inference = mt.inference_mode()  # entered by the first evaluation step, left by a training step
    replicas: list[nn.ProcessReplicas] = []  # made in that block (processes: one per core)

    def train_step() -> None:
        if mt.is_inference_mode():
            while replicas:
                replicas.pop().close()
            inference.__exit__(None, None, None)
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()

    def eval_step() -> None:
        if not mt.is_inference_mode():
            inference.__enter__()
            if args.ours_eval == "processes":
                replicas.append(nn.ProcessReplicas(model.eval()))
        (replicas[0] if replicas else model)(x)

    def gpu_memory() -> dict[str, float]:  # CuPy's pool keeps every block it needed: its size is the peak
        if device == "cpu":
            return {}
        return {"gpu": float(mt.backend.xp_for(device).get_default_memory_pool().total_bytes())}

    return Setup(model, train_step, eval_step, sync, gpu_memory, {})


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


def bench_torch(batch: int, args: argparse.Namespace) -> Setup:
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
        with torch.inference_mode():
            model(x)

    def gpu_memory() -> dict[str, float]:
        if device != "cuda":
            return {}
        reserved, allocated = torch.cuda.max_memory_reserved(), torch.cuda.max_memory_allocated()
        return {"gpu": float(reserved), "gpu_allocated": float(allocated)}

    info = {"threads": torch.get_num_threads(), "version": torch.__version__}
    return Setup(model, train_step, eval_step, sync, gpu_memory, info)


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
    """One framework at one batch size in this subprocess, serving the driver line by line:
    ``train`` / ``eval`` run ``--steps`` steps (after ``--warmup`` untimed ones the first
    time) and answer their seconds; ``memory`` answers the resident memory after training."""
    setup = (bench_ours if args.worker == "ours" else bench_torch)(args.worker_batch, args)
    before, _ = _rss_bytes()  # the process with its framework, model, optimizer and batch
    warmed: set[str] = set()
    _answer({"ready": True, **setup.info})
    for line in sys.stdin:
        command = line.strip()
        if command in ("train", "eval"):
            step = setup.train_step if command == "train" else setup.eval_step
            setup.model.train(command == "train")
            if command not in warmed:
                for _ in range(args.warmup):
                    step()
                warmed.add(command)
            setup.sync()
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            setup.sync()
            _answer({"seconds": time.perf_counter() - start})
        elif command == "memory":
            _, peak = _rss_bytes()
            _answer({"peak_rss": peak, "step_rss": peak - before, **setup.gpu_memory()})
        else:
            return


def _answer(reply: dict[str, Any]) -> None:
    print(json.dumps(reply), flush=True)


class _Worker:
    """The driver's end of one framework's worker subprocess."""

    def __init__(self, framework: str, batch: int, argv: list[str]) -> None:
        self.framework = framework
        command = [sys.executable, os.path.abspath(__file__), *argv, "--worker", framework]
        command += ["--worker-batch", str(batch)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = self.ask(None)

    def ask(self, command: str | None) -> dict[str, Any]:
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.framework} worker stopped (its error is above)")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait()


PAUSE_SECONDS = 0.1
"""Between two rounds: PyTorch's OpenMP threads spin for a moment after its round, and
would take cores from ours if ours started at once."""


def _paired_rounds(frameworks: list[str], batch: int, argv: list[str], args: argparse.Namespace) -> dict:
    """Images/s of every round of training and of evaluation, and the training memory,
    for each framework at this batch size, the frameworks alternating round by round."""
    workers = [_Worker(framework, batch, argv) for framework in frameworks]
    results: dict[str, dict[str, Any]] = {w.framework: {"train": [], "eval": [], **w.info} for w in workers}
    try:
        for phase in ("train", "eval"):
            seconds = dict.fromkeys(frameworks, 0.0)
            round_number = 0
            while round_number < args.rounds or min(seconds.values()) < args.min_seconds:
                order = workers if round_number % 2 == 0 else workers[::-1]
                for worker in order:
                    took = worker.ask(phase)["seconds"]
                    seconds[worker.framework] += took
                    results[worker.framework][phase].append(batch * args.steps / took)
                    time.sleep(PAUSE_SECONDS)
                round_number += 1
            if phase == "train":
                for worker in workers:
                    results[worker.framework].update(worker.ask("memory"))
    finally:
        for worker in workers:
            worker.close()
    return results


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB"


def _median(result: dict[str, Any], key: str) -> float:
    """The median over the rounds (train, eval) or the value (memory)."""
    value = result[key]
    return statistics.median(value) if isinstance(value, list) else value


def _row(label: str, ours: float, theirs: float | None, unit: Callable[[float], str]) -> str:
    line = f"{label:<34} {unit(ours):>16}"
    if theirs is not None:
        line += f" {unit(theirs):>16} {ours / theirs:>12.2f}"
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round (default 3)")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds per framework, at least (default 6)")
    parser.add_argument(
        "--min-seconds", type=float, default=4.0, help="and at least this much timing per framework (default 4)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the first round (default 3)")
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
    parser.add_argument(
        "--ours-eval",
        choices=("processes", "threads"),
        default="processes",
        help="ours: evaluate through nn.ProcessReplicas (one forked process per batch thread) or the model itself",
    )
    parser.add_argument("--worker", choices=("ours", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.batch_sizes) < 1 or args.steps < 1 or args.warmup < 0 or args.rounds < 1 or args.min_seconds < 0:
        raise SystemExit("error: --batch-sizes, --steps and --rounds must be >= 1, --warmup and --min-seconds >= 0")
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
        f"--warmup={args.warmup}",
        f"--device={args.device}",
        f"--precision={args.precision}",
    ]
    if args.no_reuse_freed_memory:
        worker_argv.append("--no-reuse-freed-memory")
    worker_argv += [f"--ours-threads={args.ours_threads}", f"--ours-eval={args.ours_eval}"]

    print(f"ResNet18-CIFAR on {device}: {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"numpy {np.__version__} with {numpy_blas()}, {parallel.blas_threads()} BLAS threads")
    if args.ours_threads == "batch":
        print(f"ours: the batch split over {os.cpu_count()} threads, BLAS single-threaded (use_batch_threads)")
    else:
        print(f"ours: GEMMs on the BLAS threads, {parallel.num_threads()} copy thread(s)")
    print(f"ours: glibc keeps freed memory (reuse_freed_memory): {not args.no_reuse_freed_memory}")
    print("eval: ours in one mt.inference_mode() block (filters prepared once), PyTorch in torch.inference_mode()")
    if args.ours_eval == "processes" and args.ours_threads == "batch" and not on_gpu:
        print(f"eval: ours through nn.ProcessReplicas, {os.cpu_count()} processes (the model forked, a share each)")
    if on_gpu:
        print(f"cupy {mt.backend.xp_for(device).__version__}, {args.precision}")
    print(
        f"rounds of {args.steps} steps, alternating, at least {args.rounds} per framework and {args.min_seconds:g} s; "
        f"warmup {args.warmup} steps; median over the rounds"
    )
    frameworks = ["ours", "torch"] if use_torch else ["ours"]
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for batch in args.batch_sizes:
        try:
            for framework, result in _paired_rounds(frameworks, batch, worker_argv, args).items():
                results[(framework, batch)] = result
        except RuntimeError as error:
            print(f"  batch {batch}: {error}", file=sys.stderr)
    torch_info = next((r for (f, _), r in results.items() if f == "torch"), None)
    if torch_info is not None:
        print(f"torch {torch_info['version']} ({int(torch_info['threads'])} threads)")
    print()
    header = f"{'ResNet18-CIFAR':<34} {'minitorch_nndl':>16}"
    if use_torch:
        header += f" {'PyTorch':>16} {'ours/PyTorch':>12}"
    print(header)
    per_second = lambda v: f"{v:.1f} img/s"  # noqa: E731
    for batch in args.batch_sizes:
        ours = results.get(("ours", batch))
        theirs = results.get(("torch", batch))
        if ours is None:
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
