"""Wrong shapes, dtypes and indices raise errors that name the op and the shapes."""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_nndl as mt


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("maximum", mt.maximum),
        ("minimum", mt.minimum),
        ("pow", lambda a, b: a**b),
    ],
)
def test_elementwise_shape_mismatch_names_op_and_shapes(name: str, fn) -> None:  # noqa: ANN001
    a, b = mt.rand(2, 3) + 0.5, mt.rand(4, 3) + 0.5
    with pytest.raises(ValueError) as info:
        fn(a, b)
    message = str(info.value)
    assert name in message and "(2, 3)" in message and "(4, 3)" in message, message


def test_comparison_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"less.*\(2,\).*\(3,\)"):
        mt.ones(2) < mt.ones(3)  # noqa: B015


def test_matmul_shape_errors_name_op_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(4, 5\).*3 != 4"):
        mt.randn(2, 3) @ mt.randn(4, 5)
    with pytest.raises(ValueError, match=r"matmul.*\(3,\).*\(2,\)"):
        mt.matmul(mt.randn(3), mt.randn(2))
    with pytest.raises(ValueError, match=r"matmul.*batch.*\(2, 3, 4\).*\(5, 4, 2\)"):
        mt.randn(2, 3, 4) @ mt.randn(5, 4, 2)
    with pytest.raises(ValueError, match=r"matmul.*at least 1 dimension"):
        mt.tensor(2.0) @ mt.randn(3)


def test_where_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"where.*\(3,\).*\(2,\)"):
        mt.where(mt.ones(3) > 0, mt.ones(2), 0.0)


def test_reshape_to_a_wrong_size() -> None:
    x = mt.randn(2, 3)
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"reshape.*\(4, -1\)"):
        x.reshape(4, -1)
    with pytest.raises(ValueError, match=r"reshape"):
        x.reshape(-1, -1)
    with pytest.raises(ValueError, match=r"reshape"):
        x.view(7)


def test_bad_axes() -> None:
    x = mt.randn(2, 3)
    with pytest.raises(ValueError, match=r"axis 2 is out of range.*2 dimensions"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="out of range"):
        x.mean(axis=-3)
    with pytest.raises(ValueError, match=r"squeeze.*size 3"):
        x.squeeze(1)
    with pytest.raises(ValueError, match="unsqueeze"):
        x.unsqueeze(4)
    with pytest.raises(ValueError, match="permute"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match=r"broadcast_to.*\(2, 3\).*\(3, 3\)"):
        x.broadcast_to((3, 3))
    with pytest.raises(ValueError, match="out of range"):
        mt.tensor(1.0).sum(axis=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_index_arrays_are_rejected(dtype: type) -> None:
    x = mt.randn(5)
    with pytest.raises(IndexError, match=r"integer or boolean.*float"):
        x[np.array([0.0, 1.0], dtype=dtype)]
    with pytest.raises(IndexError, match=r"integer or boolean.*float"):
        x[mt.tensor([0.0, 2.0])]
    with pytest.raises(IndexError, match=r"integer or boolean"):
        x[[0.5, 1.0]]


def test_out_of_range_index_is_an_error() -> None:
    with pytest.raises(IndexError):
        mt.randn(3)[np.array([0, 3])]


def test_concatenate_errors() -> None:
    a, b = mt.randn(2, 3), mt.randn(2, 4)
    with pytest.raises(ValueError, match=r"concatenate.*\(2, 3\).*\(2, 4\).*axis 0"):
        mt.concatenate([a, b], axis=0)
    with pytest.raises(ValueError, match=r"concatenate.*\(2, 3\).*\(3,\)"):
        mt.concatenate([a, mt.randn(3)])
    with pytest.raises(ValueError, match="at least one"):
        mt.concatenate([])
    with pytest.raises(ValueError, match="zero-dimensional"):
        mt.concatenate([mt.tensor(1.0), mt.tensor(2.0)])
    with pytest.raises(ValueError, match="out of range"):
        mt.concatenate([a, a], axis=2)
    assert mt.concatenate([a, b], axis=1).shape == (2, 7)


def test_stack_errors() -> None:
    with pytest.raises(ValueError, match=r"stack.*same shape.*\(2, 3\).*\(3, 2\)"):
        mt.stack([mt.randn(2, 3), mt.randn(3, 2)])
    with pytest.raises(ValueError, match="at least one"):
        mt.stack([])
    with pytest.raises(ValueError, match=r"stack.*axis 4"):
        mt.stack([mt.randn(2, 3)] * 2, axis=4)
    with pytest.raises(TypeError, match="stack"):
        mt.stack([mt.randn(2), np.ones(2)])


def test_pad_errors() -> None:
    with pytest.raises(ValueError, match="pad: negative"):
        mt.pad(mt.randn(2, 2), -1)
    with pytest.raises(ValueError, match=r"pad.*\(2, 2\)"):
        mt.pad(mt.randn(2, 2), ((1, 1), (1, 1), (1, 1)))


def test_reductions_of_empty_tensors() -> None:
    with pytest.raises(ValueError, match=r"max.*empty.*\(0,\)"):
        mt.zeros(0).max()
    with pytest.raises(ValueError, match=r"min.*empty"):
        mt.zeros(0, 3).min()


def test_clamp_needs_a_bound_and_softmax_one_axis() -> None:
    with pytest.raises(ValueError, match="clamp"):
        mt.clamp(mt.randn(2))
    with pytest.raises(ValueError, match="softmax"):
        mt.softmax(mt.randn(2, 3), axis=(0, 1))


def test_operations_need_a_tensor() -> None:
    with pytest.raises(TypeError, match="add: at least one operand must be a Tensor"):
        mt.add(1.0, 2.0)


def test_backward_twice_message() -> None:
    w = mt.randn(3, requires_grad=True)
    loss = (w.sigmoid() * w).sum()
    loss.backward()
    with pytest.raises(RuntimeError) as info:
        loss.backward()
    message = str(info.value)
    assert "second time" in message
    assert "retain_graph=True" in message
    assert "Sum" in message  # names the op where it stopped


def test_item_and_len_errors() -> None:
    with pytest.raises(ValueError, match=r"item.*\(3,\)"):
        mt.randn(3).item()
    with pytest.raises(TypeError, match="0-d"):
        len(mt.tensor(1.0))


def test_expand_errors() -> None:
    with pytest.raises(ValueError, match=r"expand.*\(3, 1\)"):
        mt.randn(3, 1).expand(-1, 3, 4)
    with pytest.raises(ValueError, match="broadcast_to"):
        mt.randn(3, 2).expand(3, 4)
    assert mt.randn(3, 1).expand(2, -1, 4).shape == (2, 3, 4)
