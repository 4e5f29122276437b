"""Regime "positions" (SASRec, GRU4Rec): every position of a chunk predicts the item after it."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from seqrec.data.sequences import Sequences, Windows, make_position_windows
from seqrec.losses import FULL_LOSSES, SAMPLED_LOSSES
from seqrec.training.regimes.base import Batch, Regime


class PositionsRegime(Regime):
    """Chunks of L + 1 items: targets[:, t] follows inputs[:, t] (0: no target there). The model's P
    supervised positions become P rows of the loss; a sampled loss gets num_negatives per position
    (drawn for all L; a batch cut to its last L' positions uses the last L' positions' draws)."""

    def examples(self, train: Sequences, L: int) -> Windows:
        return make_position_windows(train, L)

    def negatives_per_example(self, examples: Windows) -> int:
        return self.cfg.num_negatives * examples.L

    def supervised(self, sizes: np.ndarray) -> np.ndarray:
        return sizes - 1                                  # every real item but the first is a target

    def batch_loss(self, model: nn.Module, batch: Batch, rng: np.random.Generator) -> Tensor:
        users, inputs, targets = batch.users, batch.inputs, batch.targets
        shared = self.shared(targets, rng)
        if shared is not None:                                                         # P positions, C shared
            valid = targets != 0                                                       # (B, L)
            pos = model.score_positions(users, inputs, targets.unsqueeze(2))[valid][:, 0]   # (P,)
            cand = model.score_positions(users, inputs, shared.items)[valid]           # (P, C)
            return shared.loss(pos, cand, targets[valid])
        if batch.negatives is None:
            scores, wanted = self.full_scores(model, users, inputs, targets)
            return FULL_LOSSES[self.cfg.loss](scores, wanted, self.cfg.label_smoothing)
        valid = targets != 0                                                           # (B, L)
        drawn = batch.negatives.view(len(targets), -1, self.cfg.num_negatives)[:, -targets.size(1):]  # (B, L, N)
        items = torch.cat([targets.unsqueeze(2), drawn], 2)                            # (B, L, 1 + N)
        scores = model.score_positions(users, inputs, items)[valid]                    # (P, 1 + N)
        return SAMPLED_LOSSES[self.cfg.loss](scores[:, :1], scores[:, 1:])

    def full_scores(self, model: nn.Module, users: Tensor, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """What the full softmax ranks: every item at every position (B, L, num_items + 1), and the targets
        (B, L, 1), where a target 0 is left out of the mean."""
        return model.score_all_positions(users, inputs), targets.unsqueeze(2)
