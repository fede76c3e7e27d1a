"""Checkpoints as one ``.npz`` file: arrays as arrays, everything else as JSON.  No pickle.

Layout of a checkpoint written by :func:`save_checkpoint`::

    model/layer1.0.conv1.weight          float32 array   (model.state_dict())
    model/bn1.running_mean               float32 array
    optimizer/state/3/momentum_buffer    float32 array   (optimizer.state_dict())
    __meta__                             uint8 array: UTF-8 JSON text

The nested ``state_dict`` of an optimizer or scheduler (dicts, lists, tuples, Python
and NumPy scalars, strings, arrays) is split in two: every array is stored as its
own ``.npz`` entry named by its path in the structure, and the rest of the
structure is stored in the JSON under ``"tree"``, with ``{"__array__": KEY}`` where an
array was.  ``load_checkpoint`` rebuilds the structure exactly: int dict keys, tuples,
NumPy scalar dtypes and array dtypes all round-trip.

Because the file holds only numeric arrays and JSON, ``np.load(..., allow_pickle=False)``
reads it, and loading a checkpoint from an untrusted source cannot execute code
(unlike ``torch.load`` / ``pickle``).  A truncated, corrupted or foreign file raises
:class:`CheckpointError`, which names the file and says that nothing was unpickled.

Writes are atomic (:func:`~minitorch_nndl.train.atomic.atomic_write`): the file is written
to a temporary name in the same directory, flushed to disk, and moved over the destination
with ``os.replace``, so a crash or Ctrl-C while saving leaves the previous checkpoint intact,
never a half-written one.
"""

from __future__ import annotations

import json
import os
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .atomic import atomic_write

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "flatten_state",
    "unflatten_state",
    "restore_model",
    "restore_optimizer",
    "restore_scheduler",
    "to_jsonable",
]

META_KEY = "__meta__"
FORMAT_VERSION = 1


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or backend.is_cuda_array(x)


def flatten_state(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Move every array of ``tree`` into ``arrays`` (keyed ``prefix/path``); return the JSON skeleton.

    Arrays (NumPy, CuPy or Tensors) are copied to host memory.  Dict keys that are not
    all strings, tuples and NumPy scalars are tagged so that they round-trip exactly.
    """
    if isinstance(tree, Tensor):
        tree = tree.data
    if _is_array(tree):
        array = backend.to_numpy(tree)
        if array.dtype.hasobject:
            raise TypeError(f"save_checkpoint: {prefix!r} is an object array, which cannot be saved without pickle")
        if prefix in arrays:
            raise ValueError(f"save_checkpoint: two entries map to the key {prefix!r}")
        arrays[prefix] = np.asarray(array, order="C")
        return {"__array__": prefix}
    if isinstance(tree, np.generic):
        return {"__scalar__": tree.item(), "dtype": tree.dtype.str}
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree) and "__array__" not in tree and "__items__" not in tree:
            return {k: flatten_state(v, f"{prefix}/{k}", arrays) for k, v in tree.items()}
        items = []
        for k, v in tree.items():
            key = k.item() if isinstance(k, np.generic) else k
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise TypeError(f"save_checkpoint: unsupported dict key {k!r} of type {type(k).__name__} at {prefix!r}")
            items.append([key, flatten_state(v, f"{prefix}/{key}", arrays)])
        return {"__items__": items}
    if isinstance(tree, tuple):
        return {"__tuple__": [flatten_state(v, f"{prefix}/{i}", arrays) for i, v in enumerate(tree)]}
    if isinstance(tree, list):
        return [flatten_state(v, f"{prefix}/{i}", arrays) for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, (str, bool, int, float)):
        return tree
    if isinstance(tree, Path):
        return str(tree)
    raise TypeError(
        f"save_checkpoint: cannot store a value of type {type(tree).__name__} at {prefix!r} "
        "(allowed: arrays, tensors, dicts, lists, tuples, numbers, strings, None)"
    )


def unflatten_state(skeleton: Any, arrays: Any) -> Any:
    """Inverse of :func:`flatten_state`: put the arrays back into the JSON skeleton."""
    if isinstance(skeleton, dict):
        if "__array__" in skeleton and len(skeleton) == 1:
            return arrays[skeleton["__array__"]]
        if "__scalar__" in skeleton and set(skeleton) == {"__scalar__", "dtype"}:
            return np.dtype(skeleton["dtype"]).type(skeleton["__scalar__"])
        if "__items__" in skeleton and len(skeleton) == 1:
            return {k: unflatten_state(v, arrays) for k, v in skeleton["__items__"]}
        if "__tuple__" in skeleton and len(skeleton) == 1:
            return tuple(unflatten_state(v, arrays) for v in skeleton["__tuple__"])
        return {k: unflatten_state(v, arrays) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, arrays) for v in skeleton]
    return skeleton


def to_jsonable(value: Any) -> Any:
    """A JSON-friendly copy of ``value`` (NumPy scalars -> Python, tuples -> lists, Paths -> str)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def _state_of(obj: Any) -> Any:
    return obj.state_dict() if hasattr(obj, "state_dict") else obj


def save_checkpoint(
    path: str | os.PathLike,
    model: Any = None,
    optimizer: Any = None,
    scheduler: Any = None,
    **extra: Any,
) -> Path:
    """Write one ``.npz`` checkpoint atomically and return its path.

    ``model``/``optimizer``/``scheduler`` may be objects with ``state_dict()`` or
    state dicts themselves.  Every keyword in ``extra`` (epoch, step, config, RNG
    states, loader state, history, ...) is stored the same way: arrays as ``.npz``
    entries under ``NAME/...``, the rest as JSON.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    tree: dict[str, Any] = {}
    for name, obj in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None:
            tree[name] = flatten_state(_state_of(obj), name, arrays)
    for name, value in extra.items():
        if name in ("model", "optimizer", "scheduler") or name.startswith("__"):
            raise ValueError(f"save_checkpoint: reserved name {name!r}")
        tree[name] = flatten_state(value, name, arrays)
    meta = {"format": "minitorch_nndl.checkpoint", "version": FORMAT_VERSION, "tree": tree}
    text = json.dumps(meta, allow_nan=True)
    arrays[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    with atomic_write(path) as fh:
        np.savez(fh, **arrays)
    return path


class CheckpointError(ValueError):
    """A file is not a readable minitorch_nndl checkpoint: truncated, corrupted, or something else.

    The message names the file and says that nothing from it was unpickled: a damaged
    checkpoint is refused, never "loaded unsafely".
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"checkpoint {self.path} is damaged or not a minitorch_nndl checkpoint: {reason}. Nothing was loaded "
            "from it (checkpoints are read without pickle, so a damaged file cannot run code); use another "
            "checkpoint of the run (last.npz or best.npz) or train again"
        )


ZIP_MAGIC = b"PK\x03\x04"  # every .npz is a zip archive
# What reading a damaged zip / .npy / JSON can raise; each means "this file is not intact".
_DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,  # bad .npy header, pickled (object) data refused, bad JSON
    SyntaxError,  # .npy header that is not a Python literal
    tokenize.TokenError,
    KeyError,  # the JSON names an array that is not in the file
    TypeError,
)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` into a dict of its parts.

    Returns ``{"model": {...}, "optimizer": {...}, "scheduler": {...}, **extra}``
    (only the parts that were saved), with NumPy arrays on the host.  Raises
    ``FileNotFoundError`` for a missing file and :class:`CheckpointError` (a
    ``ValueError``) for one that is truncated, corrupted or not a checkpoint at all.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"checkpoint {str(path)!r} {what}")
    with open(path, "rb") as fh:
        head = fh.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        raise CheckpointError(path, "the file is empty" if not head else "it is not a .npz (zip) file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if META_KEY not in npz.files:
                raise CheckpointError(path, f"it has no {META_KEY} entry (a plain .npz, not a checkpoint)")
            meta = json.loads(npz[META_KEY].tobytes().decode("utf-8"))
            arrays = {k: npz[k] for k in npz.files if k != META_KEY}
        if not isinstance(meta, dict) or meta.get("format") != "minitorch_nndl.checkpoint":
            raise CheckpointError(path, "its metadata does not describe a minitorch_nndl checkpoint")
        return unflatten_state(meta["tree"], arrays)
    except CheckpointError:
        raise
    except _DAMAGE as exc:
        raise CheckpointError(path, _describe_damage(exc)) from None


def _describe_damage(exc: BaseException) -> str:
    """What went wrong, in words that do not suggest loading the file unsafely."""
    text = str(exc)
    if "pickle" in text:  # NumPy's message suggests allow_pickle=True: never for a checkpoint
        return "it contains pickled (object) data, which a checkpoint never holds"
    if isinstance(exc, zipfile.BadZipFile) and "CRC" in text:
        return f"its bytes do not match their checksum ({text}): the file was corrupted"
    if isinstance(exc, (zipfile.BadZipFile, EOFError)):
        return f"the zip archive is broken, most likely truncated ({text})"
    return f"{type(exc).__name__}: {text}"


def _move_arrays(tree: Any, device: str) -> Any:
    if isinstance(tree, np.ndarray):
        return backend.to_device(tree, device)
    if isinstance(tree, dict):
        return {k: _move_arrays(v, device) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_move_arrays(v, device) for v in tree]
    if isinstance(tree, tuple):
        return tuple(_move_arrays(v, device) for v in tree)
    return tree


def _first_param_device(obj: Any) -> str:
    try:
        for group in obj.param_groups:
            for p in group["params"]:
                return p.device
    except (AttributeError, KeyError, TypeError):
        pass
    return "cpu"


def restore_model(model: Any, state: dict[str, Any], strict: bool = True) -> None:
    """Load ``state`` (the checkpoint's ``"model"`` part) into ``model`` on the model's device."""
    device = "cpu"
    for p in model.parameters():
        device = p.device
        break
    model.load_state_dict(_move_arrays(state, device), strict=strict)


def restore_optimizer(optimizer: Any, state: dict[str, Any]) -> None:
    """Load an optimizer's state, moving its arrays to the device of its parameters."""
    optimizer.load_state_dict(_move_arrays(state, _first_param_device(optimizer)))


def restore_scheduler(scheduler: Any, state: dict[str, Any]) -> None:
    scheduler.load_state_dict(state)
