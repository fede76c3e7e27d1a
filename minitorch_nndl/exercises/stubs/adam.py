"""Exercise: one step of Adam (docs/07-optimizers.md, "Adam and its bias correction").

PyTorch's rule (and ``minitorch_nndl.optim.Adam``'s) for one parameter array, at step
t = 1, 2, ...: add the L2 weight decay to the gradient; update the first moment m and
the second moment v (both start at zero) as exponential averages of g and g**2 with
rates beta1 and beta2; correct both for starting at zero (the bias correction, which
depends on t); step by lr * m_hat / (sqrt(v_hat) + eps).

Write: ``adam_step``.  Return new arrays (or update in place and return them).

Check:  python3 -m minitorch_nndl.exercises check adam --dir DIR
"""

import numpy as np  # noqa: F401  (you will need it)


def adam_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    """One Adam step at step number ``t`` (1 for the first); returns (new_param, new_m, new_v)."""
    raise NotImplementedError("adam_step: write it (the module docstring gives the rule)")
