"""Metrics against plain NumPy computations, including a short last batch."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl.train.metrics import (
    Accuracy,
    ConfusionMatrix,
    MeanMetric,
    PerClassAccuracy,
    TopKAccuracy,
    _onehot_counts,
)


def _data(n: int = 203, c: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)).astype(np.float32)
    labels = rng.integers(0, c, n).astype(np.int64)
    # make the model right on ~half the samples so accuracies are not near chance
    right = rng.random(n) < 0.5
    logits[right, labels[right]] += 3.0
    return logits, labels


def _batches(logits: np.ndarray, labels: np.ndarray, bs: int, device: str):
    for i in range(0, len(labels), bs):
        yield mt.tensor(logits[i : i + bs], device=device), mt.tensor(labels[i : i + bs], device=device)


def test_accuracy_counts_samples_not_batches(device: str) -> None:
    logits, labels = _data()
    m = Accuracy()
    per_batch = []
    for x, y in _batches(logits, labels, 64, device):  # 64, 64, 64, 11
        m.update(x, y)
        per_batch.append(float((x.numpy().argmax(1) == y.numpy()).mean()))
    expected = float((logits.argmax(1) == labels).mean())
    assert m.total == len(labels)
    assert m.compute() == pytest.approx(expected, abs=1e-12)
    # the common bug: the mean of per-batch accuracies differs with a short last batch
    assert abs(np.mean(per_batch) - expected) > 1e-4


def test_accuracy_keeps_counts_on_device(device: str) -> None:
    logits, labels = _data(50)
    m = Accuracy()
    m.update(mt.tensor(logits, device=device), mt.tensor(labels, device=device))
    assert mt.backend.device_of(m.correct) == mt.backend.normalize_device(device)
    assert m.correct.dtype == np.int64


def test_accuracy_accepts_predicted_labels_and_resets() -> None:
    logits, labels = _data(40)
    m = Accuracy()
    m.update(logits.argmax(1), labels)
    assert m.compute() == pytest.approx(float((logits.argmax(1) == labels).mean()))
    m.reset()
    assert np.isnan(m.compute())
    m.update(labels, labels)
    assert m.compute() == 1.0


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_topk_matches_argsort(device: str, k: int) -> None:
    logits, labels = _data()
    m = TopKAccuracy(k)
    for x, y in _batches(logits, labels, 50, device):
        m.update(x, y)
    topk = np.argsort(-logits, axis=1)[:, :k]
    expected = float((topk == labels[:, None]).any(axis=1).mean())
    assert m.compute() == pytest.approx(expected, abs=1e-12)
    assert m.name == f"top{k}"


def test_top1_equals_accuracy() -> None:
    logits, labels = _data()
    a, t = Accuracy(), TopKAccuracy(1)
    a.update(logits, labels)
    t.update(logits, labels)
    assert a.compute() == t.compute()


def test_confusion_matrix_and_per_class_accuracy(device: str) -> None:
    logits, labels = _data(n=157, c=5)
    cm, pc = ConfusionMatrix(5), PerClassAccuracy(5)
    for x, y in _batches(logits, labels, 32, device):
        cm.update(x, y)
        pc.update(x, y)
    pred = logits.argmax(1)
    expected = np.zeros((5, 5), dtype=np.int64)
    np.add.at(expected, (labels, pred), 1)
    got = cm.compute()
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    assert got.sum() == len(labels)
    per_class = np.array([(pred[labels == c] == c).mean() for c in range(5)])
    np.testing.assert_allclose(pc.compute(), per_class, rtol=0, atol=1e-12)


def test_onehot_counts_match_bincount() -> None:
    """The GPU formula of ConfusionMatrix (no host sync), checked with NumPy against bincount."""
    rng = np.random.default_rng(3)
    t, p = rng.integers(0, 6, 500), rng.integers(0, 6, 500)
    got = _onehot_counts(np, t, p, 6)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.bincount(t * 6 + p, minlength=36).reshape(6, 6))
    # out-of-range labels land in no cell (ConfusionMatrix reports them in compute on a GPU)
    bad = _onehot_counts(np, np.array([0, 7, -1]), np.array([0, 0, 0]), 6)
    assert bad.sum() == 1 and bad[0, 0] == 1


def test_per_class_accuracy_marks_absent_classes_nan() -> None:
    pc = PerClassAccuracy(4)
    pc.update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    out = pc.compute()
    assert out[0] == 0.5 and out[1] == 1.0
    assert np.isnan(out[2]) and np.isnan(out[3])


def test_confusion_matrix_rejects_out_of_range_labels() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="labels must lie in"):
        cm.update(np.array([0, 1]), np.array([0, 5]))


def test_shape_and_dtype_errors() -> None:
    m = Accuracy()
    with pytest.raises(ValueError, match="Accuracy.update"):
        m.update(np.zeros((4, 3)), np.zeros(5, dtype=np.int64))
    with pytest.raises(TypeError, match="integer class labels"):
        m.update(np.zeros((4, 3)), np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="TopKAccuracy"):
        TopKAccuracy(0)


def test_mean_metric_is_sample_weighted(device: str) -> None:
    rng = np.random.default_rng(1)
    values = rng.standard_normal(203).astype(np.float32)
    m = MeanMetric()
    for i in range(0, 203, 64):
        chunk = values[i : i + 64]
        m.update(mt.tensor(chunk, device=device).mean(), len(chunk))
    assert m.compute() == pytest.approx(float(values.astype(np.float64).mean()), rel=1e-6)


@pytest.mark.parametrize("make", [Accuracy, lambda: TopKAccuracy(2), lambda: ConfusionMatrix(7), MeanMetric])
def test_state_dict_resumes_the_counts_on_the_device(device: str, make) -> None:
    """Half the batches, a state_dict through JSON, a fresh metric on the device, the other half: as one pass."""
    logits, labels = _data()
    whole, first, second = make(), make(), make()
    batches = list(_batches(logits, labels, 32, device))

    def feed(metric, part):
        for x, y in part:
            if isinstance(metric, MeanMetric):
                metric.update(x.max(), len(y))
            else:
                metric.update(x, y)

    feed(whole, batches)
    feed(first, batches[:3])
    state = first.state_dict()
    if "matrix" in state:
        state["matrix"] = state["matrix"].tolist()
    second.load_state_dict(json.loads(json.dumps(state)), device=device)
    feed(second, batches[3:])
    np.testing.assert_array_equal(second.compute(), whole.compute())
    empty = make()
    empty.load_state_dict(make().state_dict(), device=device)
    assert np.all(np.isnan(empty.compute())) or not np.any(empty.compute())
