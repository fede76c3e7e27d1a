"""Batch-first image transforms (data augmentation) on host NumPy arrays.

Every transform takes a whole batch at once and is vectorized over it: a random crop
of 128 images is one padded array plus one fancy-indexing gather with per-sample
offsets, a random flip is one boolean mask -- never a Python loop over samples.  A
single image works too (it is treated as a batch of one).

Layout: every geometric transform takes ``layout=``: ``"NHWC"`` (channels last, images as
stored on disk), ``"NCHW"`` (channels first, tensors), or ``"auto"`` (the default), which
follows the dtype as torchvision does:

* ``uint8`` arrays are images as stored on disk: channels last, ``(H, W, C)`` or ``(N, H, W, C)``;
* floating arrays are tensors: channels first, ``(C, H, W)`` or ``(N, C, H, W)``.

:class:`ToTensor` turns the first into the second, as a (host) :class:`Tensor`; a transform
given a Tensor returns a Tensor, one given a NumPy array returns a NumPy array.  Geometric transforms (crop, flip,
cutout, erasing) work on both, so the cheap way to augment CIFAR is to crop and flip
the uint8 batch (4x less memory traffic) and convert afterwards::

    Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)])

Randomness: call ``t(x, rng=generator)`` with a ``numpy.random.Generator`` (the
:class:`~minitorch_nndl.data.DataLoader` does this with a generator derived from its
seed, the epoch and the batch number, so augmented batches are reproducible).  Without
``rng`` a transform uses its own generator, made from ``seed=`` when given, else the
library's CPU generator (seeded by ``mt.manual_seed``).

Augmentation runs on the CPU: these transforms accept NumPy arrays and CPU Tensors only, and
the loader copies the finished float32 batch to the GPU afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import backend
from ..ops.validate import pair
from ..tensor import Tensor

__all__ = [
    "Compose",
    "Cutout",
    "Normalize",
    "RandomCrop",
    "RandomErasing",
    "RandomHorizontalFlip",
    "ToTensor",
    "Transform",
]


def _check_numpy(x: Any, name: str) -> np.ndarray:
    if backend.is_cuda_array(x):
        raise TypeError(f"{name}: transforms run on the CPU and take NumPy arrays, got a CuPy array")
    if isinstance(x, Tensor):
        if x.device != "cpu":
            raise TypeError(f"{name}: transforms run on the CPU and take NumPy arrays, got a tensor on {x.device}")
        x = x.numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a NumPy array, got {type(x).__name__}")
    return x


def _as_batch(x: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """Add a leading batch axis to a single 3-D image; returns (batch, was_single)."""
    if x.ndim == 3:
        return x[None], True
    if x.ndim == 4:
        return x, False
    raise ValueError(
        f"{name}: expected an image (H,W,C)/(C,H,W) or a batch (N,H,W,C)/(N,C,H,W), got shape {tuple(x.shape)}"
    )


LAYOUTS = ("auto", "NHWC", "NCHW")


def _check_layout(layout: str, name: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"{name}: layout must be one of {LAYOUTS}, got {layout!r}")
    return layout


def _spatial_axes(x: np.ndarray, layout: str = "auto") -> tuple[int, int]:
    """(H axis, W axis) of a 4-D batch: NHWC -> (1, 2), NCHW -> (2, 3); "auto": NHWC for uint8."""
    if layout == "auto":
        layout = "NHWC" if x.dtype == np.uint8 else "NCHW"
    return (1, 2) if layout == "NHWC" else (2, 3)


def _hw_mask_shape(x: np.ndarray, n: int, layout: str) -> tuple[int, ...]:
    """Shape that broadcasts an (N, H, W) mask against the batch ``x`` (adds the channel axis)."""
    h_axis, w_axis = _spatial_axes(x, layout)
    return (n, x.shape[h_axis], x.shape[w_axis], 1) if h_axis == 1 else (n, 1, x.shape[h_axis], x.shape[w_axis])


def images_to_float(x: Any) -> Any:
    """uint8 ``(N,H,W,C)`` (or ``(N,H,W)``) -> float32 ``(N,C,H,W)`` in [0, 1]; ``(N, F)`` -> float32 / 255.

    Works on NumPy and CuPy arrays (the DataLoader's default conversion uses it on
    either).  Transposes while still 1 byte per value, then one fused cast-and-scale pass.
    """
    xp = backend.xp_of(x)
    if x.ndim == 3:  # (N, H, W) grayscale
        x = x[..., None]
    if x.ndim == 4:
        x = xp.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return xp.multiply(x, xp.float32(1.0 / 255.0), dtype=xp.float32)


class Transform:
    """Base class: ``__call__(x, rng=None)`` maps a batch (or one image) to a batch (or one image).

    Subclasses implement ``apply(batch, rng)`` on a 4-D batch; this class handles single
    images, input checks and the choice of random generator.
    """

    #: whether the transform draws random numbers (deterministic ones ignore ``rng``)
    random: bool = False

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _generator(self, rng: np.random.Generator | None) -> np.random.Generator:
        if rng is not None:
            return rng
        if self._rng is not None:
            return self._rng
        return backend.rng_for("cpu")

    def __call__(self, x: Any, rng: np.random.Generator | None = None) -> Any:
        """``x`` transformed: a NumPy array for a NumPy array, a (host) Tensor for a Tensor."""
        name = type(self).__name__
        given_tensor = isinstance(x, Tensor)
        batch, single = _as_batch(_check_numpy(x, name), name)
        out = self.apply(batch, self._generator(rng) if self.random else None)
        out = out[0] if single else out
        return Tensor(out) if given_tensor else out

    def apply(self, batch: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Compose(Transform):
    """Apply transforms in order, passing the same generator to each."""

    def __init__(self, transforms: Sequence[Any], seed: int | None = None) -> None:
        super().__init__(seed)
        self.transforms = list(transforms)
        self.random = True

    def __call__(self, x: Any, rng: np.random.Generator | None = None) -> Any:
        g = self._generator(rng)
        for t in self.transforms:
            x = t(x, rng=g)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class ToTensor(Transform):
    """uint8 ``(H,W,C)``/``(N,H,W,C)`` in [0, 255] -> float32 :class:`Tensor` ``(C,H,W)``/``(N,C,H,W)`` in [0, 1].

    A 2-D grayscale image ``(H, W)`` becomes ``(1, H, W)``.  Floating input is already a tensor's
    layout and values: it is wrapped as it is (a Tensor given is returned unchanged), so applying
    ToTensor twice is harmless.  The result is a host (CPU) Tensor sharing the converted array; the
    transforms after it return Tensors too, and the DataLoader copies the batch to its device.
    """

    def __call__(self, x: Any, rng: np.random.Generator | None = None) -> Tensor:
        array = _check_numpy(x, "ToTensor")
        if array.dtype.kind == "f":
            return x if isinstance(x, Tensor) else Tensor(array)
        x = array
        if x.dtype != np.uint8:
            raise TypeError(f"ToTensor: expected uint8 images, got dtype {x.dtype}")
        if x.ndim == 2:
            x = x[:, :, None]
        batch, single = _as_batch(x, "ToTensor")
        out = images_to_float(batch)
        return Tensor(out[0] if single else out)


class Normalize(Transform):
    """Per-channel standardization of a float ``(N,C,H,W)`` batch: ``(x - mean[c]) / std[c]``.

    Computed as ``x * (1/std) + (-mean/std)`` in float32 (the input's dtype is kept).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean {self.mean.shape} and std {self.std.shape} differ in length")
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {self.std.tolist()}")

    def apply(self, batch: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if batch.dtype.kind != "f":
            raise TypeError(
                f"Normalize: expected a floating (N,C,H,W) batch, got dtype {batch.dtype} (put ToTensor() first)"
            )
        c = batch.shape[1]
        if self.mean.size not in (1, c):
            raise ValueError(f"Normalize: {self.mean.size} channel statistics for a batch with {c} channels")
        scale = (1.0 / self.std).astype(batch.dtype).reshape(-1, 1, 1)
        shift = (-self.mean / self.std).astype(batch.dtype).reshape(-1, 1, 1)
        out = batch * scale
        out += shift
        return out

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop(Transform):
    """Pad by ``padding`` on every side, then cut a random ``size`` window from each image.

    Vectorized: the batch is padded once (``"constant"`` with ``fill``, or ``"reflect"``,
    which mirrors without repeating the edge pixel), ``sliding_window_view`` exposes every
    window position as a view, and one fancy index ``windows[n, oy[n], ox[n]]`` picks each
    sample's window.  Offsets are uniform over all positions, ``0..H+2p-h`` and ``0..W+2p-w``.
    """

    random = True

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int = 0,
        padding_mode: str = "constant",
        fill: float = 0,
        seed: int | None = None,
        layout: str = "auto",
    ) -> None:
        super().__init__(seed)
        self.layout = _check_layout(layout, "RandomCrop")
        self.size = pair(size, "size", "RandomCrop", minimum=1)
        if padding < 0:
            raise ValueError(f"RandomCrop: padding must be >= 0, got {padding}")
        if padding_mode not in ("constant", "reflect"):
            raise ValueError(f"RandomCrop: padding_mode must be 'constant' or 'reflect', got {padding_mode!r}")
        self.padding = int(padding)
        self.padding_mode = padding_mode
        self.fill = fill

    def pad(self, batch: np.ndarray) -> np.ndarray:
        """The batch padded on its two spatial axes (exposed so tests can check windows against it)."""
        p = self.padding
        if p == 0:
            return batch
        h_axis, w_axis = _spatial_axes(batch, self.layout)
        widths = [(0, 0)] * 4
        widths[h_axis] = widths[w_axis] = (p, p)
        if self.padding_mode == "reflect":
            if p >= batch.shape[h_axis] or p >= batch.shape[w_axis]:
                raise ValueError(f"RandomCrop: reflect padding {p} needs images larger than {p}, got {batch.shape}")
            return np.pad(batch, widths, mode="reflect")
        shape = list(batch.shape)
        shape[h_axis] += 2 * p
        shape[w_axis] += 2 * p
        out = np.full(shape, self.fill, dtype=batch.dtype)  # faster than np.pad's generic path
        inner = [slice(None)] * 4
        inner[h_axis] = inner[w_axis] = slice(p, -p)
        out[tuple(inner)] = batch
        return out

    def apply(self, batch: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        assert rng is not None
        padded = self.pad(batch)
        h_axis, w_axis = _spatial_axes(batch, self.layout)
        th, tw = self.size
        ph, pw = padded.shape[h_axis], padded.shape[w_axis]
        if th > ph or tw > pw:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image ({ph}, {pw})")
        n = batch.shape[0]
        oy = rng.integers(0, ph - th + 1, size=n)
        ox = rng.integers(0, pw - tw + 1, size=n)
        windows = sliding_window_view(padded, (th, tw), axis=(h_axis, w_axis))
        # NHWC: windows is (N, H', W', C, th, tw); NCHW: (N, C, H', W', th, tw).
        rows = np.arange(n)
        if h_axis == 1:
            out = windows[rows, oy, ox]  # (N, C, th, tw)
            return np.ascontiguousarray(out.transpose(0, 2, 3, 1))
        return windows[rows, :, oy, ox]  # advanced indices split by a slice: (N, C, th, tw)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, padding_mode={self.padding_mode!r})"


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (one boolean mask for the batch)."""

    random = True

    def __init__(self, p: float = 0.5, seed: int | None = None, layout: str = "auto") -> None:
        super().__init__(seed)
        self.layout = _check_layout(layout, "RandomHorizontalFlip")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)

    def apply(self, batch: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        assert rng is not None
        flip = rng.random(batch.shape[0]) < self.p
        _, w_axis = _spatial_axes(batch, self.layout)
        out = batch.copy()
        idx = np.flatnonzero(flip)
        if idx.size:  # np.take with reversed column indices copies whole pixels, faster than a ::-1 view
            reverse = np.arange(batch.shape[w_axis] - 1, -1, -1)
            out[idx] = np.take(batch[idx], reverse, axis=w_axis)
        return out

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def _box_mask(h: int, w: int, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """(N, H, W) boolean mask, True inside each sample's box ``[y0, y1) x [x0, x1)``."""
    ys = np.arange(h)[None, :, None]
    xs = np.arange(w)[None, None, :]
    return (ys >= y0[:, None, None]) & (ys < y1[:, None, None]) & (xs >= x0[:, None, None]) & (xs < x1[:, None, None])


class Cutout(Transform):
    """Cutout (DeVries & Taylor, 2017): zero a ``size x size`` square at a random centre.

    The centre is uniform over the image and the square is clipped at the borders, as in
    the paper.  Applied to each sample with probability ``p`` (1 by default); ``value``
    fills the square.
    """

    random = True

    def __init__(
        self, size: int, p: float = 1.0, value: float = 0, seed: int | None = None, layout: str = "auto"
    ) -> None:
        super().__init__(seed)
        self.layout = _check_layout(layout, "Cutout")
        if size <= 0:
            raise ValueError(f"Cutout: size must be positive, got {size}")
        self.size = int(size)
        self.p = float(p)
        self.value = value

    def apply(self, batch: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        assert rng is not None
        n = batch.shape[0]
        h_axis, w_axis = _spatial_axes(batch, self.layout)
        h, w = batch.shape[h_axis], batch.shape[w_axis]
        cy = rng.integers(0, h, size=n)
        cx = rng.integers(0, w, size=n)
        apply = rng.random(n) < self.p
        half = self.size // 2
        y0, y1 = np.clip(cy - half, 0, h), np.clip(cy - half + self.size, 0, h)
        x0, x1 = np.clip(cx - half, 0, w), np.clip(cx - half + self.size, 0, w)
        mask = _box_mask(h, w, y0, y1, x0, x1) & apply[:, None, None]
        return np.where(mask.reshape(_hw_mask_shape(batch, n, self.layout)), batch.dtype.type(self.value), batch)

    def __repr__(self) -> str:
        return f"Cutout(size={self.size}, p={self.p})"


class RandomErasing(Transform):
    """Random Erasing (Zhong et al., 2020): with probability ``p`` overwrite a random rectangle.

    The rectangle's area is a uniform fraction ``scale`` of the image and its aspect ratio
    log-uniform in ``ratio``; like torchvision, up to 10 draws are made per sample and the
    first that fits is used (samples where none fits are left alone).  All draws for the
    batch are made at once.  ``value`` is a number, one number per channel, or
    ``"random"`` (standard-normal noise, floating batches only).
    """

    random = True
    attempts = 10

    def __init__(
        self,
        p: float = 0.5,
        scale: tuple[float, float] = (0.02, 0.33),
        ratio: tuple[float, float] = (0.3, 3.3),
        value: float | Sequence[float] | str = 0,
        seed: int | None = None,
        layout: str = "auto",
    ) -> None:
        super().__init__(seed)
        self.layout = _check_layout(layout, "RandomErasing")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing: p must be in [0, 1], got {p}")
        if not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f"RandomErasing: bad scale {scale} or ratio {ratio}")
        self.p, self.scale, self.ratio, self.value = float(p), tuple(scale), tuple(ratio), value

    def _fill(self, batch: np.ndarray, rng: np.random.Generator) -> Any:
        if isinstance(self.value, str):
            if self.value != "random":
                raise ValueError(f"RandomErasing: value must be a number, a sequence or 'random', got {self.value!r}")
            if batch.dtype.kind != "f":
                raise TypeError("RandomErasing: value='random' needs a floating batch (put it after ToTensor())")
            return rng.standard_normal(batch.shape, dtype=batch.dtype)
        v = np.asarray(self.value, dtype=batch.dtype).reshape(-1)
        if v.size == 1:
            return v[0]
        h_axis, _ = _spatial_axes(batch, self.layout)
        return v.reshape(1, 1, 1, -1) if h_axis == 1 else v.reshape(1, -1, 1, 1)

    def apply(self, batch: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        assert rng is not None
        n, k = batch.shape[0], self.attempts
        h_axis, w_axis = _spatial_axes(batch, self.layout)
        h, w = batch.shape[h_axis], batch.shape[w_axis]
        area = h * w * rng.uniform(self.scale[0], self.scale[1], size=(n, k))
        log_r = rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), size=(n, k))
        aspect = np.exp(log_r)
        eh = np.rint(np.sqrt(area * aspect)).astype(np.intp)
        ew = np.rint(np.sqrt(area / aspect)).astype(np.intp)
        fits = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
        first = np.argmax(fits, axis=1)  # first attempt that fits (0 when none does; masked below)
        rows = np.arange(n)
        eh, ew = eh[rows, first], ew[rows, first]
        erase = fits[rows, first] & (rng.random(n) < self.p)
        y0 = np.floor(rng.random(n) * (h - eh + 1)).astype(np.intp)
        x0 = np.floor(rng.random(n) * (w - ew + 1)).astype(np.intp)
        mask = _box_mask(h, w, y0, y0 + eh, x0, x0 + ew) & erase[:, None, None]
        return np.where(mask.reshape(_hw_mask_shape(batch, n, self.layout)), self._fill(batch, rng), batch)

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value!r})"
