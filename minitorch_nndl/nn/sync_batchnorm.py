"""``SyncBatchNorm``: batch normalisation whose batch is the *global* batch, over all ranks.

With data parallelism each rank sees ``b`` of the ``p * b`` samples of a step.  A plain BatchNorm
normalises with the statistics of its ``b`` samples, so the network computes something else than
it would on the whole batch (and small per-rank batches give noisy statistics).  SyncBatchNorm
sums over the ranks instead.  Per channel, with ``M`` the global count (``sum_r M_r``)::

    forward:   mu  = (1/M) allreduce(sum_i x_i)                        # all-reduce 1: [sum x, M_r]
               var = (1/M) allreduce(sum_i (x_i - mu)^2)               # all-reduce 2 (two passes,
               xhat_i = (x_i - mu) / sigma,  y_i = gamma xhat_i + beta #  as the one-process op)

    backward:  S1 = allreduce(sum_i g_i),  S2 = allreduce(sum_i g_i xhat_i)   # all-reduce 3: [S1, S2]
               dL/dx_i    = gamma / (M sigma) * (M g_i - S1 - xhat_i S2)
               dL/dgamma  = sum_i g_i xhat_i     (this rank's samples: DDP averages it)
               dL/dbeta   = sum_i g_i

The dx formula is chapter 5's closed form with the sums taken over every rank's samples
(``docs/14-data-parallel.md`` derives it).  ``g`` on this rank is the gradient of this rank's
loss; with the ``1/p`` of DDP's average that makes every parameter gradient the global-batch one.
In eval mode, or in a world of size 1, SyncBatchNorm is BatchNorm (running statistics, no
communication).  The running statistics move with the global mean and unbiased global variance,
so they are the same on every rank.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Context, Function
from ..distributed import collectives, world
from ..tensor import Tensor
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, _BatchNorm

__all__ = ["SyncBatchNorm", "sync_batch_norm"]


def _sum_over_ranks(*per_channel: Any) -> list[Any]:
    """All-reduce several per-channel vectors in one call (stacked), and split them again."""
    xp = backend.xp_of(per_channel[0])
    stacked = xp.stack(per_channel)
    collectives.all_reduce(stacked, "sum")
    return list(stacked)


class SyncBatchNormFunction(Function):
    """y = gamma (x - mu) / sigma + beta with mu, sigma over all ranks' samples.
    dL/dx = gamma/(M sigma) (M g - S1 - xhat S2), S1 = sum_ranks sum g, S2 = sum_ranks sum g xhat;
    dL/dgamma = sum g xhat, dL/dbeta = sum g (this rank's samples)."""

    @staticmethod
    def forward(ctx: Context, x: Any, weight: Any, bias: Any, running: Any, momentum: float, eps: float) -> Any:
        """``running``: (running_mean, running_var) arrays to update in place, or None."""
        xp = backend.xp_of(x)
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        local_count = xp.full(x.shape[1], x.size // x.shape[1], dtype=x.dtype)
        total, count = _sum_over_ranks(x.sum(axis=axes), local_count)
        mean = total / count
        xhat = x - mean.reshape(shape)
        (squares,) = _sum_over_ranks((xhat * xhat).sum(axis=axes))
        var = squares / count  # biased: this is what normalises
        if running is not None:  # the same on every rank: global mean, unbiased global variance
            for stat, batch_value in zip(running, (mean, squares / (count - 1))):
                stat *= 1 - momentum
                stat += (momentum * batch_value).astype(stat.dtype, copy=False)
        inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))
        xhat *= inv_std.reshape(shape)
        y = xhat * weight.reshape(shape) if weight is not None else xhat.copy()
        if bias is not None:
            y += bias.reshape(shape)
        if ctx.needs_input_grad:
            ctx.save_for_backward(xhat, inv_std, weight, count)
            ctx.axes, ctx.shape = axes, shape
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (xhat, inv_std, weight, count), needs = ctx.saved_tensors, ctx.needs_input_grad
        axes, shape = ctx.axes, ctx.shape
        grad_sum = grad.sum(axis=axes)  # this rank's: dL/dbeta
        grad_xhat_sum = (grad * xhat).sum(axis=axes)  # this rank's: dL/dgamma
        dx = None
        if needs[0]:
            s1, s2 = _sum_over_ranks(grad_sum, grad_xhat_sum)  # every rank's
            scale = inv_std if weight is None else weight * inv_std  # gamma / sigma
            dx = grad - (s1 / count).reshape(shape) - xhat * (s2 / count).reshape(shape)
            dx *= scale.reshape(shape)
        dweight = grad_xhat_sum if weight is not None and needs[1] else None
        dbias = grad_sum if needs[2] else None
        return dx, dweight, dbias, None


def sync_batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Training-mode batch normalisation of ``x`` (N, C) or (N, C, H, W) with statistics over all ranks.

    Every rank must call it (the same layers in the same order); the running statistics, when
    given, are updated in place with the global mean and unbiased variance.
    """
    if x.ndim not in (2, 4):
        raise ValueError(f"sync_batch_norm: expected a 2-D (N, C) or 4-D (N, C, H, W) input, got shape {x.shape}")
    running = None if running_mean is None else (running_mean.data, running_var.data)
    return SyncBatchNormFunction.apply(x, weight, bias, running, float(momentum), float(eps))


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over (N, C), (N, C, L) or (N, C, H, W) inputs with the batch of all ranks.

    Same arguments and state as :class:`BatchNorm2d` (its ``state_dict`` loads into one and back).
    Training mode in a world of more than one rank uses :func:`sync_batch_norm`; otherwise
    it is exactly BatchNorm.  ``momentum=None`` (cumulative average) is supported only through
    the plain path; convert such a model after choosing a momentum.
    """

    _expected_dims = (2, 3, 4)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or world.get_world_size() == 1:
            return super().forward(x)
        self._check_input(x)
        if self.momentum is None:
            raise ValueError(
                "SyncBatchNorm: momentum=None (a cumulative average) is not supported across ranks: "
                "give the layer a momentum (layer.momentum = 0.1) before training on several ranks"
            )
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
        squeeze = x.ndim == 3
        if squeeze:
            x = x.reshape(*x.shape, 1)
        track = self.track_running_stats
        y = sync_batch_norm(
            x,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            momentum=self.momentum,
            eps=self.eps,
        )
        return y.reshape(*y.shape[:-1]) if squeeze else y

    @classmethod
    def convert_sync_batchnorm(cls, module: Module) -> Module:
        """``module`` with every BatchNorm1d/BatchNorm2d replaced by a SyncBatchNorm sharing its tensors.

        The new layers take the old ones' Parameter and buffer objects (an optimizer built
        before still trains them) and their training mode.  Returns the converted module (a new
        object only when ``module`` itself is a BatchNorm).
        """
        if isinstance(module, (BatchNorm1d, BatchNorm2d)) and not isinstance(module, cls):
            sync = cls.__new__(cls)
            Module.__init__(sync)
            for name in ("num_features", "eps", "momentum", "affine", "track_running_stats", "training"):
                object.__setattr__(sync, name, getattr(module, name))
            for name, p in module._parameters.items():
                sync.register_parameter(name, p)
            for name, b in module._buffers.items():
                sync.register_buffer(name, b)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                converted = cls.convert_sync_batchnorm(child)
                if converted is not child:
                    module._modules[name] = converted
        return module
