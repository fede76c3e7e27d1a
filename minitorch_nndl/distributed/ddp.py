"""``DistributedDataParallel``: the same model on every rank, its gradients averaged after each backward.

Data parallelism in three facts (``docs/14-data-parallel.md`` has the derivation):

1. every rank starts from the *same* weights: the wrapper broadcasts rank 0's parameters and
   buffers when it is built, whatever seed each rank used;
2. each rank computes the gradient of the mean loss over its own ``b`` samples; the mean of those
   ``p`` gradients is the gradient of the mean loss over all ``p * b`` samples (the global batch);
3. so after :meth:`DistributedDataParallel.sync_gradients` every rank holds the global-batch
   gradient, takes the same optimizer step, and the weights stay identical without ever being sent
   again.

The gradients travel in **buckets**: a few large flat arrays (one dtype and device each, up to
``bucket_cap_mb`` MiB), each all-reduced in one call.  A call has a fixed cost (latency) on
top of its bytes, so ResNet18's 62 parameter arrays (44.7 MB) become two calls instead of 62.  The
buckets follow the parameters in reverse order, the order backward produces their gradients.
Each bucket carries one extra slot per parameter saying whether the rank had a gradient for it, so
a parameter no rank used keeps ``grad = None`` and one used on some ranks gets the average over all
(the others count as zero), as in PyTorch.

Call ``sync_gradients()`` between ``loss.backward()`` and ``optimizer.step()`` (the ``Trainer`` does
it for you).  Our autograd has no end-of-backward hook, so the call is explicit; PyTorch overlaps
the same all-reduces with the backward pass, which is faster on a GPU but harder to read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .. import backend
from ..nn.module import IncompatibleKeys, Module
from ..tensor import Tensor
from .collectives import all_reduce, broadcast
from .world import check_initialized, get_world_size

__all__ = ["DistributedDataParallel", "buckets_of"]


def buckets_of(tensors: list[Tensor], cap_bytes: int) -> list[list[Tensor]]:
    """Group tensors into buckets of one (device, dtype) and at most ``cap_bytes`` each (a bigger tensor: alone)."""
    open_buckets: dict[tuple[str, str], list[Tensor]] = {}
    sizes: dict[tuple[str, str], int] = {}
    out: list[list[Tensor]] = []
    for t in tensors:
        key = (t.device, str(t.dtype))
        nbytes = int(t.data.nbytes)
        if key in open_buckets and sizes[key] + nbytes > cap_bytes:
            out.append(open_buckets.pop(key))
        if key not in open_buckets:
            open_buckets[key], sizes[key] = [], 0
        open_buckets[key].append(t)
        sizes[key] += nbytes
    out.extend(open_buckets.values())
    return out


def _flat(arrays: list[Any]) -> Any:
    xp = backend.xp_of(arrays[0])
    return xp.concatenate([a.reshape(-1) for a in arrays])


def broadcast_tensors(tensors: list[Tensor], src: int = 0, cap_bytes: int = 25 << 20) -> None:
    """Give every rank rank ``src``'s values of ``tensors`` (in flat buckets), keeping the Tensor objects."""
    if get_world_size() == 1:  # nothing to send: the arrays stay as they are
        return
    for bucket in buckets_of(tensors, cap_bytes):
        with backend.device_context(bucket[0].device):
            flat = broadcast(_flat([t.data for t in bucket]), src)
            offset = 0
            for t in bucket:
                t.data[...] = flat[offset : offset + t.data.size].reshape(t.shape)  # keeps its memory order
                offset += t.data.size


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training; it behaves as ``module`` otherwise.

    Args:
        module: the model (already on this rank's device).
        bucket_cap_mb: the largest gradient bucket, in MiB (2**20 bytes; PyTorch's default, 25).
        broadcast_buffers: in training mode, copy rank 0's buffers (BatchNorm's running
            statistics) to every rank before each forward, as PyTorch does; with
            :class:`~minitorch_nndl.nn.SyncBatchNorm` they are equal anyway.

    ``state_dict()``/``load_state_dict()`` are the wrapped module's (no ``module.`` prefix), so a
    checkpoint loads with or without the wrapper; attributes the wrapper lacks come from ``module``.
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0, broadcast_buffers: bool = True) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}")
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        check_initialized("DistributedDataParallel")
        self.module = module
        self.bucket_cap_bytes = int(bucket_cap_mb * (1 << 20))
        self.broadcast_buffers = bool(broadcast_buffers)
        trainable = [p for p in module.parameters() if p.requires_grad]
        self.buckets = buckets_of(trainable[::-1], self.bucket_cap_bytes)  # backward's order
        self._presence: dict[tuple[Any, ...], Any] = {}  # cached device flags per bucket, pattern, device, dtype
        broadcast_tensors(list(module.parameters()) + list(module.buffers()), 0, self.bucket_cap_bytes)

    # ------------------------------------------------------------------ the wrapped module
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.training and self.broadcast_buffers and get_world_size() > 1:
            buffers = list(self.module.buffers())
            if buffers:
                broadcast_tensors(buffers, 0, self.bucket_cap_bytes)
        return self.module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            module = self.__dict__.get("_modules", {}).get("module")
            if module is None:
                raise
            return getattr(module, name)

    def state_dict(self) -> Any:
        return self.module.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        return self.module.load_state_dict(state_dict, strict=strict)

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Any]]:
        yield from self.module.named_parameters(prefix, recurse)

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self.module.named_buffers(prefix, recurse)

    # ------------------------------------------------------------------ the gradients
    def _presence_flags(self, index: int, bucket: list[Tensor], present: tuple[bool, ...]) -> Any:
        """A device vector: 1 for each parameter of the bucket that has a gradient on this rank, else 0.

        Cached per device and dtype too: the model may be moved (``.to("cuda")``) after wrapping.
        """
        key = (index, present, bucket[0].device, str(bucket[0].dtype))
        flags = self._presence.get(key)
        if flags is None:
            flags = backend.asarray(np.array(present, dtype=bucket[0].dtype), device=bucket[0].device)
            self._presence[key] = flags
        return flags

    def sync_gradients(self) -> None:
        """Average every parameter's gradient over the ranks: one all-reduce per bucket."""
        if get_world_size() == 1:
            return
        for index, bucket in enumerate(self.buckets):
            present = tuple(p.grad is not None for p in bucket)
            with backend.device_context(bucket[0].device):
                xp = backend.xp_of(bucket[0].data)
                parts = [
                    p.grad.astype(p.dtype, copy=False) if p.grad is not None else xp.zeros(p.shape, p.dtype)
                    for p in bucket
                ]
                flat = _flat([*parts, self._presence_flags(index, bucket, present)])
                all_reduce(flat, "mean")  # every rank: the mean of all ranks' gradients
                used = flat[-len(bucket) :] > 0
                used_host = backend.to_numpy(used) if not all(present) else None  # a sync only when a grad is missing
                offset = 0
                for k, p in enumerate(bucket):
                    n = p.data.size
                    if used_host is None or used_host[k]:
                        p.grad = flat[offset : offset + n].reshape(p.shape)
                    offset += n

    def extra_repr(self) -> str:
        sizes = ", ".join(f"{sum(p.data.nbytes for p in b) / 1e6:.1f} MB" for b in self.buckets)
        return f"world_size={get_world_size()}, buckets=[{sizes}]"
