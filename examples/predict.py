#!/usr/bin/env python3
"""Classify one image with a checkpoint written by ``examples/resnet18_cifar10.py``.

    python3 examples/predict.py --checkpoint runs/cifar10-resnet18-default/best.npz my_cat.png

The checkpoint carries the run's config (architecture, stem, width, data set, class
names, normalization), so nothing else is needed.  The image is read with
``matplotlib.image.imread`` (PNG natively; JPEG when Pillow is installed), its alpha
channel dropped, converted to grayscale for Fashion-MNIST (or gray replicated to RGB for
CIFAR-10), centre-cropped to a square and resized to the training resolution (32x32 or
28x28) with bilinear interpolation in NumPy, then normalized as in training.
Prints the top-3 classes with their probabilities.

Note: Fashion-MNIST images are light garments on a black background; a photo of a dark
garment on a white background should be inverted first (``--invert``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import minitorch_nndl as mt  # noqa: E402
from minitorch_nndl import cli  # noqa: E402
from minitorch_nndl.train import restore_model  # noqa: E402
from minitorch_nndl.train.runs import read_run_checkpoint  # noqa: E402


def resize_bilinear(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop ``img`` (H, W, C) to a square and resize it to ``size`` x ``size`` (vectorized)."""
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[top : top + s, left : left + s]
    if s == size:
        return img
    # sample at pixel centres (align_corners=False convention)
    coords = (np.arange(size) + 0.5) * (s / size) - 0.5
    coords = np.clip(coords, 0, s - 1)
    i0 = np.floor(coords).astype(np.intp)
    i1 = np.minimum(i0 + 1, s - 1)
    f = (coords - i0)[:, None]
    rows = img[i0] * (1 - f[:, :, None]) + img[i1] * f[:, :, None]  # (size, s, C)
    cols = rows[:, i0] * (1 - f.T[:, :, None]) + rows[:, i1] * f.T[:, :, None]
    return cols


def load_image(path: str | Path, channels: int, size: int, invert: bool = False) -> np.ndarray:
    """The image as float (1, C, size, size) in [0, 1] before normalization."""
    import matplotlib.image as mpimg

    img = np.asarray(mpimg.imread(str(path)))
    if img.dtype == np.uint8:
        img = img.astype(np.float64) / 255.0
    elif img.dtype == np.uint16:
        img = img.astype(np.float64) / 65535.0
    img = img.astype(np.float64)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 4:  # drop alpha
        img = img[:, :, :3]
    if channels == 1 and img.shape[2] == 3:
        img = img @ np.array([0.299, 0.587, 0.114])[:, None]  # ITU-R 601 luma
    elif channels == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    img = resize_bilinear(img, size)
    if invert:
        img = 1.0 - img
    return np.clip(img, 0, 1).transpose(2, 0, 1)[None].astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 done, 1 damaged checkpoint or unreadable image, 2 usage error; errors are one line."""
    p = cli.OneLineParser(description="Top-3 classes of one image, from a training checkpoint.")
    p.add_argument("image", help="a PNG (or JPEG with Pillow) file")
    p.add_argument("--checkpoint", required=True, help="best.npz or last.npz of a run")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--top", type=int, default=3, help="how many classes to print")
    p.add_argument("--invert", action="store_true", help="invert the gray levels (dark object on light background)")
    return cli.run_program(p, list(sys.argv[1:] if argv is None else argv), predict)


def predict(args: argparse.Namespace) -> int:
    """Print the top classes of ``args.image`` under the model of ``args.checkpoint``."""
    from resnet18_cifar10 import build_model

    ck = read_run_checkpoint(args.checkpoint, "--checkpoint", "resnet18_cifar10.py")
    if not Path(args.image).is_file():
        raise cli.UsageError(f"image {args.image!r} does not exist")
    cfg = ck["config"]
    if args.device == "cuda" and not mt.cuda.is_available():
        raise cli.UsageError("--device cuda, but no CUDA GPU is usable here; use --device cpu")
    model = build_model(cfg).to(args.device)
    restore_model(model, ck["model"])
    model.eval()

    try:
        x = load_image(args.image, cfg["in_channels"], cfg["image_size"], invert=args.invert)
    except (OSError, ValueError, SyntaxError) as exc:  # what matplotlib/Pillow raise for an unreadable file
        raise cli.DataError(
            f"cannot read {args.image} as an image ({exc}); give a PNG file (JPEG needs Pillow)"
        ) from None
    mean = np.asarray(cfg["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(cfg["std"], dtype=np.float32).reshape(1, -1, 1, 1)
    x = (x - mean) / std
    with mt.no_grad():
        probs = model(mt.tensor(x, device=args.device)).softmax(axis=1).numpy()[0]
    classes = cfg["classes"]
    order = np.argsort(-probs)[: max(1, min(args.top, len(classes)))]
    print(f"{args.image}  ({cfg['arch']} on {cfg['dataset']}, {Path(args.checkpoint).name})")
    for rank, k in enumerate(order, 1):
        print(f"  {rank}. {classes[k]:<12s} {100 * probs[k]:6.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
