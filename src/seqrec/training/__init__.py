"""Training: the seeded loop (`fit`) and the regimes that say what a model learns from.

Importing this package loads neither a model module nor polars nor the service.
"""

from seqrec.training.loop import STOP, History, fit, resolve_device
from seqrec.training.regimes import REGIMES, Batch, Regime, make_regime

__all__ = ["REGIMES", "STOP", "Batch", "History", "Regime", "fit", "make_regime", "resolve_device"]
