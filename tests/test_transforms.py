"""Batch transforms: shapes/dtypes, exact flips, crops are windows of the padded image, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl.data import (
    Compose,
    Cutout,
    Normalize,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    ToTensor,
)
from minitorch_nndl.tensor import Tensor


def _nhwc(n: int = 6, h: int = 7, w: int = 9, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def _nchw(n: int = 6, c: int = 3, h: int = 7, w: int = 9, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.1, 1.0, size=(n, c, h, w)).astype(np.float32)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- ToTensor / Normalize
def test_to_tensor_batch_single_and_gray():
    x = _nhwc()
    t = ToTensor()(x)
    assert isinstance(t, Tensor) and t.device == "cpu" and not t.requires_grad
    assert t.shape == (6, 3, 7, 9) and t.dtype == np.float32 and t.numpy().flags.c_contiguous
    np.testing.assert_allclose(t.numpy(), x.transpose(0, 3, 1, 2).astype(np.float64) / 255.0, rtol=1e-6)
    single = ToTensor()(x[2])
    assert single.shape == (3, 7, 9)
    np.testing.assert_array_equal(single.numpy(), t.numpy()[2])
    gray = ToTensor()(x[0, :, :, 0])
    assert gray.shape == (1, 7, 9)
    assert ToTensor()(t) is t  # already a tensor
    floats = t.numpy()
    assert ToTensor()(floats).numpy() is floats  # a float array is wrapped, not copied


def test_transforms_return_what_they_are_given():
    """A NumPy array in gives a NumPy array out; a Tensor in (e.g. after ToTensor) a Tensor out."""
    x = _nchw()
    norm = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert isinstance(norm(x), np.ndarray)
    out = norm(Tensor(x))
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out.numpy(), norm(x))
    pipeline = Compose([RandomCrop(7, padding=1), ToTensor(), norm])
    assert isinstance(pipeline(_nhwc(), rng=_rng()), Tensor)
    with pytest.raises(TypeError):
        ToTensor()(x.astype(np.int32))


def test_normalize_matches_formula_and_keeps_float32():
    x = _nchw()
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    out = Normalize(mean, std)(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    want = (x.astype(np.float64) - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Normalize(mean, std)(x[0]), out[0], rtol=1e-6)
    with pytest.raises(TypeError, match="ToTensor"):
        Normalize(mean, std)(_nhwc())
    with pytest.raises(ValueError):
        Normalize((0.5, 0.5), (0.1, 0.1))(x)
    with pytest.raises(ValueError):
        Normalize((0.5,), (0.0,))


# ----------------------------------------------------------------------------- RandomCrop
def _find_offsets(crop: np.ndarray, padded: np.ndarray, size: tuple[int, int], channels_last: bool) -> list:
    """All (oy, ox) where ``crop`` equals the explicit slice of ``padded`` (one sample)."""
    th, tw = size
    ph, pw = (padded.shape[0], padded.shape[1]) if channels_last else (padded.shape[1], padded.shape[2])
    hits = []
    for oy in range(ph - th + 1):
        for ox in range(pw - tw + 1):
            window = padded[oy : oy + th, ox : ox + tw] if channels_last else padded[:, oy : oy + th, ox : ox + tw]
            if np.array_equal(window, crop):
                hits.append((oy, ox))
    return hits


@pytest.mark.parametrize("mode", ["constant", "reflect"])
@pytest.mark.parametrize("layout", ["nhwc_uint8", "nchw_float"])
def test_random_crop_outputs_are_windows_of_padded_image(mode, layout):
    x = _nhwc(n=40) if layout == "nhwc_uint8" else _nchw(n=40)
    channels_last = layout == "nhwc_uint8"
    crop = RandomCrop((7, 8), padding=3, padding_mode=mode)
    out = crop(x, rng=_rng(1))
    assert out.dtype == x.dtype
    assert out.shape == ((40, 7, 8, 3) if channels_last else (40, 3, 7, 8))
    padded = crop.pad(x)
    offsets = set()
    for i in range(40):
        hits = _find_offsets(out[i], padded[i], (7, 8), channels_last)
        assert hits, f"sample {i} is not a window of its padded image"
        offsets.update(hits)
    assert len(offsets) > 15  # per-sample offsets, spread over the 7 x 5 positions


def test_reflect_padding_mirrors_without_repeating_the_edge():
    x = _nhwc(n=2, h=6, w=5)
    p = 2
    padded = RandomCrop(6, padding=p, padding_mode="reflect").pad(x)
    assert padded.shape == (2, 10, 9, 3)
    np.testing.assert_array_equal(padded[:, p : p + 6, p : p + 5], x)
    for k in range(p):
        np.testing.assert_array_equal(padded[:, p - 1 - k, p : p + 5], x[:, k + 1])  # top
        np.testing.assert_array_equal(padded[:, p + 6 + k, p : p + 5], x[:, 6 - 2 - k])  # bottom
        np.testing.assert_array_equal(padded[:, p : p + 6, p - 1 - k], x[:, :, k + 1])  # left
        np.testing.assert_array_equal(padded[:, p : p + 6, p + 5 + k], x[:, :, 5 - 2 - k])  # right
    const = RandomCrop(6, padding=p, fill=7).pad(x)
    assert (const[:, :p] == 7).all() and (const[:, :, -p:] == 7).all()
    with pytest.raises(ValueError):
        RandomCrop(6, padding=6, padding_mode="reflect").pad(x)


def test_random_crop_without_padding_and_errors():
    x = _nchw(h=8, w=8)
    out = RandomCrop(8)(x, rng=_rng())
    np.testing.assert_array_equal(out, x)
    with pytest.raises(ValueError):
        RandomCrop(9)(x, rng=_rng())
    with pytest.raises(ValueError):
        RandomCrop(4, padding_mode="edge")


# ----------------------------------------------------------------------------- flips
@pytest.mark.parametrize("layout", ["nhwc_uint8", "nchw_float"])
def test_horizontal_flip_is_exact_mirror(layout):
    x = _nhwc(n=64) if layout == "nhwc_uint8" else _nchw(n=64)
    w_axis = 2 if layout == "nhwc_uint8" else 3
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x, rng=_rng()), np.flip(x, axis=w_axis))
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x, rng=_rng()), x)
    out = RandomHorizontalFlip()(x, rng=_rng(3))
    flipped = np.array([np.array_equal(o, np.flip(s, axis=w_axis - 1)) for o, s in zip(out, x)])
    same = np.array([np.array_equal(o, s) for o, s in zip(out, x)])
    assert (flipped ^ same).all()  # each sample is either untouched or exactly mirrored
    assert 10 < flipped.sum() < 54
    single = RandomHorizontalFlip(p=1.0)(x[0], rng=_rng())
    np.testing.assert_array_equal(single, np.flip(x[0], axis=w_axis - 1))


# ----------------------------------------------------------------------------- cutout / erasing
@pytest.mark.parametrize("layout", ["nhwc_uint8", "nchw_float"])
def test_cutout_zeroes_one_clipped_square(layout):
    x = (_nhwc(n=30, h=12, w=12) | 1) if layout == "nhwc_uint8" else _nchw(n=30, h=12, w=12)
    out = Cutout(5)(x, rng=_rng(2))
    assert out.shape == x.shape and out.dtype == x.dtype
    hw = (out == 0).all(axis=3 if layout == "nhwc_uint8" else 1)  # (N, H, W) erased pixels
    changed = (out != x).any(axis=3 if layout == "nhwc_uint8" else 1)
    np.testing.assert_array_equal(hw, changed)
    for m in hw:
        ys, xs = np.nonzero(m)
        assert 0 < m.sum() <= 25
        box = m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert box.all() and box.shape[0] <= 5 and box.shape[1] <= 5
    assert (hw.sum(axis=(1, 2)) == 25).sum() > 5  # most squares lie inside the image


def test_random_erasing_rectangles_and_probability():
    x = _nchw(n=50, h=16, w=16)
    out = RandomErasing(p=1.0, scale=(0.05, 0.2), ratio=(0.5, 2.0))(x, rng=_rng(4))
    assert out.shape == x.shape and out.dtype == np.float32
    erased = (out == 0).all(axis=1)
    for m in erased:
        assert m.any()
        ys, xs = np.nonzero(m)
        box = m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert box.all()
        assert 0.03 * 256 <= m.sum() <= 0.25 * 256  # area fraction within scale, up to rounding
    np.testing.assert_array_equal(RandomErasing(p=0.0)(x, rng=_rng()), x)
    per_channel = RandomErasing(p=1.0, value=(1.0, 2.0, 3.0))(x, rng=_rng(5))
    assert set(np.unique(per_channel[:, 2][per_channel[:, 0] == 1.0])) <= {3.0}
    noisy = RandomErasing(p=1.0, value="random")(x, rng=_rng(6))
    assert noisy.dtype == np.float32 and not np.array_equal(noisy, x)
    with pytest.raises(TypeError):
        RandomErasing(value="random")(_nhwc(), rng=_rng())


# ----------------------------------------------------------------------------- reproducibility
def _pipeline() -> Compose:
    return Compose(
        [
            RandomCrop(32, padding=4, padding_mode="reflect"),
            RandomHorizontalFlip(),
            ToTensor(),
            Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
            Cutout(8),
            RandomErasing(p=0.5),
        ]
    )


def test_pipeline_shapes_dtype_and_seeds():
    x = _nhwc(n=16, h=32, w=32)
    a = _pipeline()(x, rng=_rng(7))
    b = _pipeline()(x, rng=_rng(7))
    c = _pipeline()(x, rng=_rng(8))
    assert a.shape == (16, 3, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # constructor seeds and the library seed also reproduce
    s1 = RandomCrop(32, padding=4, seed=3)(x)
    s2 = RandomCrop(32, padding=4, seed=3)(x)
    np.testing.assert_array_equal(s1, s2)
    mt.manual_seed(9)
    g1 = RandomHorizontalFlip()(x)
    mt.manual_seed(9)
    np.testing.assert_array_equal(RandomHorizontalFlip()(x), g1)


def test_transforms_reject_bad_input():
    with pytest.raises(TypeError):
        RandomHorizontalFlip()([[1, 2]])
    with pytest.raises(ValueError):
        RandomHorizontalFlip()(np.zeros((2, 3), np.float32))


def test_layout_can_be_given_instead_of_implied_by_the_dtype() -> None:
    """layout="NHWC"/"NCHW" says where the channels are, whatever the dtype; "auto" keeps the
    torchvision rule (uint8 channels last, floats channels first)."""
    from minitorch_nndl.data import transforms

    rng = np.random.default_rng(0)
    nchw = rng.standard_normal((3, 2, 5, 4)).astype(np.float32)
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
    for make in (
        lambda layout: transforms.RandomCrop(4, padding=1, seed=3, layout=layout),
        lambda layout: transforms.RandomHorizontalFlip(p=0.5, seed=3, layout=layout),
        lambda layout: transforms.Cutout(2, seed=3, layout=layout),
        lambda layout: transforms.RandomErasing(p=1.0, value=(1.0, 2.0), seed=3, layout=layout),
    ):
        from_nchw = make("NCHW")(nchw)
        from_nhwc = make("NHWC")(nhwc)  # float data, channels last: only an explicit layout gets it right
        np.testing.assert_array_equal(from_nhwc, from_nchw.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(make("auto")(nchw), from_nchw)
    with pytest.raises(ValueError, match="layout must be one of"):
        transforms.RandomCrop(4, layout="HWC")
