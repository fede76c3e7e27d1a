#!/usr/bin/env bash
# The one prepared check for a GPU machine (at most about 8 minutes: 60 s + 300 s + 90 s limits).
#
#   bash scripts/gpu_check.sh            # from anywhere; runs in the repository root
#
# 1. GPU and library versions (nvidia-smi, NumPy, CuPy, PyTorch, pytest, hypothesis)
# 2. a 10-second CUDA smoke test of the core (randn, matmul, backward, sync)
# 3. the test suite on the GPU:  pytest --device cuda -q -x tests  (slow tests skipped)
# 4. the ResNet-18 benchmark on the GPU: ours (CuPy + our kernels) vs PyTorch (cuDNN)
# 5. a one-epoch ResNet-18 run of the example on synthetic CIFAR-format data (images/s)
#
# Everything is also written to ${OUT:-/tmp}/gpu_check.log.  CUPY_TF32=1 lets CuPy's
# float32 matmuls use TF32 tensor cores, as PyTorch does by default for convolutions.
# Each step has its own time limit, so one hang cannot eat the whole budget; the exit
# status is that of the test suite.

set -u
cd "$(dirname "$0")/.."
LOG_DIR="${OUT:-/tmp}"
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/gpu_check.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1

export CUPY_TF32=1
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # works without `pip install -e .`
START=$SECONDS
section() { printf '\n=== %s  [t=%ss] ===\n' "$*" "$((SECONDS - START))"; }

section "GPU"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,compute_cap --format=csv 2>/dev/null ||
  nvidia-smi 2>/dev/null || echo "nvidia-smi not found"

section "versions"
timeout 60 python3 - <<'PY'
import importlib
import sys

print("python", sys.version.split()[0])
for name in ("numpy", "cupy", "torch", "pytest", "hypothesis"):
    try:
        module = importlib.import_module(name)
        print(f"{name:10s} {getattr(module, '__version__', '?')}")
    except Exception as exc:  # noqa: BLE001
        print(f"{name:10s} MISSING ({type(exc).__name__}: {exc})")
try:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    print("cupy sees", cupy.cuda.runtime.getDeviceCount(), "GPU(s):", props["name"].decode(),
          "| CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(), "| driver", cupy.cuda.runtime.driverGetVersion())
except Exception as exc:  # noqa: BLE001
    print("cupy cannot use a GPU:", exc)
try:
    import torch

    print("torch.cuda.is_available():", torch.cuda.is_available())
except Exception:  # noqa: BLE001
    pass
import minitorch_nndl as mt

print("minitorch_nndl", mt.__version__, "| mt.cuda.is_available():", mt.cuda.is_available())
PY

section "smoke test (core on cuda)"
timeout 60 python3 - <<'PY'
import time

import numpy as np

import minitorch_nndl as mt
from minitorch_nndl import backend

if not mt.cuda.is_available():
    raise SystemExit("CUDA not available to minitorch_nndl: skipping the smoke test")
mt.manual_seed(0)
x = mt.randn(1024, 1024, device="cuda", requires_grad=True)
w = mt.randn(1024, 1024, device="cuda", requires_grad=True)
for step in range(3):
    t0 = time.perf_counter()
    x.grad = w.grad = None
    loss = (x @ w).relu().mean()
    loss.backward()
    backend.synchronize("cuda:0")
    print(f"step {step}: loss {loss.item():.6f} in {1e3 * (time.perf_counter() - t0):.1f} ms"
          f" (grad dtype {x.grad.dtype}, device {backend.device_of(x.grad)})")
ref = np.maximum(x.numpy() @ w.numpy(), 0).mean()
print("loss vs numpy float32:", abs(loss.item() - float(ref)))
PY

section "pytest --device cuda (slow tests skipped)"
timeout -s INT -k 20 300 python3 -m pytest --device cuda -q -x -m "not slow" --durations=15 tests
TEST_RC=$?
echo "pytest exit status: $TEST_RC"

section "benchmark"
timeout -s INT -k 10 90 python3 benchmarks/bench_resnet18.py --device cuda --batch-sizes 256 128 --steps 20 --warmup 3 ||
  echo "benchmark exited with status $?"

section "example: ResNet18, 1 epoch on 8,000 synthetic CIFAR-format images"
# CIFAR-10 cannot be downloaded on the device machine, so the example runs on data written in
# the official format; the images/s it prints is the figure that matters here.
timeout -s INT -k 15 150 python3 -c "from minitorch_nndl.data.synthetic import write_fake_cifar10; write_fake_cifar10('/tmp/fake_cifar', n_per_batch=2000, archive=False)" &&
  timeout -s INT -k 15 150 python3 examples/resnet18_cifar10.py --device cuda --data-dir /tmp/fake_cifar --epochs 1 \
    --subset 8000 --quiet --out "${OUT:-/tmp}/example_run" ||
  echo "example exited with status $?"

section "done"
echo "log: $LOG"
exit "$TEST_RC"
