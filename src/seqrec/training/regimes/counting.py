"""Regime "counting" (popularity, item-transition): one `fit_counts` pass over the training windows."""

from __future__ import annotations

from seqrec.training.regimes.windows import WindowsRegime


class CountingRegime(WindowsRegime):
    """The windows regime's examples (train.windows included), counted once instead of trained on."""

    counting = True
