"""Data parallelism on this machine: gradient all-reduce bandwidth, and training img/s on ranks vs threads.

Two measurements, each run as ``mpiexec`` jobs that this script starts itself:

1. **All-reduce**: one float32 bucket of 1, 2, 4, ... 64 MB, ``MPI_Allreduce`` in place (the
   buffer interface DistributedDataParallel uses), median of ``--repeats`` calls after a warm-up.
   Reported as time per call, *algorithm bandwidth* (bucket bytes / time) and *bus bandwidth*
   (``2 (p-1)/p`` x algorithm bandwidth: the bytes a ring all-reduce moves through each rank,
   comparable across ``p``).  With ``--gpu`` the same over NCCL, plus the time of ResNet18's
   44.7 MB of gradients.
2. **Training**: images/s of a small ResNet's training step (forward, backward, SGD) on the same
   global batch, as 1 rank x 1 thread, 1 rank x 2 threads, and 2 ranks x 1 thread each (DDP with
   SyncBatchNorm, batch per rank = global / 2).  Scaling efficiency = img/s of p ranks /
   (p x img/s of 1 rank x 1 thread); the last column compares the 2 ranks with 2 threads.

Run: ``python3 benchmarks/bench_allreduce.py [--ranks 2] [--repeats 20] [--steps 6] [--batch 64]``
(``python3 -m pip install -e ".[mpi]"`` first).  Numbers depend on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES_MB = (1, 2, 4, 8, 16, 32, 64)
RESNET18_GRAD_MB = 44.7  # 11.17M float32 parameters


def _median_seconds(fn, repeats: int, sync=lambda: None) -> float:
    fn()  # warm-up (and, on NCCL, the communicator's creation)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def rank_allreduce(args: argparse.Namespace) -> None:
    """One rank of the all-reduce job: rank 0 prints a JSON list of rows."""
    import minitorch_nndl as mt
    from minitorch_nndl import distributed as dist

    w = dist.init()
    device = dist.device_for_rank("cuda") if args.gpu else "cpu"
    sync = (lambda: mt.backend.synchronize(device)) if args.gpu else (lambda: None)
    rows = []
    sizes = [*SIZES_MB, RESNET18_GRAD_MB] if args.gpu else SIZES_MB
    for mb in sizes:
        with mt.backend.device_context(device):  # allocate and reduce on this rank's GPU
            bucket = mt.backend.xp_for(device).ones(int(mb * 2**20) // 4, dtype=np.float32)
            dist.barrier()
            seconds = _median_seconds(lambda b=bucket: dist.all_reduce(b), args.repeats, sync)
        algo = bucket.nbytes / seconds / 1e9
        rows.append({"MB": mb, "ms": 1e3 * seconds, "algo_GBs": algo, "bus_GBs": algo * 2 * (w.size - 1) / w.size})
    if w.rank == 0:
        print(json.dumps(rows))


def _step_setup(batch: int):
    import minitorch_nndl as mt
    from minitorch_nndl import distributed as dist
    from minitorch_nndl import models, nn, optim

    mt.manual_seed(0)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(models.resnet10(num_classes=10, width=16, stem="cifar"))
    model = dist.DistributedDataParallel(model)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(dist.get_rank())
    x = mt.tensor(rng.standard_normal((batch, 3, 32, 32)).astype(np.float32))
    y = mt.tensor(rng.integers(0, 10, batch))
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        model.sync_gradients()
        opt.step()

    return step


def rank_train(args: argparse.Namespace) -> None:
    """One rank of a training job; rank 0 prints the global img/s."""
    from minitorch_nndl import distributed as dist

    w = dist.init()
    step = _step_setup(args.batch // w.size)
    step()  # warm-up
    dist.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    dist.barrier()
    seconds = time.perf_counter() - start
    if w.rank == 0:
        print(json.dumps({"img_s": args.steps * args.batch / seconds}))


def _launch(ranks: int, threads: int, argv: list[str]) -> str:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "MINITORCH_NUM_THREADS": str(threads)}
    cmd = ["mpiexec", "-n", str(ranks), sys.executable, str(Path(__file__).resolve()), *argv]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20, help="all-reduce calls timed per bucket size")
    p.add_argument("--steps", type=int, default=6, help="training steps timed per configuration")
    p.add_argument("--batch", type=int, default=64, help="global batch of the training measurement")
    gpu_help = "all-reduce CUDA buckets over NCCL, one GPU per rank (--ranks at most the GPUs)"
    p.add_argument("--gpu", action="store_true", help=gpu_help)
    p.add_argument("--rank-job", choices=["allreduce", "train"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rank_job == "allreduce":
        return rank_allreduce(args)
    if args.rank_job == "train":
        return rank_train(args)
    if shutil.which("mpiexec") is None:
        raise SystemExit('error: no mpiexec on PATH: python3 -m pip install -e ".[mpi]"')
    common = ["--repeats", str(args.repeats), "--steps", str(args.steps), "--batch", str(args.batch)]
    gpu = ["--gpu"] if args.gpu else []
    rows = json.loads(_launch(args.ranks, 1, ["--rank-job", "allreduce", *common, *gpu]))
    backend = "NCCL" if args.gpu else "MPI (MPICH, shared memory)"
    print(f"## all-reduce of one float32 bucket, {args.ranks} ranks, {backend}, median of {args.repeats}\n")
    print("| bucket | time | algorithm bandwidth | bus bandwidth 2(p-1)/p |")
    print("| ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['MB']:g} MB | {r['ms']:.2f} ms | {r['algo_GBs']:.2f} GB/s | {r['bus_GBs']:.2f} GB/s |")
    if args.gpu:
        return None
    train = ["--rank-job", "train", *common]
    one = json.loads(_launch(1, 1, train))["img_s"]
    threads = json.loads(_launch(1, args.ranks, train))["img_s"]
    ranks = json.loads(_launch(args.ranks, 1, train))["img_s"]
    print(f"\n## training step, ResNet10 width 16 (CIFAR stem), global batch {args.batch}, {args.steps} steps\n")
    print("| configuration | img/s | scaling efficiency vs 1 x 1 | vs 1 rank x threads |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| 1 rank x 1 thread | {one:.1f} | 100% | |")
    print(f"| 1 rank x {args.ranks} threads | {threads:.1f} | {100 * threads / (args.ranks * one):.0f}% | 100% |")
    print(
        f"| {args.ranks} ranks x 1 thread (DDP + SyncBN) | {ranks:.1f} | {100 * ranks / (args.ranks * one):.0f}% | "
        f"{100 * ranks / threads:.0f}% |"
    )
    return None


if __name__ == "__main__":
    main()
