"""Regime "counting" (popularity, item-transition): one `fit_counts` pass over the training windows."""

from __future__ import annotations

from seqrec.data.sequences import Sequences, Windows, make_windows
from seqrec.training.regimes.base import Regime


class CountingRegime(Regime):
    counting = True

    def examples(self, train: Sequences, L: int) -> Windows:
        return make_windows(train, L, self.cfg.T, self.cfg.windows == "padded")
