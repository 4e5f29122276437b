"""Regime "masked" (BERT4Rec; Sun et al., CIKM 2019): hide items of a sequence, predict what they were.

Examples are chunks of L items (stride L, from the end of each training sequence). Per batch each
real position is hidden with probability train.mask_prob: its input becomes the mask token
(item index num_items + 1) and its target the hidden item; other positions have target 0 (no
loss). The loss is then the positions regime's, over the hidden positions only; the full softmax
scores those positions alone, (P, num_items + 1) instead of (B, L, num_items + 1).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from seqrec.data.sequences import Sequences, Windows, make_chunks
from seqrec.training.regimes.base import Batch
from seqrec.training.regimes.positions import PositionsRegime


class MaskedRegime(PositionsRegime):
    def examples(self, train: Sequences, L: int) -> Windows:
        return make_chunks(train, L, L, "masked")

    def supervised(self, sizes: np.ndarray) -> np.ndarray:
        return sizes * self.cfg.mask_prob                  # the expected number of hidden items

    def batch_loss(self, model: nn.Module, batch: Batch, rng: np.random.Generator) -> Tensor:
        items = batch.inputs
        hidden = torch.as_tensor(rng.random(tuple(items.shape)) < self.cfg.mask_prob, device=items.device)
        hidden &= items != 0                                                           # (B, L)
        masked = Batch(batch.users, items.masked_fill(hidden, self.num_items + 1), items * hidden, batch.negatives)
        return super().batch_loss(model, masked, rng)

    def full_scores(self, model: nn.Module, users: Tensor, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """The hidden positions only: scores (P, num_items + 1) and their targets (P, 1)."""
        hidden = targets != 0                                                          # (B, L)
        return model.score_all_positions(users, inputs, hidden), targets[hidden].unsqueeze(1)
