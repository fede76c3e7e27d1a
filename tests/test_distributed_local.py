"""Data parallelism in one process: the sampler, a world of size 1, SyncBatchNorm's math, the wrapper.

What needs real ranks is in tests/test_distributed.py; everything here runs without MPI.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import distributed as dist
from minitorch_nndl import nn
from minitorch_nndl.data import DataLoader, DistributedSampler, TensorDataset
from minitorch_nndl.distributed.ddp import buckets_of
from minitorch_nndl.nn.sync_batchnorm import sync_batch_norm


# ---------------------------------------------------------------------------- the sampler
@pytest.mark.parametrize("n, p", [(10, 3), (12, 4), (2, 3), (7, 1)])
def test_sampler_shards_are_disjoint_cover_the_data_and_are_padded_to_one_length(n, p):
    shards = [DistributedSampler(range(n), p, r, seed=5).indices() for r in range(p)]
    assert len({len(s) for s in shards}) == 1 and all(len(s) == -(-n // p) for s in shards)
    counts = np.bincount(np.concatenate(shards), minlength=n)
    assert (counts >= 1).all()  # together they cover the data set
    assert (counts - 1).sum() == -n % p  # and only the padding (to a multiple of p) repeats a sample


def test_sampler_without_padding_sees_every_sample_once_and_drop_last_cuts():
    shards = [DistributedSampler(range(10), 3, r, shuffle=False, pad=False).indices() for r in range(3)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(10))
    assert [len(s) for s in shards] == [4, 3, 3]
    assert [len(DistributedSampler(range(10), 3, r, pad=False)) for r in range(3)] == [4, 3, 3]
    cut = [DistributedSampler(range(10), 3, r, drop_last=True).indices() for r in range(3)]
    assert [len(s) for s in cut] == [3, 3, 3] and len(set(np.concatenate(cut).tolist())) == 9


def test_sampler_order_changes_with_set_epoch_and_is_the_same_on_every_rank():
    a, b = DistributedSampler(range(20), 2, 0, seed=1), DistributedSampler(range(20), 2, 1, seed=1)
    first = (list(a), list(b))
    a.set_epoch(1)
    b.set_epoch(1)
    assert (list(a), list(b)) != first
    assert sorted(list(a) + list(b)) == list(range(20))  # epoch 1's shards again cover the data
    a.set_epoch(0)
    assert list(a) == first[0]  # deterministic in (seed, epoch)
    assert list(DistributedSampler(range(20), 2, 0, shuffle=False)) == list(range(0, 20, 2))


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        DistributedSampler(range(4), 2, 2)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(range(4), 0, 0)
    with pytest.raises(ValueError, match="epoch"):
        DistributedSampler(range(4), 1, 0).set_epoch(-1)


def test_sampler_defaults_to_the_world():
    s = DistributedSampler(range(5))
    assert (s.num_replicas, s.rank) == (1, 0) and sorted(s) == list(range(5))


def test_dataloader_takes_the_sampler_sets_its_epoch_and_resumes_at_the_same_batch():
    x = np.arange(20, dtype=np.float32).reshape(20, 1)
    ds = TensorDataset(x, np.arange(20))
    sampler = DistributedSampler(ds, 2, 1, seed=3)
    loader = DataLoader(ds, batch_size=3, sampler=sampler)
    assert len(loader) == 4  # ceil(10 / 3)
    epoch0 = [b[1].data.tolist() for b in loader]
    epoch1 = [b[1].data.tolist() for b in loader]
    assert sampler.epoch == 1 and epoch0 != epoch1
    assert sum(epoch0, []) == sampler.indices(0).tolist()
    loader.load_state_dict({"seed": loader.seed, "epoch": 1, "batch_index": 2})
    assert [b[1].data.tolist() for b in loader] == epoch1[2:]
    with pytest.raises(ValueError, match="shuffle=True or a sampler"):
        DataLoader(ds, batch_size=3, shuffle=True, sampler=sampler)


def test_each_rank_gets_its_own_augmentation_randomness():
    ds = TensorDataset(np.zeros((4, 1), np.float32), np.arange(4))
    loaders = [DataLoader(ds, 2, seed=0, sampler=DistributedSampler(ds, 2, r)) for r in range(2)]
    draws = [ld.batch_rng(0, 0).integers(0, 2**30) for ld in loaders]
    assert draws[0] != draws[1]


# ---------------------------------------------------------------------------- a world of size 1
def test_a_world_of_one_needs_no_launcher_and_every_collective_is_a_no_op():
    w = dist.init()
    assert dist.is_initialized() and (w.size, dist.get_rank(), dist.get_local_rank()) == (1, 0, 0)
    a = np.array([1.0, 2.0])
    assert dist.all_reduce(a, "mean") is a and a.tolist() == [1.0, 2.0]
    t = mt.tensor([3.0])
    assert dist.broadcast(t) is t
    assert dist.all_gather(t).shape == (1, 1)
    dist.barrier()
    assert dist.device_for_rank("cuda") == "cuda" and dist.device_for_rank("cpu") == "cpu"
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(a, "prod")
    with pytest.raises(TypeError, match="floating dtype"):
        dist.all_reduce(np.array([1, 2]), "mean")
    with pytest.raises(TypeError, match="expected a Tensor, a NumPy or a CuPy array"):
        dist.all_reduce([1.0])
    with pytest.raises(ValueError, match="src must be a rank in 0..0"):
        dist.broadcast(a, src=1)


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_", "SLURM_"))}
    return subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env={**clean, **env}, timeout=60
    )


_NO_MPI4PY = "import sys; sys.modules['mpi4py'] = None\n"  # as if mpi4py were not installed


def test_importing_and_a_lone_init_never_need_mpi4py():
    out = _python(_NO_MPI4PY + "import minitorch_nndl.distributed as d; print(d.init().size)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_a_multi_rank_launch_without_mpi4py_is_one_line_with_the_fix():
    out = _python(_NO_MPI4PY + "import minitorch_nndl.distributed as d; d.init()", PMI_SIZE="2", PMI_RANK="0")
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "started as one of 2 ranks" in last and 'python3 -m pip install -e ".[mpi]"' in last


def test_init_with_an_explicit_backend_and_no_mpi4py_names_the_backend_not_a_rank_count():
    out = _python(_NO_MPI4PY + "import minitorch_nndl.distributed as d; d.init(backend='mpi')")
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode != 0 and "init(backend='mpi'), which needs mpi4py" in last and "one of 1 ranks" not in last


def test_a_wrapper_or_sampler_built_before_init_on_a_launched_rank_is_one_line():
    # Before init() every rank would see a world of 1: no weights broadcast, every rank on all the data.
    code = (
        "from minitorch_nndl import distributed as d, nn; from minitorch_nndl.data import DistributedSampler\n"
        "assert len(DistributedSampler(range(4), num_replicas=2, rank=1)) == 2  # explicit: fine\n"
        "for build in (lambda: d.DistributedDataParallel(nn.Linear(2, 2)), lambda: DistributedSampler(range(4))):\n"
        "    try:\n        build()\n    except RuntimeError as e:\n        print(e)\n"
    )
    out = _python(_NO_MPI4PY + code, PMI_SIZE="2", PMI_RANK="1")
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and len(lines) == 2, out.stderr
    assert lines[0].startswith("DistributedDataParallel: this process is one of 2 launched ranks")
    assert lines[1].startswith("DistributedSampler: this process is one of 2")
    assert all("distributed.init() has not been called: call it first" in line for line in lines)
    # a Slurm batch script of several tasks that runs one process without srun is no rank of anything
    alone = _python(_NO_MPI4PY + code, SLURM_NTASKS="4", SLURM_PROCID="0")
    assert alone.returncode == 0 and alone.stdout == "", alone.stdout + alone.stderr


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="needs mpi4py (the [mpi] extra)")
def test_a_launcher_whose_ranks_mpi_cannot_see_is_one_line_not_two_lone_runs():
    # Open MPI's mpirun with an mpi4py built on MPICH: each rank would be a world of 1, train alone
    # and write the same files as the others.
    code = "import minitorch_nndl.distributed as d; print(d.init().size)"
    out = _python(code, OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_RANK="1")
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode != 0, out.stdout
    assert "started 2 ranks (OMPI_COMM_WORLD_SIZE=2) but MPI sees a world of 1" in last and "mpiexec" in last


# ---------------------------------------------------------------------------- SyncBatchNorm's math
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 2)])
def test_sync_batch_norm_gradients_by_finite_differences(shape):
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal(shape) * 3 + 1, requires_grad=True)
    w = mt.tensor(rng.standard_normal(3) + 1, requires_grad=True)
    b = mt.tensor(rng.standard_normal(3), requires_grad=True)
    probe = mt.tensor(rng.standard_normal(shape))  # a loss that weighs every output differently
    assert mt.gradcheck(lambda x, w, b: (sync_batch_norm(x, None, None, w, b) * probe).sum(), [x, w, b])


def test_sync_batch_norm_alone_is_batch_norm_forward_backward_and_running_stats():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 3, 2, 2)) * 2 + 1
    g = rng.standard_normal(x.shape)
    results = []
    for make in (nn.BatchNorm2d, nn.SyncBatchNorm):
        mt.manual_seed(0)
        layer = make(3, dtype=mt.float64)
        xt = mt.tensor(x, requires_grad=True)
        y = layer(xt)
        (y * mt.tensor(g)).sum().backward()
        results.append([y.data, xt.grad, layer.weight.grad, layer.bias.grad, layer.running_var.data.copy()])
        # and the training path itself (what runs on several ranks), on the same input
        rm, rv = mt.zeros(3, dtype=mt.float64), mt.ones(3, dtype=mt.float64)
        xt2 = mt.tensor(x, requires_grad=True)
        y2 = sync_batch_norm(xt2, rm, rv, layer.weight, layer.bias)
        (y2 * mt.tensor(g)).sum().backward()
        np.testing.assert_allclose(y2.data, y.data, atol=1e-12)
        np.testing.assert_allclose(xt2.grad, xt.grad, atol=1e-12)
        np.testing.assert_allclose(rv.data, layer.running_var.data, atol=1e-12)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_convert_sync_batchnorm_keeps_the_tensors_and_the_checkpoint_format():
    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, momentum=0.2), nn.ReLU())
    model.eval()
    weight, running_mean = model[1].weight, model[1].running_mean
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    layer = converted[1]
    assert converted is model and isinstance(layer, nn.SyncBatchNorm)
    assert layer.weight is weight and layer.running_mean is running_mean  # the optimizer's Parameters
    assert (layer.momentum, layer.training, layer.num_features) == (0.2, False, 3)
    plain = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU())
    plain.load_state_dict(converted.state_dict())  # the same keys both ways
    x = mt.randn(5, 4)
    np.testing.assert_allclose(plain.eval()(x).data, converted(x).data)
    assert isinstance(nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(2)), nn.SyncBatchNorm)
    assert nn.SyncBatchNorm(2)(mt.randn(3, 2, 4)).shape == (3, 2, 4)  # (N, C, L) works too


# ---------------------------------------------------------------------------- the wrapper
def test_ddp_alone_behaves_as_the_module():
    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    ddp = dist.DistributedDataParallel(model)
    assert list(ddp.state_dict()) == list(model.state_dict())  # no "module." prefix
    assert [n for n, _ in ddp.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert [id(p) for p in ddp.parameters()] == [id(p) for p in model.parameters()]
    ddp.eval()
    assert not model.training and not model[1].training
    model.num_classes = 3
    assert ddp.num_classes == 3 and ddp.module is model  # what the wrapper lacks comes from the module
    x = mt.randn(5, 4)
    np.testing.assert_array_equal(ddp(x).data, model(x).data)
    ddp.load_state_dict(model.state_dict())
    ddp(x).sum().backward()
    before = [p.grad.copy() for p in model.parameters()]
    ddp.sync_gradients()  # a world of one: nothing to average
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(b, p.grad)
    assert "world_size=1" in repr(ddp)


def test_ddp_alone_leaves_the_arrays_as_they_are():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    arrays = [t.data for t in [*model.parameters(), *model.buffers()]]
    dist.DistributedDataParallel(model)  # a world of one: no broadcast, no copy
    assert all(t.data is a for t, a in zip([*model.parameters(), *model.buffers()], arrays))


def test_buckets_group_by_dtype_and_respect_the_cap():
    ts = [mt.zeros(250), mt.zeros(250), mt.zeros(10, dtype=mt.float64), mt.zeros(300), mt.zeros(2000)]
    buckets = buckets_of(ts, cap_bytes=2000)  # 250 float32 = 1000 bytes
    shapes = [[t.shape[0] for t in b] for b in buckets]
    assert shapes == [[250, 250], [300], [10], [2000]]
    assert all(len({t.dtype for t in b}) == 1 for b in buckets)
    with pytest.raises(ValueError, match="bucket_cap_mb"):
        dist.DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=0)


def test_cupy_without_an_nccl_library_is_one_clear_error(monkeypatch):
    import fakecuda

    from minitorch_nndl.distributed import nccl

    with fakecuda.activated():
        monkeypatch.setattr(sys.modules["cupy.cuda.nccl"], "available", False)  # as CuPy sets it then
        with pytest.raises(RuntimeError, match=r"could not load the NCCL library.*backend=\"mpi\""):
            nccl._nccl()


class _RankOfTwo:
    """What ``train.data_parallel.one_folder`` needs of a world: its rank, size 2 and rank 0's broadcast."""

    def __init__(self, rank: int, rank0_choice: tuple[str, str]) -> None:
        self.rank, self.size, self.mpi, self._choice = rank, 2, self, rank0_choice

    def bcast(self, obj, root=0):
        return self._choice if self.rank != root else obj


@pytest.mark.parametrize("rank", [0, 1])
def test_every_rank_writes_into_the_folder_rank_0_chose_and_only_rank_0_prepares_it(rank, tmp_path, monkeypatch):
    """Rank 1 may see the file system differently (rank 0 already created the folder, a slow NFS):
    it still takes rank 0's folder and never deletes or creates anything itself."""
    from minitorch_nndl.train import data_parallel

    rank0 = (str(tmp_path / "runs" / "r-2"), "(runs/r holds an earlier run, which is kept)")
    monkeypatch.setattr(dist, "current_world", lambda: _RankOfTwo(rank, rank0))
    barriers = []
    monkeypatch.setattr(dist, "barrier", lambda: barriers.append(rank))
    prepared = []
    mine = (tmp_path / "runs" / "r-3", "(what this rank's own look at the folders said)")
    folder, note = data_parallel.one_folder(lambda: rank0 if rank == 0 else mine, prepared.append)
    assert (str(folder), note) == rank0
    assert prepared == ([folder] if rank == 0 else []) and barriers == [rank]
