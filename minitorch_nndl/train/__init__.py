"""``minitorch_nndl.train``: the training loop and what surrounds it.

* :class:`Trainer` -- ``fit`` / ``evaluate`` / ``predict``, best and last checkpoints,
  exact resume, Ctrl-C and NaN handling, history (see :mod:`.trainer`).  The loop is
  :mod:`.trainer`; around it, one job per module: :mod:`.position` (where the run stands,
  exact resume), :mod:`.interrupt` (Ctrl-C), :mod:`.divergence` and :mod:`.last_good` (the
  NaN stop), :mod:`.reporting` (epoch numbers, progress bar, summary lines),
  :mod:`.evaluation` (evaluate/predict), :mod:`.placement` (the device rule for batches),
  :mod:`.atomic` (atomic file writes), :mod:`.sharded` (what the loop does on several ranks);
* metrics counted on the device: :class:`Accuracy`, :class:`TopKAccuracy`,
  :class:`PerClassAccuracy`, :class:`ConfusionMatrix` (see :mod:`.metrics` for the
  bugs they avoid);
* checkpoints as pickle-free ``.npz``: :func:`save_checkpoint`, :func:`load_checkpoint`;
* :class:`History` (JSON/CSV) and :mod:`.plots` (PNG figures; imported lazily because
  it loads matplotlib);
* :mod:`.recipe`, :mod:`.runs` and :mod:`.data_parallel`: what the example programs train with,
  their run folders, and what ``--distributed`` changes (shards, SyncBatchNorm + DDP, rank 0 writes).
"""

from . import data_parallel, recipe, runs  # what the programs train with; run folders; --distributed
from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    restore_model,
    restore_optimizer,
    restore_scheduler,
    save_checkpoint,
)
from .history import History
from .metrics import Accuracy, ConfusionMatrix, MeanMetric, Metric, PerClassAccuracy, TopKAccuracy
from .trainer import FitResult, NonFiniteLossError, Trainer


def __getattr__(name: str):
    if name == "plots":
        import importlib

        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Trainer",
    "FitResult",
    "NonFiniteLossError",
    "CheckpointError",
    "History",
    "Metric",
    "Accuracy",
    "TopKAccuracy",
    "PerClassAccuracy",
    "ConfusionMatrix",
    "MeanMetric",
    "save_checkpoint",
    "load_checkpoint",
    "restore_model",
    "restore_optimizer",
    "restore_scheduler",
    "plots",
]
