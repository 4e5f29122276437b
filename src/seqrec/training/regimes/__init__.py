"""Training regimes by the name a ModelSpec gives (seqrec.models.base.ModelSpec.regime)."""

from __future__ import annotations

import numpy as np

from seqrec.config import TrainConfig
from seqrec.errors import ConfigError
from seqrec.training.regimes.base import Batch, DeviceExamples, Regime
from seqrec.training.regimes.counting import CountingRegime
from seqrec.training.regimes.masked import MaskedRegime
from seqrec.training.regimes.positions import PositionsRegime
from seqrec.training.regimes.windows import WindowsRegime

REGIMES: dict[str, type[Regime]] = {
    "windows": WindowsRegime,
    "positions": PositionsRegime,
    "masked": MaskedRegime,
    "counting": CountingRegime,
}


def make_regime(name: str, cfg: TrainConfig, num_items: int, popularity: np.ndarray | None = None) -> Regime:
    """The regime `name` for these settings; popularity (num_items + 1,) training counts feed shared negatives."""
    if name not in REGIMES:
        raise ConfigError(f"unknown training regime {name!r}; known: {', '.join(REGIMES)}")
    return REGIMES[name](cfg, num_items, popularity)


__all__ = ["REGIMES", "Batch", "DeviceExamples", "Regime", "make_regime"]
