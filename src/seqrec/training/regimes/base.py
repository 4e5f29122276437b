"""A regime: which training examples a model learns from, and how a batch of them becomes a loss."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from seqrec.config import TrainConfig
from seqrec.data.sequences import Sequences, Windows
from seqrec.errors import ConfigError
from seqrec.losses import corrected_softmax_loss


@dataclass(frozen=True)
class SharedCandidates:
    """Candidates every positive of a batch is ranked against: items (C,), and log_count(x), the log of the
    expected number of times item x is among them (the logQ correction of seqrec.losses.corrected_softmax_loss)."""

    items: Tensor
    log_q: Tensor                       # (num_items + 1,) log of each item's probability
    log_draws: float                    # log of the number of draws

    def log_count(self, items: Tensor) -> Tensor:
        return self.log_q[items] + self.log_draws

    def loss(self, pos: Tensor, cand: Tensor, targets: Tensor) -> Tensor:
        """The corrected softmax loss of positives `targets` (P,) scoring pos (P,) against these candidates,
        scored cand (P, C); a candidate equal to its row's target is left out of that row's sum."""
        hit = self.items[None, :] == targets[:, None]                                  # (P, C)
        return corrected_softmax_loss(pos, cand, hit, self.log_count(targets), self.log_count(self.items))


class SharedNegatives:
    """popularity: train.num_negatives items drawn with replacement in proportion to their training counts;
    in-batch: the distinct targets of the batch itself (each item's chance taken as its count share)."""

    def __init__(self, popularity: np.ndarray, cfg: TrainConfig) -> None:
        self.mode, self.num_draws = cfg.negatives, cfg.num_negatives
        share = popularity / popularity.sum()                                        # (num_items + 1,)
        self.cdf = np.cumsum(share)
        self.log_q = torch.log(torch.as_tensor(share, dtype=torch.float32).clamp(min=1e-30))

    def draw(self, targets: Tensor, rng: np.random.Generator) -> SharedCandidates:
        log_q = self.log_q.to(targets.device)
        if self.mode == "popularity":
            drawn = np.searchsorted(self.cdf, rng.random(self.num_draws) * self.cdf[-1], side="right")
            items = torch.as_tensor(np.minimum(drawn, len(self.cdf) - 1), device=targets.device)
            return SharedCandidates(items, log_q, math.log(self.num_draws))
        real = targets[targets != 0]
        return SharedCandidates(torch.unique(real), log_q, math.log(max(real.numel(), 1)))


class DeviceExamples:
    """The examples' offsets and items as tensors on the training device; `batch` gathers rows there."""

    def __init__(self, examples: Windows, device: torch.device) -> None:
        self.examples = examples
        self.users, self.ends, self.starts, self.items = (
            torch.as_tensor(a, device=device) for a in (examples.users, examples.ends, examples.starts, examples.items))
        self.back = torch.arange(examples.width - 1, -1, -1, device=device)           # (width,)

    def batch(self, rows: Tensor, negatives: Tensor | None, width: int | None = None) -> Batch:
        """The examples `rows` (B,) with their sampled negatives (B, N) or None; `width` keeps only the last
        width items of each example (cutting padding that every row of the batch has)."""
        back = self.back if width is None else self.back[-width:]
        index = self.ends[rows, None] - back                                            # (B, width)
        valid = index >= self.starts[rows, None]
        chunk = torch.where(valid, self.items[index.clamp(min=0)], 0)                  # (B, width)
        inputs, targets = self.examples.split(chunk)
        return Batch(self.users[rows], inputs, targets, negatives)


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

    def __init__(self, cfg: TrainConfig, num_items: int, popularity: np.ndarray | None = None) -> None:
        self.cfg, self.num_items = cfg, num_items
        if cfg.negatives != "uniform" and popularity is None:
            raise ConfigError(f"train.negatives={cfg.negatives!r} needs the items' training counts (popularity)")
        self._shared = None if cfg.negatives == "uniform" else SharedNegatives(popularity, cfg)

    def shared(self, targets: Tensor, rng: np.random.Generator) -> SharedCandidates | None:
        """The batch's shared candidates (train.negatives popularity or in-batch), None for per-example ones."""
        return None if self._shared is None else self._shared.draw(targets, rng)

    def examples(self, train: Sequences, L: int) -> Windows:
        raise NotImplementedError

    def negatives_per_example(self, examples: Windows) -> int:
        return self.cfg.num_negatives

    def supervised(self, sizes: np.ndarray) -> np.ndarray:
        """(W,) how many positions of examples with `sizes` real items carry a loss (on average)."""
        raise NotImplementedError

    def batch_loss(self, model: nn.Module, batch: Batch, rng: np.random.Generator) -> Tensor:
        raise NotImplementedError
