"""A regime: which training examples a model learns from, and how a batch of them becomes a loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor, nn

from seqrec.config import TrainConfig
from seqrec.data.sequences import Sequences, Windows


@dataclass(frozen=True)
class Batch:
    """One training batch on the device: users (B,), inputs (B, L), targets (B, T or L), negatives (B, N) or None."""

    users: Tensor
    inputs: Tensor
    targets: Tensor
    negatives: Tensor | None


class Regime:
    """Built once per run from the training settings and the catalogue size.

    `examples` turns the training sequences into Windows; `negatives_per_example` says how many
    items to sample per example for a sampled loss; `batch_loss` scores a batch through the model
    protocol. A counting regime (`counting = True`) is fitted in one pass instead of epochs.
    """

    counting = False

    def __init__(self, cfg: TrainConfig, num_items: int) -> None:
        self.cfg, self.num_items = cfg, num_items

    def examples(self, train: Sequences, L: int) -> Windows:
        raise NotImplementedError

    def negatives_per_example(self, examples: Windows) -> int:
        return self.cfg.num_negatives

    def batch_loss(self, model: nn.Module, batch: Batch, rng: np.random.Generator) -> Tensor:
        raise NotImplementedError
