"""Training history: per-step loss and learning rate, per-epoch summaries; JSON and CSV.

``History.steps`` is a list of ``{"step", "epoch", "loss", "lr"}`` rows (``step`` counts
optimizer steps from 1, ``epoch`` numbers epochs from 1, as the console does);
``History.epochs`` a list of per-epoch rows such as
``{"epoch", "train_loss", "train_acc", "dev_loss", "dev_acc", "lr", "seconds",
"images_per_sec", "steps"}`` (columns may vary: every scalar metric becomes a column).

``save(out_dir)`` writes ``history.json`` (both lists), ``history.csv`` (one row per
epoch) and ``history_steps.csv`` (one row per step); the CSV files end lines with ``\n``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write, atomic_write_json

__all__ = ["History"]


def _clean(value: Any) -> Any:
    """Python scalars for JSON/CSV; NaN/inf become None in JSON (valid JSON, unlike NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class History:
    """What happened during training, in a shape that plots and spreadsheets read."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.epochs: list[dict[str, Any]] = []

    # -------------------------------------------------------------- recording
    def log_steps(self, rows: list[dict[str, Any]]) -> None:
        self.steps.extend(rows)

    def log_epoch(self, row: dict[str, Any]) -> None:
        self.epochs.append(dict(row))

    def column(self, name: str, source: str = "epochs") -> list[Any]:
        """All values of one column (None where a row lacks it)."""
        rows = self.steps if source == "steps" else self.epochs
        return [row.get(name) for row in rows]

    def truncate(self, step: int, epochs_done: int) -> None:
        """Forget the steps after ``step`` and the epochs after the first ``epochs_done``."""
        self.steps = [r for r in self.steps if r["step"] <= step]
        self.epochs = [r for r in self.epochs if r["epoch"] <= epochs_done]

    # -------------------------------------------------------------- (de)serialization
    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": [{k: _clean(v) for k, v in r.items()} for r in self.steps],
            "epochs": [{k: _clean(v) for k, v in r.items()} for r in self.epochs],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        nan = float("nan")
        self.steps = [{k: (nan if v is None else v) for k, v in r.items()} for r in state.get("steps", [])]
        self.epochs = [{k: (nan if v is None else v) for k, v in r.items()} for r in state.get("epochs", [])]

    def save(self, out_dir: str | os.PathLike) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        atomic_write_json(out / "history.json", state)
        _write_csv(out / "history.csv", state["epochs"])
        _write_csv(out / "history_steps.csv", state["steps"])

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        """Read ``history.json`` (a path to the file or to its folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / "history.json"
        h = cls()
        h.load_state_dict(json.loads(path.read_text()))
        return h

    def __repr__(self) -> str:
        return f"History({len(self.steps)} steps, {len(self.epochs)} epochs)"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    with atomic_write(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
