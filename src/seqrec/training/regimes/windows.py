"""Regime "windows" (Caser, BPR-MF): the L items before each window's T targets predict them."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from seqrec.data.sequences import Sequences, Windows, make_windows
from seqrec.losses import FULL_LOSSES, SAMPLED_LOSSES
from seqrec.training.regimes.base import Batch, Regime


class WindowsRegime(Regime):
    """A sampled loss scores targets and negatives in one call, model.score(users, inputs, [targets,
    negatives]) -> (B, T + N), and takes loss(scores[:, :T], scores[:, T:]); a full loss (softmax)
    takes loss(model.score_all(users, inputs), targets)."""

    def examples(self, train: Sequences, L: int) -> Windows:
        return make_windows(train, L, self.cfg.T, self.cfg.windows == "padded")

    def batch_loss(self, model: nn.Module, batch: Batch, rng: np.random.Generator) -> Tensor:
        shared = self.shared(batch.targets, rng)
        if shared is not None:                                                         # (B, T) targets, C shared
            T = batch.targets.size(1)
            pos = model.score(batch.users, batch.inputs, batch.targets).reshape(-1)     # (B T,)
            cand = model.score(batch.users, batch.inputs, shared.items).repeat_interleave(T, 0)  # (B T, C)
            return shared.loss(pos, cand, batch.targets.reshape(-1))
        if batch.negatives is None:
            scores = model.score_all(batch.users, batch.inputs)                          # (B, num_items + 1)
            return FULL_LOSSES[self.cfg.loss](scores, batch.targets, self.cfg.label_smoothing)
        T = batch.targets.size(1)
        scores = model.score(batch.users, batch.inputs, torch.cat([batch.targets, batch.negatives], 1))  # (B, T + N)
        return SAMPLED_LOSSES[self.cfg.loss](scores[:, :T], scores[:, T:])
