"""Optimizers and learning-rate schedules.

    SGD(params, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0, maximize=False)
    Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)
    AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)
    lr_scheduler: StepLR MultiStepLR CosineAnnealingLR OneCycleLR LinearLR SequentialLR LambdaLR
    split_weight_decay(model_or_named_parameters, weight_decay) -> two parameter groups

A training step::

    opt = SGD(split_weight_decay(model, 5e-4), lr=0.1, momentum=0.9, nesterov=True)
    opt.zero_grad()
    loss.backward()
    opt.step()

Update rules match ``torch.optim`` exactly; steps run in place on ``p.data``
with the parameter's own array module (NumPy or CuPy) and dtype.
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    SequentialLR,
    StepLR,
)
from .optimizer import Optimizer
from .sgd import SGD
from .utils import split_weight_decay

param_groups_for_weight_decay = split_weight_decay

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler", "param_groups_for_weight_decay", "split_weight_decay"]
__all__.extend(name for name in lr_scheduler.__all__ if name != "lr_sequence")  # every scheduler class
