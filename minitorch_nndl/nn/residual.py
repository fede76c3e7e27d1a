"""``residual_block`` and ``residual_blocks``: residual blocks depth first in evaluation.

A residual block is ``relu(main(x) + shortcut(x))``, its main path two (BasicBlock) or three
(Bottleneck) convolutions, each with its batch norm and a ReLU after it.  Run layer by layer,
every convolution writes the whole batch's activation and the next one reads it back: at batch
32 a 32x32x64 activation is 8 MB, more than the caches of a core hold, so it goes to memory and
back.  But in evaluation every image goes through the block on its own (the batch norms use
their running statistics), so the block can run *depth first*: a chunk of images through all
of its convolutions, then the next chunk.  A chunk's activations (two 32x32x64 images: 0.5 MB)
are still in the cache when the next convolution reads them.  Same arithmetic, other order:
:func:`~minitorch_nndl.ops.conv.conv2d_affine_chain` does it, each batch norm folded into its
convolution as :func:`~minitorch_nndl.nn.conv_bn` folds it.  A stage of blocks (``nn.Sequential``
of them, as ResNet's ``layer1``) goes through the same chain as a whole.

A module is such a block when it has ``residual_parts()``, returning its (conv, batch norm)
pairs, its shortcut (None: the identity) and its ReLU module, and its ``forward(x)`` is
``residual_block(x, *self.residual_parts())`` (as ResNet's BasicBlock and Bottleneck are): a
stage may then run it without calling it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..grad_mode import prepares
from ..ops.conv import AffineBlock, AffineConv, conv2d_affine_chain
from ..tensor import Tensor
from .conv import Conv2d
from .fused import _plain_relu, conv_bn, folded, folds, output_shape
from .module import Module


def residual_block(x: Tensor, layers: Sequence[tuple[Module, Module]], shortcut: Module | None, relu: Module) -> Tensor:
    """A residual block's ``relu(bn_k(conv_k(... relu(bn_1(conv_1(x))) ...)) + shortcut(x))``: its main
    path of (conv, batch norm) ``layers`` with the ``relu`` after each, its ``shortcut`` (None: the
    identity; a ``Sequential(Conv2d, BatchNorm2d)``, or any module) and the ReLU at the end.

    Inside ``inference_mode()`` on the CPU, where every pair folds (as :func:`conv_bn` says) and so
    does the shortcut, it is one :func:`~minitorch_nndl.ops.conv.conv2d_affine_chain`, depth first
    (see the module docstring); otherwise :func:`conv_bn` after :func:`conv_bn`, as written."""
    block = _affine_block(x, x.shape if isinstance(x, Tensor) else None, layers, shortcut, relu)
    if block is not None:
        return conv2d_affine_chain(x, [block[0]])
    out = x
    for conv, bn in layers[:-1]:
        out = conv_bn(conv, bn, out, relu=relu)
    identity = x if shortcut is None else shortcut(x)
    return conv_bn(*layers[-1], out, residual=identity, relu=relu)


def residual_blocks(x: Tensor, blocks: Sequence[Module]) -> Tensor:
    """``blocks[-1](... blocks[0](x) ...)`` for modules that are residual blocks (``residual_parts()``):
    inside ``inference_mode()`` on the CPU, where every block would be one chain (see
    :func:`residual_block`) and none has forward hooks, one chain through all of them; otherwise
    each block called in turn."""
    chain = []
    shape = x.shape if isinstance(x, Tensor) else None
    for block in blocks:
        if block._forward_hooks:
            chain = None
            break
        affine = _affine_block(x, shape, *block.residual_parts())
        if affine is None:
            chain = None
            break
        chain.append(affine[0])
        shape = affine[1]
    if chain:
        return conv2d_affine_chain(x, chain)
    for block in blocks:
        x = block(x)
    return x


def _affine_block(
    x: Tensor, shape: tuple | None, layers: Sequence[tuple[Module, Module]], shortcut: Module | None, relu: Module
) -> tuple[AffineBlock, tuple] | None:
    """The block as an :class:`AffineBlock` for an input of ``shape`` (x's dtype and device), and its
    output's shape, when it runs as a chain (:func:`_chained_shape`); else None."""
    out_shape = None if shape is None else _chained_shape(x, shape, layers, shortcut, relu)
    if out_shape is None:
        return None
    convs = [AffineConv(conv.weight, *folded(conv, bn, x)) for conv, bn in layers]
    cut = None if shortcut is None else AffineConv(shortcut[0].weight, *folded(shortcut[0], shortcut[1], x))
    return AffineBlock(convs, cut), out_shape


def _chained_shape(
    x: Tensor, shape: tuple, layers: Sequence[tuple[Module, Module]], shortcut: Any, relu: Module
) -> tuple | None:
    """The output shape of a block with an input of ``shape`` (x's dtype) when it runs as a chained
    convolution, else None.  It does inside ``inference_mode()`` on NumPy arrays (where the folded
    filters are made once), with a plain ReLU, every (conv, bn) folding on the input it gets, and a
    shortcut that is None with the block keeping its input's shape, or a hook-free
    ``Sequential(Conv2d, BatchNorm2d)`` that folds and gives the block's shape.  Anything else (a
    shape that does not fit included) takes the separate ops, which raise their own errors."""
    from .containers import Sequential  # noqa: PLC0415  (containers runs stages of blocks through here)

    if relu is None or not _plain_relu(relu) or not layers or not isinstance(x, Tensor) or len(shape) != 4:
        return None
    out_shape = tuple(shape)
    for conv, bn in layers:
        if not _folds_once(conv, bn, out_shape, x):
            return None
        out_shape = output_shape(conv, out_shape)
    if shortcut is None:
        return out_shape if out_shape == tuple(shape) else None
    if type(shortcut) is not Sequential or len(shortcut) != 2 or shortcut._forward_hooks:
        return None
    conv, bn = shortcut[0], shortcut[1]
    if not _folds_once(conv, bn, shape, x) or output_shape(conv, shape) != out_shape:
        return None
    return out_shape


def _folds_once(conv: Module, bn: Module, shape: tuple, x: Tensor) -> bool:
    """A plain Conv2d whose filters are made once here (inference mode, NumPy), folding with ``bn``."""
    return type(conv) is Conv2d and prepares(conv.weight.data) and folds(conv, bn, shape, x.dtype)


__all__ = ["residual_block", "residual_blocks"]
