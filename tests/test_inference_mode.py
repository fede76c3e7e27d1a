"""inference_mode(): no_grad plus weights prepared once per block (Winograd's U with the batch
norm folded in), kept honest by read-only parameters.  The outputs must be exactly the
outputs without it, and nothing prepared may outlive a change of the weights."""

from __future__ import annotations

import numpy as np
import pytest
from test_fused import CountCalls
from winograd_kernels import KERNELS, use_winograd_kernel

import minitorch_nndl as mt
from minitorch_nndl import grad_mode, models, nn
from minitorch_nndl.kernels import winograd
from minitorch_nndl.ops import conv as conv_module


def trained_looking_resnet(device="cpu"):
    mt.manual_seed(0)
    model = models.resnet18(dtype=mt.float64, device=device)
    rng = np.random.default_rng(3)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            features = module.num_features
            module.running_mean.data[...] = mt.tensor(rng.standard_normal(features) * 0.1, device=device).data
            module.running_var.data[...] = mt.tensor(rng.uniform(0.5, 2, features), device=device).data
    return model.eval()


def CountTransforms(patch: pytest.MonkeyPatch) -> CountCalls:  # noqa: N802
    """Counts Winograd's filter transforms (U = G g G^T)."""
    return CountCalls(patch, winograd, "transform_filter")


def test_resnet_gives_the_same_logits_and_prepares_its_filters_once(monkeypatch, device):
    model = trained_looking_resnet(device)
    rng = np.random.default_rng(4)
    batches = [mt.tensor(rng.standard_normal((n, 3, 32, 32)), dtype=mt.float64, device=device) for n in (4, 4, 2)]
    with mt.no_grad():
        expected = [model(x).numpy() for x in batches]
    counter = CountTransforms(monkeypatch)
    per_batch = []
    with mt.no_grad():
        for x in batches:
            counter.calls = 0
            model(x)
            per_batch.append(counter.calls)
    counter.calls = 0
    got, made = [], []
    with mt.inference_mode():
        assert mt.is_inference_mode() and not mt.is_grad_enabled()
        for x in batches:
            got.append(model(x).numpy())
            made.append(counter.calls - sum(made))
    assert not mt.is_inference_mode() and mt.is_grad_enabled()
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    if device == "cpu":  # the first batch prepares, the second (same size) reuses everything
        assert made[0] >= per_batch[0] > 0 and made[1] == 0
    else:  # CuPy arrays are never prepared
        assert made == per_batch


def test_the_winograd_filters_made_once_are_contiguous(monkeypatch):
    """Made once per block, U (16, C_in, C_out) is copied contiguous: OpenBLAS runs the 16 GEMMs
    V @ U[a, b] 6-20% faster than on the transposed views made on every training step."""
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES", 1)
    made = []
    real = winograd.transform_filter
    monkeypatch.setattr(winograd, "transform_filter", lambda *a: made.append(real(*a)) or made[-1])
    conv = nn.Conv2d(16, 16, 3, padding=1, bias=False)
    x = mt.randn(2, 16, 8, 8)
    expected = conv(x).numpy()
    assert made and not made[-1].flags.c_contiguous  # training: the transposed view
    with mt.inference_mode():
        got = conv(x).numpy()
        prepared = [value for _, value in grad_mode._state.prepared.values()]
    assert any(getattr(value, "shape", None) == (16, 16, 16) and value.flags.c_contiguous for value in prepared)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_weights_are_read_only_inside_and_a_later_block_sees_their_change():
    model = trained_looking_resnet()
    x = mt.tensor(np.random.default_rng(5).standard_normal((4, 3, 32, 32)), dtype=mt.float64)
    conv = model.layer1[0].conv1
    with mt.inference_mode():
        before = model(x).numpy()
        with pytest.raises(ValueError, match="read-only"):
            conv.weight.data[...] = 0
        with pytest.raises(ValueError, match="read-only"):
            model.layer1[0].bn1.running_var.data *= 2
    conv.weight.data[...] *= 0.5  # writable again after the block
    with mt.no_grad():
        expected = model(x).numpy()
    with mt.inference_mode():
        after = model(x).numpy()
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, expected, rtol=1e-10, atol=1e-10)


def test_a_replaced_weight_array_is_used_and_an_error_inside_unlocks_everything():
    mt.manual_seed(1)
    conv = nn.Conv2d(16, 16, 3, padding=1, bias=False, dtype=mt.float64)
    x = mt.randn(16, 16, 8, 8, dtype=mt.float64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv_module, "MIN_WINOGRAD_TILES", 1)
        with pytest.raises(RuntimeError, match="boom"), mt.inference_mode():
            first = conv(x).numpy()
            conv.weight.data = conv.weight.data * 2  # a new array: what was prepared from the old one is not used
            np.testing.assert_allclose(conv(x).numpy(), 2 * first, rtol=1e-10, atol=1e-10)
            raise RuntimeError("boom")
    assert conv.weight.data.flags.writeable and grad_mode._state.prepared is None
    conv.weight.data[...] = 0  # nothing left locked


@pytest.mark.parametrize("kernel", KERNELS)
def test_nested_blocks_share_the_preparations_and_it_works_as_a_decorator(monkeypatch, kernel):
    mt.manual_seed(2)
    conv = nn.Conv2d(16, 16, 3, padding=1, bias=False)
    x = mt.randn(16, 16, 8, 8)
    counter = CountCalls(monkeypatch, use_winograd_kernel(monkeypatch, kernel), "transform_filter")

    @mt.inference_mode()
    def evaluate():
        return conv(x)

    block = mt.inference_mode()
    with block:
        conv(x)
        evaluate()  # an inner block: the outer block's U
        with block:  # the same object entered again
            conv(x)
        assert not conv.weight.data.flags.writeable  # the inner blocks' ends unlocked nothing
    assert counter.calls == 1 and conv.weight.data.flags.writeable and mt.is_grad_enabled()
    evaluate()
    evaluate()
    assert counter.calls == 3  # each outermost block prepares its own
    assert not evaluate().requires_grad


def test_prepared_outside_a_block_just_makes_the_value():
    array = np.ones(3)
    made = []
    value = grad_mode.prepared("key", (array,), lambda: made.append(1) or "value")
    assert value == "value" and made == [1] and array.flags.writeable


def test_inside_every_batch_norm_folds_even_where_the_filters_outnumber_the_outputs(monkeypatch, device):
    """Outside, a conv whose filters are larger than its output keeps its batch norm apart (scaling
    the filters every call would cost more than the batch norm); inside, the scaled filters are
    made once, so it folds (NumPy; on CuPy nothing is prepared and the rule stays)."""
    from test_fused import CountFolds, make_pair

    conv, bn = make_pair(64, 4, 3, 1, 1, False, True, device)  # 16*64*4 filters > 2*4*6*6 outputs
    x = mt.tensor(np.random.default_rng(8).standard_normal((2, 64, 6, 6)), dtype=mt.float64, device=device)
    folds = CountFolds(monkeypatch)
    with mt.no_grad():
        expected = bn(conv(x)).numpy()
        nn.conv_bn(conv, bn, x)
    assert folds.calls == 0
    with mt.inference_mode():
        got = nn.conv_bn(conv, bn, x).numpy()
    assert folds.calls == (1 if device == "cpu" else 0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_inference_block_names_the_outermost_block_and_keep_fixed_lasts_as_long():
    inference_block, keep_fixed = grad_mode.inference_block, grad_mode.keep_fixed
    assert inference_block() is None
    kept, already = np.zeros(3), np.zeros(3)
    already.flags.writeable = False
    with mt.inference_mode():
        block = inference_block()
        assert block is not None
        with mt.inference_mode():
            assert inference_block() is block  # a nested block is the outer one's
            keep_fixed([kept, already, [1.0]])  # not NumPy arrays: left alone
        assert not kept.flags.writeable  # the nested block's end is not the end
    assert kept.flags.writeable and not already.flags.writeable  # only what it made read-only is unlocked
    with mt.inference_mode():
        assert inference_block() is not block and inference_block() is not None
    assert inference_block() is None


def test_keep_fixed_outside_a_block_is_one_clear_error():
    array = np.zeros(2)
    with pytest.raises(RuntimeError, match="keep_fixed: only inside"):
        grad_mode.keep_fixed([array])
    assert array.flags.writeable
