"""The exercises, in teaching order: what each one asks, where the docs explain it, and the usual mistakes.

This module is plain data (no Hypothesis, no NumPy): ``list`` works without the grader's
dependencies.  Each :class:`Exercise` names the file the student edits (``<name>.py``),
the class or function in it that the grader takes (``attr``), the sibling files it
imports (``uses``), and one hint per kind of failure the grader can report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EXERCISES", "Exercise", "by_name", "names"]


@dataclass(frozen=True)
class Exercise:
    """One build-it-yourself exercise."""

    name: str  # the CLI name and the file's stem: check mul  <->  mul.py
    title: str  # one line for ``list``
    chapter: str  # the docs file (and section) that explains it
    attr: str  # the Function subclass (or, for optimizers, the function) the grader takes from the file
    input_names: tuple[str, ...]  # the forward's positional arguments, as the report names them
    uses: tuple[str, ...] = ()  # sibling exercises the file imports
    hints: dict[str, str] = field(default_factory=dict)  # failure kind -> the usual mistake
    optimizer: bool = False  # a step function compared step by step, not a Function gradchecked
    constants: tuple[int, ...] = ()  # floating inputs that get no gradient and may be updated in place

    @property
    def file(self) -> str:
        return f"{self.name}.py"

    def hint(self, kind: str) -> str | None:
        """The hint for a failure of ``kind`` ("shape", "values", "error", ...), or the general one."""
        return self.hints.get(kind) or self.hints.get("any")


_UNBROADCAST = (
    "where an input was broadcast, its gradient is the sum over its copies: unbroadcast(dL/dy * ..., input.shape)"
)

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "unbroadcast",
        "unbroadcast: the backward of broadcasting",
        "docs/02-reverse-mode.md, Broadcasting forces a sum in the backward pass",
        "BroadcastTo",
        ("x", "shape"),
        hints={
            "shape": "sum over the leading axes broadcasting added (grad.ndim - len(shape) of them), then over the "
            "axes where shape has 1 with keepdims=True",
            "values": "each input element was copied to every position of its broadcast axes: add all the copies "
            "(sum, not mean, and not just one of them)",
        },
    ),
    Exercise(
        "mul",
        "y = a * b, with broadcasting",
        "docs/03-op-derivatives.md, Elementwise ops",
        "Mul",
        ("a", "b"),
        uses=("unbroadcast",),
        hints={"shape": _UNBROADCAST, "values": "each input's derivative is the *other* input: dL/da = dL/dy * b"},
    ),
    Exercise(
        "div",
        "y = a / b, with broadcasting",
        "docs/03-op-derivatives.md, Elementwise ops",
        "Div",
        ("a", "b"),
        uses=("unbroadcast",),
        hints={
            "shape": _UNBROADCAST,
            "values": "d(a/b)/da = 1/b and d(a/b)/db = -a / b**2 (mind the minus sign and the square)",
        },
    ),
    Exercise(
        "pow",
        "y = a ** b for two tensors",
        "docs/03-op-derivatives.md, Elementwise ops",
        "Pow",
        ("a", "b"),
        uses=("unbroadcast",),
        hints={
            "shape": _UNBROADCAST,
            "values": "dy/da = b * a**(b - 1) (the power rule) and dy/db = a**b * ln(a) = y * ln(a)",
        },
    ),
    Exercise(
        "exp",
        "y = e^x",
        "docs/03-op-derivatives.md, Elementwise ops",
        "Exp",
        ("x",),
        hints={"values": "d e^x / dx = e^x, which the forward saved as y: dL/dx = dL/dy * y"},
    ),
    Exercise(
        "log",
        "y = ln x",
        "docs/03-op-derivatives.md, Elementwise ops",
        "Log",
        ("x",),
        hints={"values": "d ln(x) / dx = 1 / x: dL/dx = dL/dy / x"},
    ),
    Exercise(
        "sum",
        "sum over axes (keepdims or not)",
        "docs/03-op-derivatives.md, Reductions",
        "Sum",
        ("x", "axes", "keepdims"),
        hints={
            "shape": "with keepdims=False, reshape grad to x.shape with 1 on the reduced axes first, then "
            "broadcast it to x.shape (np.broadcast_to)",
            "values": "every element of x changes its sum by exactly its own change: dL/dx is dL/dy copied back, "
            "unscaled",
        },
    ),
    Exercise(
        "mean",
        "mean over axes (keepdims or not)",
        "docs/03-op-derivatives.md, Reductions",
        "Mean",
        ("x", "axes", "keepdims"),
        uses=("sum",),
        hints={
            "shape": "with keepdims=False, reshape grad to x.shape with 1 on the reduced axes first, then "
            "broadcast it to x.shape (np.broadcast_to)",
            "values": "the mean is the sum divided by n, the number of elements averaged (the product of the "
            "reduced axes' sizes, 1 when none): dL/dx = dL/dy / n, broadcast back (a forgotten 1/n?)",
        },
    ),
    Exercise(
        "matmul",
        "Y = A @ B: vectors, matrices, broadcast batches",
        "docs/03-op-derivatives.md, Matrix multiplication",
        "MatMul",
        ("A", "B"),
        uses=("unbroadcast",),
        hints={
            "shape": "promote a 1-D operand to a matrix first (a[None, :], b[:, None], and grad likewise), swap "
            "only the last two axes (np.swapaxes(m, -1, -2)), unbroadcast batch axes, then reshape to the "
            "operand's shape",
            "values": "dL/dA = dL/dY @ B^T and dL/dB = A^T @ dL/dY (transpose the other operand, and keep the "
            "order of the product)",
            "error": "the shapes of a matrix product must line up: dL/dA = dL/dY @ B^T is (m, n) @ (n, k); "
            "promote 1-D operands to matrices first",
        },
    ),
    Exercise(
        "relu",
        "y = max(x, 0)",
        "docs/03-op-derivatives.md, Elementwise ops",
        "ReLU",
        ("x",),
        hints={"values": "the gradient passes unchanged where x > 0 and is 0 where x < 0: dL/dx = dL/dy * (x > 0)"},
    ),
    Exercise(
        "softmax",
        "softmax along an axis",
        "docs/03-op-derivatives.md, Softmax and log-softmax",
        "Softmax",
        ("x", "axis"),
        hints={
            "values": "dL/dx = p * (g - sum(g * p, axis, keepdims=True)): the sum runs along the softmax axis only",
            "shape": "sum along ctx.axis with keepdims=True, so the result broadcasts against p",
        },
    ),
    Exercise(
        "log_softmax",
        "log-softmax along an axis",
        "docs/03-op-derivatives.md, Softmax and log-softmax",
        "LogSoftmax",
        ("x", "axis"),
        hints={
            "values": "dL/dx = g - softmax(x) * sum(g, axis, keepdims=True), and softmax(x) = exp(y)",
            "shape": "sum along ctx.axis with keepdims=True, so the result broadcasts against y",
        },
    ),
    Exercise(
        "cross_entropy",
        "cross-entropy with label smoothing: p - q",
        "docs/03-op-derivatives.md, Cross-entropy: the gradient is p - y",
        "CrossEntropy",
        ("logits", "target", "reduction", "label_smoothing"),
        hints={
            "values": "dloss_n/dz_n = softmax(z_n) - q_n with q = (1 - eps) onehot + eps / C; then times grad, "
            "divided by N for reduction='mean', row by row (grad[:, None]) for 'none'",
            "shape": "dL/dz has the logits' shape (N, C); for reduction='none' grad is (N,): use grad[:, None]",
        },
    ),
    Exercise(
        "im2col",
        "col2im: the backward of im2col",
        "docs/04-convolution.md, Backward: two matrix products and col2im",
        "Im2col",
        ("x", "kernel_size", "stride", "padding", "dilation"),
        hints={
            "values": "add (+=), do not assign: a pixel in several windows gets the sum of their entries; build "
            "the padded (N, C, H+2p, W+2p) gradient and cut the padding off at the end",
            "shape": "col2im returns x's shape (N, C, H, W): reshape cols to (C, KH, KW, N, OH, OW) first and "
            "drop the padding at the end",
        },
    ),
    Exercise(
        "conv2d",
        "conv2d by im2col + GEMM: dx, dW, db",
        "docs/04-convolution.md, Backward: two matrix products and col2im",
        "Conv2d",
        ("x", "weight", "bias", "stride", "padding", "dilation", "groups"),
        uses=("im2col",),
        hints={
            "values": "with G = grad as a (C_out, N*OH*OW) matrix (transpose(1, 0, 2, 3), then reshape): "
            "dW_mat = G @ cols.T, dcols = W_mat.T @ G then dx = col2im(dcols, ...), db = grad.sum(axis=(0, 2, 3))",
            "shape": "dW_mat = G @ cols.T is (C_out, N*OH*OW) @ (N*OH*OW, C*KH*KW): reshape it to weight.shape; "
            "db is (C_out,)",
            "error": "dW_mat = G @ cols.T: (C_out, N*OH*OW) @ (N*OH*OW, C*KH*KW), so cols needs its transpose; "
            "G is grad.transpose(1, 0, 2, 3).reshape(C_out, -1)",
        },
    ),
    Exercise(
        "max_pool2d",
        "max pooling: the gradient goes to the argmax",
        "docs/06-pooling.md, Max pooling",
        "MaxPool2d",
        ("x", "kernel", "stride", "padding", "out_hw"),
        hints={
            "values": "per kernel offset k, add grad where argmax == k to that offset's window of a padded zero "
            "array (+=, so overlapping windows add), then cut the padding off",
            "shape": "build the gradient in the padded shape, then crop [:, :, ph:ph+H, pw:pw+W] back to x's shape",
        },
    ),
    Exercise(
        "batch_norm",
        "batch norm in training mode: the closed form",
        "docs/05-batch-norm.md, Backward: from the chain rule to the closed form",
        "BatchNorm",
        ("x", "gamma", "beta", "running_mean", "running_var", "use_batch_stats", "update_running", "momentum", "eps"),
        constants=(3, 4),
        hints={
            "values": "dL/dx = gamma / (M sigma) * (M g - sum(g) - xhat * sum(g * xhat)), sums per channel over "
            "ctx.axes; dL/dgamma = sum(g * xhat), dL/dbeta = sum(g); M = ctx.count",
            "shape": "the per-channel sums are (C,): reshape them to ctx.shape to broadcast against x, and return "
            "dL/dgamma and dL/dbeta with shape (C,)",
        },
    ),
    Exercise(
        "sgd_momentum",
        "one SGD step with momentum and weight decay",
        "docs/07-optimizers.md, Momentum and Nesterov momentum",
        "sgd_momentum_step",
        ("param", "grad", "buf", "lr", "momentum", "weight_decay"),
        optimizer=True,
        hints={
            "values": "g = grad + weight_decay * param; buf = g on the first step (buf is None), else "
            "buf = momentum * buf + g; param = param - lr * buf",
        },
    ),
    Exercise(
        "adam",
        "one Adam step with bias correction",
        "docs/07-optimizers.md, Adam and its bias correction",
        "adam_step",
        ("param", "grad", "m", "v", "t", "lr", "beta1", "beta2", "eps", "weight_decay"),
        optimizer=True,
        hints={
            "values": "g = grad + weight_decay * param; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g**2; "
            "param -= lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps): t starts at 1 and eps goes "
            "outside the square root",
        },
    ),
)


def names() -> list[str]:
    """The exercise names, in teaching order."""
    return [exercise.name for exercise in EXERCISES]


def by_name(name: str) -> Exercise | None:
    """The exercise called ``name``, or None."""
    for exercise in EXERCISES:
        if exercise.name == name:
            return exercise
    return None
