"""Training: the seeded loop (`fit`) and the regimes that say what a model learns from.

Importing this package loads neither a model module nor polars nor the service.
"""

from seqrec.training.checkpoint import TrainState, load_checkpoint, save_checkpoint
from seqrec.training.loop import STOP, DivergenceError, History, fit, resolve_device
from seqrec.training.regimes import REGIMES, Batch, Regime, make_regime

__all__ = ["REGIMES", "STOP", "Batch", "DivergenceError", "History", "Regime", "TrainState", "fit",
           "load_checkpoint", "make_regime", "resolve_device", "save_checkpoint"]
