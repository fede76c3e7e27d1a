"""``conv_bn``: a convolution and the batch norm after it, as one convolution in evaluation.

In evaluation mode a batch norm is a fixed affine map per channel,

    bn(z) = z * s + t,   s = gamma / sqrt(running_var + eps),   t = beta - running_mean * s,

and after a convolution z = conv(x, W) + b, so

    bn(conv(x, W) + b) = conv(x, W * s) + (b * s + t):

one convolution whose filters carry the scale and whose bias is the shift
(:func:`minitorch_nndl.ops.conv.conv2d_affine`).  What usually follows, a residual
block's ``+ shortcut`` and the ReLU, goes into the same call (``residual``, ``relu``):
each chunk of the output gets them while it is still in the cache.  The batch norm's own passes over
the activation (and the array they write) disappear.  This is the folding inference
engines do ("conv-BN fusion"); here it happens on the fly, in every evaluation
forward (once per block inside ``inference_mode()``), so it always uses the current
weights and statistics.

It applies only where it is exactly the same function and cheaper: a plain ``Conv2d``
without groups and a plain ``BatchNorm2d`` in evaluation mode with running statistics,
no gradient wanted, no forward hooks on either nor on the ReLU (they would not run), and
filters that are smaller than the output (scaling U or W_rows costs a pass over the filters
instead of one over the activation) unless inside ``inference_mode()``, where the scaled
filters are made once for the whole block.  Otherwise it is ``relu(bn(conv(x)) + residual)``,
and in training (or wherever it does not fold) the batch norm itself adds the residual and
applies the ReLU in its normalizing pass (:func:`minitorch_nndl.ops.norm.batch_norm`'s
``residual`` and ``relu``), so a residual block's end is one op, not three.
"""

from __future__ import annotations

from typing import Any

from .. import backend, kernels
from ..grad_mode import is_grad_enabled, prepared, prepares
from ..ops.conv import conv2d_affine
from ..tensor import Tensor
from .activation import ReLU
from .conv import Conv2d
from .module import Module
from .normalization import BatchNorm2d


def conv_bn(conv: Module, bn: Module, x: Tensor, residual: Tensor | None = None, relu: Module | None = None) -> Tensor:
    """``bn(conv(x))``, then ``+ residual`` and the ``relu`` module when given; in evaluation without
    gradients, one convolution with the batch norm folded in and the rest applied chunk by chunk."""
    if not (_folds(conv, bn, x) and _fuses(relu, residual, conv, x)):
        z = conv(x)
        if _normalizes_then(bn, relu, residual, z):  # training: one batch-norm op ends with + r and the ReLU
            return bn.forward_fused(z, residual, relu is not None)
        out = bn(z)
        if residual is not None:
            out = out + residual
        return out if relu is None else relu(out)
    scale, shift, *geometry = folded(conv, bn, x)
    return conv2d_affine(x, conv.weight, scale, shift, *geometry, residual=residual, relu=relu is not None)


def folded(conv: Module, bn: Module, x: Tensor) -> tuple:
    """(scale, shift, stride, padding, dilation) of ``bn(conv(.))`` as one affine convolution:
    s = gamma / sqrt(running_var + eps), t = beta - running_mean * s (+ conv bias * s)."""
    dtype = x.dtype

    def scale_and_shift() -> tuple[Tensor, Tensor]:
        with backend.device_context(x.device):
            xp = backend.xp_of(x.data)
            inv_std = 1 / xp.sqrt(bn.running_var.data.astype(dtype, copy=False) + dtype.type(bn.eps))
            scale = inv_std if bn.weight is None else bn.weight.data * inv_std
            shift = -bn.running_mean.data.astype(dtype, copy=False) * scale
            if bn.bias is not None:
                shift += bn.bias.data
            if conv.bias is not None:
                shift += conv.bias.data * scale
        return Tensor(scale), Tensor(shift)

    sources = tuple(
        None if t is None else t.data for t in (bn.running_mean, bn.running_var, bn.weight, bn.bias, conv.bias)
    )
    # once per inference_mode() block: the same scale array then lets the conv reuse its prepared filters
    scale, shift = prepared(("conv_bn", id(conv), id(bn), dtype.str), sources, scale_and_shift)
    return scale, shift, conv.stride, conv.padding, conv.dilation


def _plain_relu(relu: Module | None) -> bool:
    """No ReLU, or a plain ``ReLU`` module without forward hooks (which would not run inside an op)."""
    return relu is None or (type(relu) is ReLU and not relu._forward_hooks)


def _exactly_like(residual: Tensor, shape: tuple[int, ...], like: Tensor) -> bool:
    """Whether ``residual`` is a Tensor of ``shape`` with ``like``'s dtype and device (no broadcasting
    nor promotion, which the separate ``+`` would do)."""
    return isinstance(residual, Tensor) and (residual.shape, residual.dtype, residual.device) == (
        shape,
        like.dtype,
        like.device,
    )


def _fuses(relu: Module | None, residual: Tensor | None, conv: Module, x: Tensor) -> bool:
    """Whether the ReLU and the residual can go into the folded convolution: a plain ReLU, and a
    residual exactly like the output that needs no gradient; anything else (a hook, broadcasting,
    a promotion) takes the separate ops, which handle it."""
    if not _plain_relu(relu):
        return False
    if residual is None:
        return True
    wants_grad = isinstance(residual, Tensor) and is_grad_enabled() and residual.requires_grad
    return not wants_grad and _exactly_like(residual, output_shape(conv, x.shape), x)


def _normalizes_then(bn: Module, relu: Module | None, residual: Tensor | None, z: Tensor) -> bool:
    """Whether ``relu(bn(z) + residual)`` can be one batch-norm op (``BatchNorm2d.forward_fused``):
    a plain ``BatchNorm2d`` without forward hooks, a plain ReLU, and a residual exactly like z (it
    may need a gradient).  Anything else takes the separate modules."""
    if type(bn) is not BatchNorm2d or bn._forward_hooks or (relu is None and residual is None):
        return False
    return _plain_relu(relu) and (residual is None or _exactly_like(residual, z.shape, z))


def output_shape(conv: Module, x_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``conv(x)`` for an x of ``x_shape`` (already checked to be 4-D with the conv's input channels)."""
    sizes = zip(x_shape[2:], conv.kernel_size, conv.stride, conv.padding, conv.dilation)
    return (x_shape[0], conv.out_channels, *(kernels.conv_output_size(*size) for size in sizes))


def _folds(conv: Module, bn: Module, x: Tensor) -> bool:
    """Whether :func:`conv_bn` computes ``bn(conv(x))`` as one folded convolution."""
    return isinstance(x, Tensor) and folds(conv, bn, x.shape, x.dtype, x.requires_grad)


def folds(conv: Module, bn: Module, x_shape: tuple[int, ...], dtype: Any, x_requires_grad: bool = False) -> bool:
    """Whether ``bn(conv(x))`` folds into one convolution for an x of ``x_shape`` and ``dtype``:
    a plain Conv2d and BatchNorm2d in evaluation as the module docstring says, no gradient wanted,
    and filters prepared once or smaller than the output."""
    if type(conv) is not Conv2d or type(bn) is not BatchNorm2d or bn.training or bn.running_mean is None:
        return False
    if conv.groups != 1 or conv.out_channels != bn.num_features or conv._forward_hooks or bn._forward_hooks:
        return False
    if len(x_shape) != 4 or x_shape[1] != conv.in_channels or dtype != conv.weight.dtype:
        return False  # conv(x) raises its own clear error
    params = (conv.weight, conv.bias, bn.weight, bn.bias)
    if is_grad_enabled() and (x_requires_grad or any(t is not None and t.requires_grad for t in params)):
        return False
    if prepares(conv.weight.data):
        return True  # the folded filters are prepared once for the whole block: always cheaper
    N, C_out, OH, OW = output_shape(conv, x_shape)
    return 16 * conv.in_channels * conv.out_channels <= N * C_out * OH * OW


__all__ = ["conv_bn"]
