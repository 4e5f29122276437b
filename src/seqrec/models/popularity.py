"""Popularity: every user gets the items seen most often in training, y_i = log(1 + n_i).

Ignores users and sequences. Learns by counting (`fit_counts`), not by gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqrec.models.base import ModelSpec


@dataclass(frozen=True)
class PopularityConfig:
    """Popularity has no settings."""


class Popularity(nn.Module):
    def __init__(self, config: PopularityConfig, num_users: int, num_items: int) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("counts", torch.zeros(num_items + 1))           # n_i, persisted in state_dict

    @torch.no_grad()
    def fit_counts(self, users: Tensor, inputs: Tensor, targets: Tensor) -> None:
        """n_i += number of times item i is a target; targets (W, T), padding (0) is not counted."""
        self.counts += torch.bincount(targets.flatten(), minlength=self.counts.numel()).to(self.counts)
        self.counts[0] = 0

    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:          # (B, C)
        scores = torch.log1p(self.counts)[items]
        return scores.expand(len(users), -1) if items.dim() == 1 else scores

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:                    # (B, num_items + 1)
        return torch.log1p(self.counts).repeat(users.size(0), 1)                   # a copy callers may write to


SPEC = ModelSpec(
    name="pop", config=PopularityConfig, module=Popularity, regime="counting", history=lambda config: 0,
    summary="popularity: the most frequent training targets, the same for everyone",
    presets={"pop": {"train": {"epochs": 1}}},
    search_space={},                    # no settings: nothing to tune
)
