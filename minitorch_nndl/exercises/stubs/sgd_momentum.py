"""Exercise: one step of SGD with momentum and weight decay (docs/07-optimizers.md,
"Momentum and Nesterov momentum" and "Weight decay, and why AdamW decouples it").

There is no backward here: the gradient is given, and the step is the exercise.  The
rule is PyTorch's (and ``minitorch_nndl.optim.SGD``'s), for one parameter array:
the L2 weight decay is added to the gradient; the momentum buffer is a decaying sum
of those gradients (each step, ``momentum`` times the old buffer plus the new
gradient; on the first step, when ``buf`` is None, the gradient itself, no
dampening); and the parameter moves by lr times the buffer against it.

Write: ``sgd_momentum_step``.  Return new arrays (or update ``param`` and ``buf`` in
place and return them).

Check:  python3 -m minitorch_nndl.exercises check sgd_momentum --dir DIR
"""


def sgd_momentum_step(param, grad, buf, lr, momentum, weight_decay):
    """One SGD step; returns (new_param, new_buf).  ``buf`` is None on the first step."""
    raise NotImplementedError("sgd_momentum_step: write it (the module docstring gives the rule)")
