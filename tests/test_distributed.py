"""Data parallelism with real ranks: ``mpiexec -n 2`` on loopback, checked against one process.

Each test launches this file as ``mpiexec -n 2 python3 tests/test_distributed.py WORKER OUT``
(with a timeout: a hang fails the test instead of blocking the suite); the ranks write what they
computed to ``OUT/rank<r>.npz`` and the test compares it with the same computation done here, in
one process on the global batch.  Float64 throughout, so "equal" means to 1e-12.  Skipped, with
the reason, only when mpi4py or mpiexec is missing (the ``[mpi]`` extra; CI installs it).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
B = 4  # the per-rank batch; the reference batch is 2 * B
STEPS = 5


def mpi_missing() -> str | None:
    """Why multi-rank tests cannot run here (None when they can)."""
    if importlib.util.find_spec("mpi4py") is None:
        return 'mpi4py is not installed (python3 -m pip install -e ".[mpi]")'
    if shutil.which("mpiexec") is None:
        return 'no mpiexec on PATH (python3 -m pip install -e ".[mpi]" brings MPICH\'s)'
    return None


needs_mpi = pytest.mark.skipif(mpi_missing() is not None, reason=f"multi-rank tests: {mpi_missing()}")


def launch(argv: list[str], n: int = 2, timeout: float = 120, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``mpiexec -n n python3 argv...``; (exit status, stdout + stderr).  A hang past ``timeout`` fails."""
    cmd = ["mpiexec", "-n", str(n), sys.executable, *argv]
    full_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    full_env.update(env or {})
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # mpiexec and every rank it started
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} hung for more than {timeout}s; output so far:\n{out}")
    return proc.returncode, out


def run_worker(name: str, out: Path, **kw) -> list[dict[str, np.ndarray]]:
    code, text = launch([str(Path(__file__)), name, str(out)], **kw)
    assert code == 0, f"worker {name} failed ({code}):\n{text}"
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]


# ---------------------------------------------------------------------------- what ranks and reference share
def tiny_net(seed: int, sync_bn: bool):
    """Linear -> (N, 4, 2, 2) -> BatchNorm2d -> ReLU -> Linear in float64; ``seed`` decides the weights."""
    import minitorch_nndl as mt
    from minitorch_nndl import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.bn, self.fc2 = nn.Linear(3 * 5 * 5, 16), nn.BatchNorm2d(4), nn.Linear(16, 3)

        def forward(self, x):
            h = self.bn(self.fc1(x.reshape(x.shape[0], -1)).reshape(x.shape[0], 4, 2, 2))
            return self.fc2(h.relu().reshape(x.shape[0], 16))

    mt.manual_seed(seed)
    net = Net().double()
    return nn.SyncBatchNorm.convert_sync_batchnorm(net) if sync_bn else net


def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    """The global batch of ``step`` (2 * B samples); rank r trains on rows r*B..(r+1)*B."""
    rng = np.random.default_rng(1000 + step)
    return rng.standard_normal((2 * B, 3, 5, 5)) * 2 + 0.5, rng.integers(0, 3, 2 * B)


def loss_and_grads(model, x: np.ndarray, y: np.ndarray, sync) -> tuple[float, list[np.ndarray]]:
    import minitorch_nndl as mt
    from minitorch_nndl import nn

    model.zero_grad()
    loss = nn.CrossEntropyLoss()(model(mt.tensor(x)), mt.tensor(y))
    loss.backward()
    sync()
    return float(loss.item()), [p.grad.copy() for p in model.parameters()]


def trajectory(model, batches, sync) -> dict[str, np.ndarray]:
    """Five SGD steps (momentum, Nesterov, weight decay): parameters and momentum buffers after them."""
    from minitorch_nndl import optim

    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True, weight_decay=1e-2)
    for x, y in batches:
        loss_and_grads(model, x, y, sync)
        opt.step()
    out = {f"param{k}": p.data.copy() for k, p in enumerate(model.parameters())}
    out.update({f"momentum{k}": opt.state[p]["momentum_buffer"].copy() for k, p in enumerate(model.parameters())})
    return out


def two_heads():
    """``body(x)`` (+ ``head(x)`` when asked); ``spare`` is never used.  Float32, the same weights on every rank."""
    import minitorch_nndl as mt
    from minitorch_nndl import nn

    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.head, self.spare = nn.Linear(3, 2), nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x, use_head: bool):
            return self.body(x) + self.head(x) if use_head else self.body(x)

    mt.manual_seed(7)
    return TwoHeads()


def two_heads_step(model, rank: int, device: str = "cpu") -> None:
    """Rank 0 uses the head, rank 1 does not: on rank 1 the head's parameters get no gradient."""
    import minitorch_nndl as mt

    x = np.random.default_rng(20 + rank).standard_normal((4, 3)).astype(np.float32)
    model.zero_grad()
    (model(mt.tensor(x, device=device), rank == 0) ** 2).mean().backward()


def two_heads_reference() -> list:
    """Each parameter's gradient averaged over the two ranks (a rank without one counting as zero); None if unused."""
    grads = []
    for r in range(2):
        model = two_heads()
        two_heads_step(model, r)
        grads.append([p.grad for p in model.parameters()])
    return [
        None if g0 is None and g1 is None else ((0 if g0 is None else g0) + (0 if g1 is None else g1)) / 2
        for g0, g1 in zip(*grads)
    ]


def unequal_batches(rank: int | None, dtype=np.float64):
    """SyncBatchNorm2d(3) on the rows of a batch of 8 (rank 0: 5 rows, rank 1: 3, as a short last batch; None: all).

    Returns the output, dL/dx, dL/dgamma, dL/dbeta and the running statistics for L = sum(y * w).
    """
    import minitorch_nndl as mt
    from minitorch_nndl import nn

    rng = np.random.default_rng(4)
    x, w = (rng.standard_normal((8, 3, 2, 2)) * 3 + 1).astype(dtype), rng.standard_normal((8, 3, 2, 2)).astype(dtype)
    rows = slice(0, 8) if rank is None else [slice(0, 5), slice(5, 8)][rank]
    bn = (nn.BatchNorm2d if rank is None else nn.SyncBatchNorm)(3).to(
        dtype=mt.float64 if dtype == np.float64 else mt.float32
    )
    bn.weight.data = np.array([0.5, -1.5, 2.0], dtype=dtype)
    xt = mt.tensor(x[rows], requires_grad=True)
    y = bn(xt)
    (y * mt.tensor(w[rows])).sum().backward()
    return {
        "y": y.data,
        "dx": xt.grad,
        "dgamma": bn.weight.grad,
        "dbeta": bn.bias.grad,
        "mean": bn.running_mean.data,
        "var": bn.running_var.data,
    }


def bn_stats(model) -> dict[str, np.ndarray]:
    return {k: v for k, v in model.state_dict().items() if "running" in k}


# ---------------------------------------------------------------------------- the workers (one per rank)
def worker_ddp(out: Path) -> None:
    """Different seeds per rank; wrapped; eval-BN gradients; SyncBN gradients and stats; five steps."""
    import minitorch_nndl as mt
    from minitorch_nndl import distributed as dist

    w = dist.init()
    r = w.rank
    rows = slice(r * B, (r + 1) * B)
    res: dict[str, np.ndarray] = {}
    net = tiny_net(seed=100 + r, sync_bn=False)  # rank 1 starts from other weights...
    res["before"] = np.concatenate([p.data.ravel() for p in net.parameters()])
    ddp = dist.DistributedDataParallel(net)  # ...until the wrapper broadcasts rank 0's
    res["after"] = np.concatenate([p.data.ravel() for p in net.parameters()])
    x, y = batch(0)
    ddp.eval()
    res["eval_loss"], grads = loss_and_grads(ddp, x[rows], y[rows], ddp.sync_gradients)
    res.update({f"eval_grad{k}": g for k, g in enumerate(grads)})

    sync = dist.DistributedDataParallel(tiny_net(seed=100 + r, sync_bn=True))
    loss, grads = loss_and_grads(sync, x[rows], y[rows], sync.sync_gradients)
    res["sync_loss"] = dist.all_reduce(np.array(loss), "mean")  # the global batch's loss
    res.update({f"sync_grad{k}": g for k, g in enumerate(grads)})
    res.update({f"sync_{k}": v for k, v in bn_stats(sync).items()})

    traj = dist.DistributedDataParallel(tiny_net(seed=100 + r, sync_bn=True))
    steps = [(x[rows], y[rows]) for x, y in (batch(s) for s in range(1, STEPS + 1))]
    res.update({f"traj_{k}": v for k, v in trajectory(traj, steps, traj.sync_gradients).items()})
    res["world"] = np.array([w.size, mt.distributed.get_world_size()])
    np.savez(out / f"rank{r}.npz", **res)


def worker_edges(out: Path) -> None:
    """A parameter without a gradient on one rank (another on none) in float32; SyncBatchNorm on unequal batches."""
    from minitorch_nndl import distributed as dist

    r = dist.init().rank
    res: dict[str, np.ndarray] = {}
    ddp = dist.DistributedDataParallel(two_heads())
    two_heads_step(ddp, r)
    ddp.sync_gradients()  # rank 1 has no gradient for the head: it must still send its zeros
    for k, p in enumerate(ddp.parameters()):
        res[f"grad{k}"] = np.array([]) if p.grad is None else p.grad
        res[f"dtype{k}"] = np.array(str(None if p.grad is None else p.grad.dtype))
    for dtype in (np.float64, np.float32):
        res.update({f"{np.dtype(dtype).name}_{k}": v for k, v in unequal_batches(r, dtype).items()})
    np.savez(out / f"rank{r}.npz", **res)


def worker_collectives(out: Path) -> None:
    """all_reduce (each op; a Tensor; a strided view), broadcast, all_gather, barrier."""
    import minitorch_nndl as mt
    from minitorch_nndl import distributed as dist

    r = dist.init().rank
    res = {}
    for op in dist.REDUCE_OPS:
        res[op] = dist.all_reduce(np.array([1.0 + r, -3.0 * r, 10.0]), op)
    t = mt.tensor(np.full((2, 3), float(r + 1)))
    res["tensor_sum"] = dist.all_reduce(t).data
    strided = np.arange(12, dtype=np.int64).reshape(3, 4) * (r + 1)
    dist.all_reduce(strided[:, ::2])  # a non-contiguous view, reduced in place
    res["strided"] = strided
    res["bcast"] = dist.broadcast(np.array([r, r * 10], dtype=np.int64), src=1)
    res["gather"] = dist.all_gather(mt.tensor(np.array([r, 2 * r], dtype=np.float32))).data
    dist.barrier()
    np.savez(out / f"rank{r}.npz", **res)


def worker_raise(out: Path) -> None:
    """Rank 1 dies before a collective rank 0 is waiting in: the except hook must end the job."""
    from minitorch_nndl import distributed as dist

    r = dist.init().rank
    if r == 1:
        raise RuntimeError("boom on rank 1")
    dist.all_reduce(np.ones(3))  # would wait for rank 1 forever without the hook
    (out / "rank0-finished").write_text("rank 0 got past the collective")


def worker_nccl(out: Path) -> None:
    """The CUDA path on the stand-in: NCCL's calls against its fake communicator, one fake GPU per rank."""
    import fakecuda

    fakecuda.install()
    import minitorch_nndl as mt
    from minitorch_nndl import distributed as dist
    from minitorch_nndl import nn

    cupy_nccl = sys.modules["cupy.cuda.nccl"]
    r = dist.init().rank
    device = dist.device_for_rank("cuda")
    res: dict[str, np.ndarray] = {"device": np.array(int(device.split(":")[1]))}
    on_gpu = mt.tensor(np.array([1.0 + r, 2.0, -r], dtype=np.float32), device=device)
    res["sum"] = mt.backend.to_numpy(dist.all_reduce(on_gpu, "mean").data)
    res["bcast"] = mt.backend.to_numpy(dist.broadcast(mt.zeros(2, device=device) + r, src=1).data)
    res["gather"] = mt.backend.to_numpy(dist.all_gather(mt.zeros(3, device=device) + r).data)
    # a data-parallel step with SyncBatchNorm on the fake GPUs
    mt.manual_seed(5 + r)
    net = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).double()
    ddp = dist.DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(net).to(device))
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2 * B, 6)), rng.integers(0, 2, 2 * B)
    rows = slice(r * B, (r + 1) * B)
    with fakecuda.counting() as count:
        loss = nn.CrossEntropyLoss()(ddp(mt.tensor(x[rows], device=device)), mt.tensor(y[rows], device=device))
        loss.backward()
        ddp.sync_gradients()
    res["host_syncs"] = np.array(len(count.syncs))
    res.update({f"grad{k}": mt.backend.to_numpy(p.grad) for k, p in enumerate(ddp.parameters())})
    res.update({f"param{k}": mt.backend.to_numpy(p.data) for k, p in enumerate(ddp.parameters())})
    res["calls"] = np.array([cupy_nccl.CALLS[c] for c in ("NcclCommunicator", "allReduce", "bcast", "allGather")])
    # wrapped on the CPU and moved to the GPU after a step there: the wrapper follows its parameters
    moved = dist.DistributedDataParallel(two_heads())
    two_heads_step(moved, r)
    moved.sync_gradients()
    moved.to(device)
    two_heads_step(moved, r, device)
    moved.sync_gradients()
    for k, p in enumerate(moved.parameters()):
        res[f"moved{k}"] = np.array([]) if p.grad is None else mt.backend.to_numpy(p.grad)
        res[f"moved_on{k}"] = np.array(p.device if p.grad is None else mt.backend.device_of(p.grad))
    res["fit_syncs"] = np.array([len(fit_on_gpu(device, n).syncs) for n in (32, 64)])  # 4 and 8 steps
    dist.finalize()
    res["destroyed"] = np.array(cupy_nccl.CALLS["destroy"])
    np.savez(out / f"rank{r}.npz", **res)


def fit_on_gpu(device: str, n: int):
    """One epoch of Trainer.fit (DDP + SyncBatchNorm, a sharded loader) on ``n`` samples; the host syncs it made."""
    import fakecuda

    import minitorch_nndl as mt
    from minitorch_nndl import distributed as dist
    from minitorch_nndl import nn, optim
    from minitorch_nndl.data import DataLoader, DistributedSampler, TensorDataset
    from minitorch_nndl.train import Trainer

    rng = np.random.default_rng(0)
    data = TensorDataset(rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 3, n))
    mt.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model = dist.DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(net).to(device))
    loader = DataLoader(data, 4, sampler=DistributedSampler(data, seed=1), device=device)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), device=device, quiet=True)
    with fakecuda.counting() as count:
        trainer.fit(loader, epochs=1, log_every=1000)
    return count


def classes_data() -> tuple[np.ndarray, ...]:
    """(dev x, dev y, train x, train y): 96 samples of 3 classes, the first 41 also the dev set (shards of 21, 20)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 6)).astype(np.float32)
    y = (x @ rng.standard_normal((6, 3))).argmax(1)
    return x[:41], y[:41], x, y


def trainer_setup(out_dir, num_replicas: int = 1, rank: int = 0):
    """A small classifier, its Trainer and loaders: each rank a shard of the training and of the dev set."""
    import minitorch_nndl as mt
    from minitorch_nndl import distributed as dist
    from minitorch_nndl import nn, optim
    from minitorch_nndl.data import DataLoader, DistributedSampler, TensorDataset
    from minitorch_nndl.train import Trainer

    dev_x, dev_y, x, y = classes_data()
    mt.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    model = dist.DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(net))
    train_set, dev_set = TensorDataset(x, y), TensorDataset(dev_x, dev_y)
    train = DataLoader(train_set, 8, seed=1, sampler=DistributedSampler(train_set, num_replicas, rank, seed=2))
    dev = DataLoader(dev_set, 16, sampler=DistributedSampler(dev_set, num_replicas, rank, shuffle=False, pad=False))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), out_dir=out_dir, quiet=True)
    return trainer, train, dev


def worker_trainer(out: Path) -> None:
    """Two epochs of Trainer.fit on two ranks, then a resume to a third epoch from rank 0's last.npz."""
    from minitorch_nndl import distributed as dist

    w = dist.init()
    trainer, train, dev = trainer_setup(out / "run", w.size, w.rank)
    first = trainer.fit(train, dev, epochs=2)
    again, train, dev = trainer_setup(out / "run", w.size, w.rank)
    resumed = again.fit(train, dev, epochs=3, resume=out / "run" / "last.npz")
    params = np.concatenate([p.data.ravel() for p in again.model.parameters()])
    dev_acc = [row["dev_acc"] for row in again.history.epochs]
    np.savez(out / f"rank{w.rank}.npz", status=[first.status, resumed.status], params=params, dev_acc=dev_acc)


def worker_interrupt(out: Path) -> None:
    """Ctrl-C on rank 1 only, in the middle of epoch 1; then a resume: the same weights as a run never stopped."""
    from minitorch_nndl import distributed as dist

    w = dist.init()
    straight, train, dev = trainer_setup(out / "straight", w.size, w.rank)
    straight.fit(train, dev, epochs=2)

    def ctrl_c_on_rank_1(trainer) -> None:
        if w.rank == 1 and trainer.global_step == 3:
            trainer._guard.stop_requested = True  # what the SIGINT handler does

    stopped, train, dev = trainer_setup(out / "stopped", w.size, w.rank)
    stopped.callbacks.append(ctrl_c_on_rank_1)
    first = stopped.fit(train, dev, epochs=2)
    again, train, dev = trainer_setup(out / "stopped", w.size, w.rank)
    again.fit(train, dev, epochs=2, resume=out / "stopped" / "last.npz")
    res = {"status": first.status, "step": first.step}
    for name, t in (("straight", straight), ("resumed", again)):
        res[f"{name}_params"] = np.concatenate([p.data.ravel() for p in t.model.parameters()])
        res[f"{name}_train_loss"] = [row["train_loss"] for row in t.history.epochs]
        res[f"{name}_train_acc"] = [row["train_acc"] for row in t.history.epochs]
    np.savez(out / f"rank{w.rank}.npz", **res)


def worker_fails_alone(out: Path) -> None:
    """A program's error on rank 1 only (its exit status 1) while rank 0 waits in a collective."""
    from minitorch_nndl import distributed as dist
    from minitorch_nndl.train import data_parallel

    r = dist.init().rank
    if r == 1:
        sys.exit(data_parallel.exit_status(1, wait_seconds=1.0))
    dist.all_reduce(np.ones(2))  # never completes: rank 1 is not coming
    (out / "rank0-finished").write_text("rank 0 got past the collective")


WORKERS = {
    "fails_alone": worker_fails_alone,
    "interrupt": worker_interrupt,
    "ddp": worker_ddp,
    "collectives": worker_collectives,
    "edges": worker_edges,
    "raise": worker_raise,
    "nccl": worker_nccl,
    "trainer": worker_trainer,
}


# ---------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def ddp_ranks(tmp_path_factory) -> list[dict[str, np.ndarray]]:
    return run_worker("ddp", tmp_path_factory.mktemp("ddp"))


def _reference_grads(sync_bn: bool):
    x, y = batch(0)
    net = tiny_net(seed=100, sync_bn=sync_bn)
    if not sync_bn:
        net.eval()
    return net, *loss_and_grads(net, x, y, lambda: None)


@needs_mpi
def test_parameters_identical_after_wrapping_despite_different_seeds(ddp_ranks):
    r0, r1 = ddp_ranks
    assert not np.array_equal(r0["before"], r1["before"])  # the seeds differed
    np.testing.assert_array_equal(r0["after"], r1["after"])
    np.testing.assert_array_equal(r0["after"], r0["before"])  # rank 0's weights won
    assert r0["world"].tolist() == [2, 2]


@needs_mpi
def test_ddp_gradient_of_2_ranks_x_b_is_the_gradient_of_one_batch_2b(ddp_ranks):
    _, _, grads = _reference_grads(sync_bn=False)  # BN in eval mode: samples are independent
    for res in ddp_ranks:
        for k, g in enumerate(grads):
            np.testing.assert_allclose(res[f"eval_grad{k}"], g, rtol=0, atol=1e-12)


@needs_mpi
def test_sync_batchnorm_loss_gradients_and_running_stats_match_one_process(ddp_ranks):
    net, loss, grads = _reference_grads(sync_bn=True)  # training mode: statistics of all 2B samples
    stats = bn_stats(net)
    for res in ddp_ranks:
        np.testing.assert_allclose(res["sync_loss"], loss, rtol=0, atol=1e-12)
        for k, g in enumerate(grads):
            np.testing.assert_allclose(res[f"sync_grad{k}"], g, rtol=0, atol=1e-12)
        for k, v in stats.items():
            np.testing.assert_allclose(res[f"sync_{k}"], v, rtol=0, atol=1e-12)


@needs_mpi
def test_five_sgd_steps_of_2_ranks_equal_five_steps_of_one_process(ddp_ranks):
    steps = [batch(s) for s in range(1, STEPS + 1)]
    ref = trajectory(tiny_net(seed=100, sync_bn=True), steps, lambda: None)
    for res in ddp_ranks:
        for k, v in ref.items():
            np.testing.assert_allclose(res[f"traj_{k}"], v, rtol=0, atol=1e-12, err_msg=k)


@pytest.fixture(scope="module")
def edge_ranks(tmp_path_factory) -> list[dict[str, np.ndarray]]:
    return run_worker("edges", tmp_path_factory.mktemp("edges"))


@needs_mpi
def test_a_parameter_without_a_gradient_on_one_rank_is_averaged_and_one_unused_everywhere_stays_none(edge_ranks):
    expected = two_heads_reference()
    assert expected[2] is not None and expected[4] is None  # the head: rank 0 only; the spare: nobody
    for res in edge_ranks:
        for k, g in enumerate(expected):
            if g is None:
                assert res[f"grad{k}"].size == 0 and str(res[f"dtype{k}"]) == "None"
            else:
                assert str(res[f"dtype{k}"]) == "float32"  # the bucket did not promote float32 gradients
                np.testing.assert_allclose(res[f"grad{k}"], g, rtol=1e-6, atol=1e-7)


@needs_mpi
def test_sync_batchnorm_on_unequal_rank_batches_is_batch_norm_of_the_whole_batch(edge_ranks):
    ref = unequal_batches(None)
    rows = [slice(0, 5), slice(5, 8)]
    for r, res in enumerate(edge_ranks):
        np.testing.assert_allclose(res["float64_y"], ref["y"][rows[r]], rtol=0, atol=1e-12)
        np.testing.assert_allclose(res["float64_dx"], ref["dx"][rows[r]], rtol=0, atol=1e-12)
        for k in ("mean", "var"):  # the global mean and the unbiased variance of all 8 x 2 x 2 values
            np.testing.assert_allclose(res[f"float64_{k}"], ref[k], rtol=0, atol=1e-12)
        for k in ("y", "dx", "dgamma", "dbeta", "mean", "var"):
            assert res[f"float32_{k}"].dtype == np.float32, k
    for k in ("dgamma", "dbeta"):  # each rank's own sum; together the whole batch's
        np.testing.assert_allclose(edge_ranks[0][f"float64_{k}"] + edge_ranks[1][f"float64_{k}"], ref[k], atol=1e-12)


@needs_mpi
def test_collectives_on_arrays_and_tensors(tmp_path):
    for r, res in enumerate(run_worker("collectives", tmp_path)):
        np.testing.assert_array_equal(res["sum"], [3.0, -3.0, 20.0])
        np.testing.assert_array_equal(res["mean"], [1.5, -1.5, 10.0])
        np.testing.assert_array_equal(res["max"], [2.0, 0.0, 10.0])
        np.testing.assert_array_equal(res["min"], [1.0, -3.0, 10.0])
        np.testing.assert_array_equal(res["tensor_sum"], np.full((2, 3), 3.0))
        expected = np.arange(12).reshape(3, 4) * (r + 1)
        expected[:, ::2] = np.arange(12).reshape(3, 4)[:, ::2] * 3  # only the view was reduced
        np.testing.assert_array_equal(res["strided"], expected)
        np.testing.assert_array_equal(res["bcast"], [1, 10])
        np.testing.assert_array_equal(res["gather"], [[0, 0], [1, 2]])


@needs_mpi
def test_a_rank_that_raises_ends_every_rank_with_an_error_not_a_hang(tmp_path):
    start = time.perf_counter()
    code, text = launch([str(Path(__file__)), "raise", str(tmp_path)], timeout=60)
    assert code != 0
    assert "boom on rank 1" in text and "rank 1 of 2 failed (RuntimeError); aborting all ranks" in text
    assert not (tmp_path / "rank0-finished").exists()
    assert time.perf_counter() - start < 30


@needs_mpi
def test_a_program_that_fails_on_one_rank_ends_the_job(tmp_path):
    start = time.perf_counter()
    code, text = launch([str(Path(__file__)), "fails_alone", str(tmp_path)], timeout=60)
    assert code != 0 and "rank 1: exit status 1; the other ranks did not finish: ending the job" in text
    assert not (tmp_path / "rank0-finished").exists()
    assert time.perf_counter() - start < 30


@needs_mpi
def test_nccl_path_on_the_cuda_stand_in(tmp_path):
    from minitorch_nndl import nn

    ranks = run_worker("nccl", tmp_path)
    assert [int(res["device"]) for res in ranks] == [0, 1]  # one fake GPU per rank, by local rank
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2 * B, 6)), rng.integers(0, 2, 2 * B)
    import minitorch_nndl as mt

    mt.manual_seed(5)
    ref = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).double()
    _, grads = loss_and_grads(ref, x, y, lambda: None)
    for res in ranks:
        np.testing.assert_allclose(res["sum"], [1.5, 2.0, -0.5])
        np.testing.assert_array_equal(res["bcast"], [1.0, 1.0])
        np.testing.assert_array_equal(res["gather"], [[0.0] * 3, [1.0] * 3])
        for k, g in enumerate(grads):
            np.testing.assert_allclose(res[f"grad{k}"], g, rtol=0, atol=1e-12)
        communicators, all_reduces, bcasts, all_gathers = res["calls"].tolist()
        assert communicators == 1 and all_reduces >= 4 and bcasts >= 2 and all_gathers == 1
        assert int(res["host_syncs"]) == 0  # the DDP step never waited for the device
        assert int(res["destroyed"]) == 1
        syncs_4_steps, syncs_8_steps = res["fit_syncs"].tolist()
        assert syncs_4_steps == syncs_8_steps  # Trainer.fit on 2 ranks: no host sync per step, only per epoch
    for r, res in enumerate(ranks):
        for k, g in enumerate(two_heads_reference()):
            assert str(res[f"moved_on{k}"]) == f"cuda:{r}"
            if g is None:
                assert res[f"moved{k}"].size == 0
            else:
                np.testing.assert_allclose(res[f"moved{k}"], g, rtol=1e-6, atol=1e-7)


@needs_mpi
def test_trainer_on_two_ranks_writes_once_evaluates_the_whole_dev_set_and_resumes(tmp_path):
    from minitorch_nndl.train import load_checkpoint, restore_model

    code, text = launch([str(Path(__file__)), "trainer", str(tmp_path)])
    assert code == 0, text
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(2)]
    assert [list(res["status"]) for res in ranks] == [["completed", "completed"]] * 2
    np.testing.assert_array_equal(ranks[0]["params"], ranks[1]["params"])  # the ranks stayed in step
    np.testing.assert_array_equal(ranks[0]["dev_acc"], ranks[1]["dev_acc"])
    assert len(ranks[0]["dev_acc"]) == 3  # two epochs, then the resumed third
    # one set of outputs: the files one process writes, no second copy, no temporary left over
    alone, train, dev = trainer_setup(tmp_path / "alone")
    alone.fit(train, dev, epochs=1)
    files = {name: sorted(p.name for p in (tmp_path / name).iterdir()) for name in ("run", "alone")}
    assert files["run"] == files["alone"]
    # the dev accuracy it reported is that of the whole dev set (41 samples, not one rank's shard)
    trainer, _, _ = trainer_setup(None)
    restore_model(trainer.model, load_checkpoint(tmp_path / "run" / "last.npz")["model"])
    from minitorch_nndl.data import DataLoader, TensorDataset

    result = trainer.evaluate(DataLoader(TensorDataset(*classes_data()[:2]), 41))
    assert result["acc"] == ranks[0]["dev_acc"][-1]


@needs_mpi
def test_ctrl_c_on_one_rank_stops_all_at_the_same_step_and_the_resume_is_exact(tmp_path):
    ranks = run_worker("interrupt", tmp_path)
    for res in ranks:
        assert str(res["status"]) == "interrupted" and int(res["step"]) == 3  # both ranks, after step 3
        np.testing.assert_array_equal(res["resumed_params"], res["straight_params"])  # bit-identical on the CPU
        np.testing.assert_allclose(res["resumed_train_loss"], res["straight_train_loss"], rtol=1e-6)
        np.testing.assert_array_equal(res["resumed_train_acc"], res["straight_train_acc"])  # every rank's samples
    assert (tmp_path / "stopped" / "last.npz").exists()


if __name__ == "__main__":  # one rank of a launched test: WORKER OUT
    WORKERS[sys.argv[1]](Path(sys.argv[2]))
