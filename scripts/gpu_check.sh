#!/usr/bin/env bash
# The one prepared check for a GPU machine: at most 8 minutes on a cold machine (the limits
# of the steps below, with their kill grace, add up to 470 s; tests/test_gpu_check_script.py keeps it so).
#
#   bash scripts/gpu_check.sh            # from anywhere; runs in the repository root
#
# 1. GPU and library versions (nvidia-smi, NumPy, CuPy, PyTorch), and why CUDA is not usable if it is not
# 2. a CUDA smoke test of the core (randn, matmul, backward) on every GPU, cuda:1 included
# 3. the test suite on the GPU in true float32: pytest --device cuda (slow tests skipped), the
#    CUDA-specific files first, so a cold kernel cache cannot keep them from running
# 4. the ResNet-18 benchmark, ours (CuPy + our kernels) vs PyTorch (cuDNN), FP32 then TF32,
#    train and eval images/s at batch 256 and 128 and the peak GPU memory of both
# 5. a one-epoch ResNet-18 run of the example on synthetic CIFAR-format data (seconds per epoch)
#
# Everything is also written to ${OUT:-/tmp}/gpu_check.log.  TF32 (CUPY_TF32=1) is given to
# the TF32 benchmark alone: the correctness suite checks float32 results to float32 accuracy,
# which TF32's 10-bit mantissa does not have.  Each step has its own time limit, so one hang
# cannot eat the whole budget; the exit status is that of the test suite.

set -u
cd "$(dirname "$0")/.."
LOG_DIR="${OUT:-/tmp}"
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/gpu_check.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1

export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # works without `pip install -e .`
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$LOG_DIR/cupy_cache}"  # kept between runs on a warm machine
START=$SECONDS
section() { printf '\n=== %s  [t=%ss] ===\n' "$*" "$((SECONDS - START))"; }

section "GPU and versions"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,compute_cap --format=csv 2>/dev/null ||
  echo "nvidia-smi not found"
timeout 25 python3 - <<'PY'
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
    import torch

    print("torch.cuda.is_available():", torch.cuda.is_available())
except Exception:  # noqa: BLE001
    pass
import minitorch_nndl as mt

print("minitorch_nndl", mt.__version__, "| mt.cuda.is_available():", mt.cuda.is_available(),
      "| devices:", mt.cuda.device_count(), "|", mt.backend.cuda_unavailable_reason() or "usable")
PY

section "smoke test (core on every GPU)"
timeout 40 python3 - <<'PY'
import time

import numpy as np

import minitorch_nndl as mt

if not mt.cuda.is_available():
    raise SystemExit(f"CUDA not usable: {mt.backend.cuda_unavailable_reason()}")
mt.manual_seed(0)
for index in range(mt.cuda.device_count()):
    device = f"cuda:{index}"
    x = mt.randn(1024, 1024, device=device, requires_grad=True)
    w = mt.randn(1024, 1024, device=device, requires_grad=True)
    t0 = time.perf_counter()
    loss = ((x @ w).relu().mean() + (x * 2 + x).mean())
    loss.backward()
    mt.cuda.synchronize(device)
    ref = np.maximum(x.numpy() @ w.numpy(), 0).mean() + 3 * x.numpy().mean()
    print(f"{device}: loss {loss.item():.6f} (numpy {ref:.6f}) in {1e3 * (time.perf_counter() - t0):.0f} ms;"
          f" grads on {mt.backend.device_of(x.grad)}, {x.grad.dtype}")
PY

section "pytest --device cuda, float32 (slow tests skipped)"
# Fewer hypothesis draws than on the CPU: each new shape/dtype combination compiles CuPy kernels.
HYPOTHESIS_MAX_EXAMPLES=8 timeout -s INT -k 15 185 python3 -m pytest --device cuda -q -m "not slow" \
  --durations=10 -p no:cacheprovider \
  tests/test_device_path.py tests/test_conv.py tests/test_batchnorm.py tests/test_pool.py tests/test_loss.py \
  tests/test_ops_gradcheck.py tests
TEST_RC=$?
echo "pytest exit status: $TEST_RC"

section "benchmark FP32: ours vs PyTorch (cuDNN, TF32 off)"
timeout -s INT -k 10 60 python3 benchmarks/bench_resnet18.py --device cuda --precision fp32 \
  --batch-sizes 256 128 --steps 5 --rounds 4 --warmup 3 --min-seconds 0 || echo "benchmark exited with status $?"

section "benchmark TF32: ours (CUPY_TF32=1) vs PyTorch (TF32 on)"
CUPY_TF32=1 timeout -s INT -k 10 55 python3 benchmarks/bench_resnet18.py --device cuda --precision tf32 \
  --batch-sizes 256 128 --steps 5 --rounds 4 --warmup 3 --min-seconds 0 || echo "benchmark exited with status $?"

section "example: ResNet18, 1 epoch on 10,000 synthetic CIFAR-format images (--final) at batch 128, TF32"
# CIFAR-10 cannot be downloaded on the device machine, so the example runs on data written in
# the official format; the epoch's seconds and images/s it prints are the figures that matter.
timeout -s INT -k 10 60 bash -c '
  python3 -c "from minitorch_nndl.data.synthetic import write_fake_cifar10; write_fake_cifar10(\"/tmp/fake_cifar\", n_per_batch=2000, archive=False)" &&
  CUPY_TF32=1 python3 examples/resnet18_cifar10.py --device cuda --data-dir /tmp/fake_cifar --epochs 1 \
    --batch-size 128 --final --quiet --out "${OUT:-/tmp}/example_run"' || echo "example exited with status $?"

section "done"
echo "log: $LOG"
exit "$TEST_RC"
