"""Model size and cost: parameter counts and multiply-accumulates (MACs) from a forward pass.

MACs are counted for convolutions and linear layers only (they are > 99% of a CNN's
arithmetic), per forward pass of one image:

* Conv2d: C_out * H_out * W_out * (C_in / groups) * KH * KW
* Linear: out_features * in_features (per row of the input)

One MAC is one multiply and one add, so FLOPs ~ 2 x MACs.  Biases, BatchNorm,
activations and pooling are not counted (the same convention as torchvision's
"GFLOPS" column, which is really GMACs: ResNet18 at 224x224 is 1.81 G).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from .. import nn
from ..factories import zeros
from ..grad_mode import no_grad


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (buffers such as BatchNorm running statistics excluded)."""
    return model.num_parameters(trainable_only=trainable_only)


def _layer_macs(module: nn.Module, output_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> int:
    if isinstance(module, nn.Conv2d):
        n, c_out, h, w = output_shape
        kh, kw = module.kernel_size
        return n * c_out * h * w * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        rows = 1
        for d in input_shape[:-1]:
            rows *= d
        return rows * module.in_features * module.out_features
    return 0


def count_macs(
    model: nn.Module, input_shape: Sequence[int], by_layer: bool = False, dtype: Any = None
) -> int | tuple[int, OrderedDict[str, int]]:
    """Multiply-accumulates of one forward pass of a single input of ``input_shape``.

    ``input_shape`` is (C, H, W) (one image) or (N, C, H, W) (N images; the count is for the
    whole batch).  Runs one forward pass on zeros in eval mode without building a graph,
    with forward hooks on every Conv2d and Linear recording their shapes; the model's mode
    is restored afterwards.  With ``by_layer=True`` also returns ``{layer name: MACs}``.

    >>> from minitorch_nndl.models import resnet18
    >>> count_macs(resnet18(), (3, 32, 32))  # doctest: +SKIP
    556651520
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) < 2:
        raise ValueError(f"count_macs: input_shape must be (C, H, W) or (N, C, H, W), got {tuple(input_shape)}")
    per_layer: OrderedDict[str, int] = OrderedDict()
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):

            def hook(m: nn.Module, inputs: tuple, output: Any, name: str = name) -> None:
                per_layer[name] = per_layer.get(name, 0) + _layer_macs(m, tuple(output.shape), tuple(inputs[0].shape))

            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(zeros(shape, dtype=dtype or _param_dtype(model), device=_param_device(model)))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    total = sum(per_layer.values())
    return (total, per_layer) if by_layer else total


def _param_dtype(model: nn.Module) -> Any:
    for p in model.parameters():
        return p.dtype
    return None


def _param_device(model: nn.Module) -> str:
    for p in model.parameters():
        return p.device
    return "cpu"
