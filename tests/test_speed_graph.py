"""The graph holds large activations weakly: what no backward saved is freed during the
forward, while gradients, double backward and graph drawing stay as they were."""

from __future__ import annotations

import gc
import weakref

import numpy as np

import minitorch_nndl as mt
from minitorch_nndl import autograd, viz


def _large(seed: int = 0) -> mt.Tensor:
    rng = np.random.default_rng(seed)
    return mt.tensor(rng.standard_normal((8, autograd.KEEP_INPUTS_UP_TO)), dtype=mt.float64, requires_grad=True)


def test_an_activation_no_backward_saved_is_freed_before_backward():
    x = _large()
    h = x * 2.0  # Mul by a constant saves nothing of h; relu saves its output, not h
    probe = weakref.ref(h)
    y = h.relu()
    del h
    gc.collect()
    assert probe() is None  # freed in the forward, as in PyTorch
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 2.0 * (x.data > 0))


def test_a_freed_activation_with_two_consumers_gets_both_gradients():
    """A residual block's input feeds two branches; its stand-in is one object, so the
    two gradients add up before they go further back."""
    x = _large(1)
    h = x * 3.0
    y = (h.relu() + h).sum()
    del h
    y.backward(retain_graph=True)
    expected = 3.0 * ((x.data * 3.0 > 0) + 1.0)
    np.testing.assert_allclose(x.grad, expected)
    x.grad = None
    y.backward()  # the retained graph walks the same stand-ins again
    np.testing.assert_allclose(x.grad, expected)


def test_small_tensors_and_live_tensors_stay_linked_as_they_are():
    x = mt.randn(3, 4, requires_grad=True)
    h = x * 2.0
    y = h.relu()
    assert y._node.inputs[0] is h  # small: held directly
    big = _large(2)
    g = big * 2.0
    z = g.relu()
    assert z._node.inputs[0] is g  # alive: the link gives the tensor itself
    del g
    gc.collect()
    stand_in = z._node.inputs[0]
    assert stand_in is z._node.inputs[0]  # one stand-in per freed output
    assert stand_in.shape == big.shape and stand_in.dtype == big.dtype and stand_in.grad_fn == "Mul"
    assert "Mul" in viz.draw_graph(z)  # the drawing still reaches the leaf through the stand-in


def test_stand_ins_live_on_the_activations_device(device):
    x = mt.randn(4, autograd.KEEP_INPUTS_UP_TO, requires_grad=True, device=device)
    h = x * 3.0
    y = (h.relu() + h).sum()
    del h
    gc.collect()
    stand_in = y._node.inputs[0]._node.inputs[0]  # Sum <- Add <- ReLU: outputs nobody holds
    assert stand_in.device == device
    y.backward()
    expected = 3.0 * ((x.numpy() > 0) + 1.0)
    np.testing.assert_allclose(x.grad.get() if hasattr(x.grad, "get") else x.grad, expected, rtol=1e-6)
