"""Batch normalisation layers: ``BatchNorm1d`` (inputs (N, C) or (N, C, L)) and ``BatchNorm2d`` ((N, C, H, W));
``LocalResponseNorm`` (AlexNet's normalisation across channels)."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..factories import ones, zeros
from ..ops.lrn import local_response_norm
from ..ops.validate import float_dtype
from ..tensor import Tensor
from . import functional as F  # noqa: N812  (PyTorch's conventional name)
from . import init
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    Training mode: mean and (biased) var are those of the batch (over N and the spatial
    axes), and the running statistics move towards them:
    ``running = (1 - momentum) * running + momentum * batch`` (running_var gets the
    unbiased batch variance); with ``momentum=None`` it is the cumulative average
    over ``num_batches_tracked`` batches (which reads that count on the host: one
    device sync per training batch on CUDA; the default momentum needs none).  Evaluation mode: the running statistics
    are used, so each sample's output no longer depends on the rest of the batch.
    Gradients: see :func:`minitorch_nndl.ops.norm.batch_norm`.
    """

    _expected_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if num_features <= 0:
            raise ValueError(f"{type(self).__name__}: num_features must be positive, got {num_features}")
        dtype = float_dtype(dtype, type(self).__name__)
        device = backend.normalize_device(device)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(ones(num_features, dtype=dtype, device=device))
            self.bias = Parameter(zeros(num_features, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", zeros((), dtype=backend.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data.fill(0)
            self.running_var.data.fill(1)
            self.num_batches_tracked.data.fill(0)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _check_input(self, x: Tensor) -> None:
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
        if x.ndim not in self._expected_dims:
            dims = " or ".join(f"{d}-D" for d in self._expected_dims)
            raise ValueError(f"{name}: expected {dims} input, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected {self.num_features} channels (axis 1), got input of shape {x.shape}")

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_fused(x)

    def forward_fused(self, x: Tensor, residual: Tensor | None = None, relu: bool = False) -> Tensor:
        """``relu(self(x) + residual)`` (each part optional) as one op: the residual is added and
        the ReLU applied in the batch norm's own normalizing pass, gradients included (no arrays
        for the sum nor for the ReLU's output).  Forward hooks do not run: ``nn.conv_bn`` calls it
        only for a module without them."""
        self._check_input(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / self.num_batches_tracked.item()  # host sync (see the class docstring)
        track = not self.training or self.track_running_stats  # without running statistics: batch ones
        squeeze = x.ndim == 3  # (N, C, L) -> (N, C, L, 1) for the op
        if squeeze:
            x = x.reshape(*x.shape, 1)
        y = F.batch_norm(
            x,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            training=self.training,
            momentum=factor,
            eps=self.eps,
            residual=None if residual is None else (residual.reshape(*residual.shape, 1) if squeeze else residual),
            relu=relu,
        )
        if squeeze:
            y = y.reshape(*y.shape[:-1])
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) inputs (statistics over N, and L)."""

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) inputs (statistics over N, H and W, per channel C)."""

    _expected_dims = (4,)


class LocalResponseNorm(Module):
    """Local response normalisation across channels (AlexNet's "LRN"), with PyTorch's definition and defaults.

    ``y_c = x_c / (k + alpha / size * sum_{j = c - size//2}^{c + (size-1)//2} x_j^2) ** beta``

    over inputs (N, C, ...) of 3 or more dimensions; no parameters.  AlexNet used
    size=5, alpha=1e-4 (the paper's, which does not divide by size: PyTorch's alpha=5e-4),
    beta=0.75, k=2.  Gradients: see :func:`minitorch_nndl.ops.lrn.local_response_norm`.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"LocalResponseNorm: size must be a positive int, got {size!r}")
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
