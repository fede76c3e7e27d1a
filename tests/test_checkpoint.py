"""Checkpoints: pickle-free .npz round trips, atomic writes, restore into live objects."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl.train.checkpoint import flatten_state, load_checkpoint, save_checkpoint, unflatten_state


def _nested_state() -> dict:
    return {
        "state": {
            0: {"momentum_buffer": np.arange(6, dtype=np.float32).reshape(2, 3), "step": 3},
            3: {"exp_avg": np.ones(4, dtype=np.float64), "count": np.int64(7), "beta": np.float32(0.5)},
        },
        "param_groups": [{"lr": 0.1, "params": [0, 3], "betas": (0.9, 0.999), "nesterov": True, "name": None}],
    }


def test_round_trip_nested_state(tmp_path) -> None:
    model_sd = {"layer1.0.conv1.weight": np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)}
    rng_state = mt.backend.get_rng_state()
    path = save_checkpoint(
        tmp_path / "ck.npz",
        model=model_sd,
        optimizer=_nested_state(),
        epoch=4,
        step=123,
        rng=rng_state,
        numpy_global=np.random.get_state(),
        config={"lr": 0.1, "name": "x", "layers": [1, 2]},
    )
    with np.load(path, allow_pickle=False) as npz:
        names = set(npz.files)
    assert "model/layer1.0.conv1.weight" in names
    assert "optimizer/state/0/momentum_buffer" in names
    assert "optimizer/state/3/exp_avg" in names
    ck = load_checkpoint(path)
    np.testing.assert_array_equal(ck["model"]["layer1.0.conv1.weight"], model_sd["layer1.0.conv1.weight"])
    assert ck["model"]["layer1.0.conv1.weight"].dtype == np.float32
    opt = ck["optimizer"]
    assert set(opt["state"]) == {0, 3}  # int keys survive
    assert opt["state"][0]["step"] == 3
    assert opt["state"][3]["count"] == 7 and isinstance(opt["state"][3]["count"], np.int64)
    assert isinstance(opt["state"][3]["beta"], np.float32)
    assert opt["state"][3]["exp_avg"].dtype == np.float64
    assert opt["param_groups"][0]["betas"] == (0.9, 0.999)
    assert opt["param_groups"][0]["name"] is None
    assert ck["epoch"] == 4 and ck["step"] == 123
    assert ck["rng"] == rng_state  # 128-bit ints round-trip through JSON
    state = ck["numpy_global"]
    np.random.set_state(state)  # usable as is
    assert ck["config"] == {"lr": 0.1, "name": "x", "layers": [1, 2]}


def test_no_pickle_in_file(tmp_path) -> None:
    path = save_checkpoint(tmp_path / "ck.npz", model={"w": np.ones(3, np.float32)}, meta={"a": 1})
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            header = zf.read(name)[:128]
            assert b"'descr': '|O'" not in header
    meta = np.load(path, allow_pickle=False)["__meta__"]
    assert meta.dtype == np.uint8
    assert json.loads(meta.tobytes())["format"] == "minitorch_nndl.checkpoint"


def test_object_arrays_and_unknown_types_are_refused(tmp_path) -> None:
    with pytest.raises(TypeError, match="object array"):
        save_checkpoint(tmp_path / "a.npz", extra=np.array([{}], dtype=object))
    with pytest.raises(TypeError, match="cannot store"):
        save_checkpoint(tmp_path / "b.npz", extra={"f": object()})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "c.npz", __meta__=1)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch) -> None:
    path = save_checkpoint(tmp_path / "ck.npz", model={"w": np.zeros(3, np.float32)})
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model={"w": np.ones(3, np.float32)})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]  # the temporary file was removed


def test_flatten_unflatten_inverse() -> None:
    tree = {"a": [1, 2.5, "s", None, (np.arange(3), {"x": np.float32(1)})], "b": {1: True, 2: {"c": np.eye(2)}}}
    arrays: dict = {}
    skeleton = flatten_state(tree, "root", arrays)
    json.dumps(skeleton)  # the skeleton is pure JSON
    back = unflatten_state(json.loads(json.dumps(skeleton)), arrays)
    np.testing.assert_array_equal(back["a"][4][0], np.arange(3))
    assert back["a"][:4] == [1, 2.5, "s", None]
    assert back["b"][1] is True
    np.testing.assert_array_equal(back["b"][2]["c"], np.eye(2))


def test_missing_and_foreign_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a minitorch_nndl checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")


def test_restore_model_and_optimizer(tmp_path, device: str) -> None:
    from minitorch_nndl import nn, optim
    from minitorch_nndl.train import restore_model, restore_optimizer

    def make():
        m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).to(device)
        return m, optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    model, opt = make()
    x = mt.randn(16, 4, device=device)
    y = mt.randint(0, 3, (16,), device=device)
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    path = save_checkpoint(tmp_path / "ck.npz", model=model, optimizer=opt)
    model2, opt2 = make()
    ck = load_checkpoint(path)
    restore_model(model2, ck["model"])
    restore_optimizer(opt2, ck["optimizer"])
    for (name, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        np.testing.assert_array_equal(mt.backend.to_numpy(a), mt.backend.to_numpy(b), err_msg=name)
    # one more identical step on both gives identical weights (momentum buffers restored)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        o.step()
    for p, q in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def _damaged_copies(path, tmp_path) -> dict:
    """The ways a checkpoint gets damaged: cut short, one flipped bit, empty, random bytes."""
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x10  # inside the first array's bytes: the zip CRC no longer matches
    variants = {
        "truncated": data[: len(data) // 2],
        "bit-flipped": bytes(flipped),
        "empty": b"",
        "random bytes": np.random.default_rng(0).bytes(4096),
        "a pickle": b"\x80\x04\x95" + bytes(40),  # what np.load would offer to unpickle
    }
    out = {}
    for name, content in variants.items():
        target = tmp_path / f"{name.replace(' ', '_')}.npz"
        target.write_bytes(content)
        out[name] = target
    return out


def test_damaged_checkpoints_name_the_file_and_are_never_unpickled(tmp_path) -> None:
    from minitorch_nndl.train.checkpoint import CheckpointError

    good = save_checkpoint(tmp_path / "ck.npz", model={"w": np.ones((40, 40), np.float32)}, config={"a": 1})
    for name, path in _damaged_copies(good, tmp_path).items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert str(path) in message and "damaged" in message, name
        assert "cannot run code" in message, name
        assert "allow_pickle" not in message, name  # no nudge towards loading it unsafely
        assert isinstance(info.value, ValueError)  # callers catching ValueError keep working
    assert load_checkpoint(good)["config"] == {"a": 1}  # the original is fine


def test_a_folder_is_not_a_checkpoint(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="is a folder"):
        load_checkpoint(tmp_path)
