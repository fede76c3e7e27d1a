"""``minitorch_nndl.models``: ready-made networks.

resnet10, resnet18, resnet34, resnet50, resnet101, resnet152   (ResNet, BasicBlock, Bottleneck)
    width=64 by default; width=16 gives a narrow, fast variant
    stem="cifar" (3x3 conv, no max-pool; 32x32 inputs) or "imagenet" (torchvision's)
LeNet5                                                (28x28 or 32x32 inputs)
VGG, vgg11, vgg16                                     (with BatchNorm, 32x32 inputs)
AlexNet, alexnet                                      (torchvision's; lrn=True for the paper's LRN)
GoogLeNet, googlenet                                  (Inception v1 as torchvision; aux_logits=True for the aux heads)
    stem="imagenet" (224x224 inputs, the default) or "cifar" (32x32 inputs)
count_parameters, count_macs                          (model size and cost)
"""

from .alexnet import AlexNet, alexnet
from .googlenet import BasicConv2d, GoogLeNet, GoogLeNetOutputs, Inception, InceptionAux, googlenet
from .lenet import LeNet5
from .resnet import BasicBlock, Bottleneck, ResNet, resnet10, resnet18, resnet34, resnet50, resnet101, resnet152
from .summary import count_macs, count_parameters
from .vgg import VGG, vgg11, vgg16

__all__ = [
    "AlexNet",
    "BasicBlock",
    "BasicConv2d",
    "Bottleneck",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "Inception",
    "InceptionAux",
    "LeNet5",
    "ResNet",
    "VGG",
    "alexnet",
    "count_macs",
    "count_parameters",
    "googlenet",
    "resnet10",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg11",
    "vgg16",
]
