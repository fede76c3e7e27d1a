"""``minitorch_nndl.nn``: modules, layers, losses, initialisation.

The public API at a glance::

    Module, Parameter                       the registry: parameters(), buffers, train()/eval(),
                                            to(device), zero_grad(), state_dict()/load_state_dict()
    Sequential, ModuleList, Identity        containers
    Linear, Conv2d                          learnable layers (PyTorch's initialisation)
    BatchNorm1d, BatchNorm2d                normalisation (running statistics as buffers)
    SyncBatchNorm                           batch norm over the ranks of a data-parallel job
    LocalResponseNorm                       AlexNet's normalisation across channels
    ReLU, LeakyReLU, Sigmoid, Tanh          activations
    MaxPool2d, AvgPool2d, AdaptiveAvgPool2d pooling
    Flatten, Dropout                        reshaping, regularisation
    conv_bn                                 conv + batch norm, folded into one conv in evaluation
    residual_block                          a residual block's convs + shortcut, depth first in evaluation
    ProcessReplicas                         evaluation on every core: the model forked, a batch share each
    CrossEntropyLoss, NLLLoss, MSELoss      losses
    functional (as F), init                 stateless ops; weight initialisers

One file per family, as in PyTorch's ``torch/nn/modules``: the layer you want to
read is in the file named after it (``nn/normalization.py`` holds BatchNorm).
"""

from . import functional, init
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .containers import Identity, ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten
from .fused import conv_bn
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, RemovableHandle
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .replicas import ProcessReplicas
from .residual import residual_block
from .sync_batchnorm import SyncBatchNorm

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "IncompatibleKeys",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "MSELoss",
    "Module",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ProcessReplicas",
    "ReLU",
    "RemovableHandle",
    "Sequential",
    "Sigmoid",
    "SyncBatchNorm",
    "Tanh",
    "conv_bn",
    "functional",
    "init",
    "residual_block",
]
