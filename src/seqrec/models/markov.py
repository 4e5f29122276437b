"""Item-transition baseline: how often item i followed each of the user's last L items.

    C[a, i]  = number of training windows in which a is one of the L inputs and i a target
    y_i      = sum_{j=1..L} w_j C[s_j, i] + backoff * n_i / max_k n_k

s_j is the j-th most recent input (s_1 the latest) and w_j = L + 1 - j, so the most recent item
weighs L and the oldest 1 (PROTOCOLS.md: weights 1..5 over the last 5 items). n_i counts item i
as a target; with backoff < 1 the popularity term only breaks ties between items of equal
transition evidence (C and w are integers), which matters for AUC, where ties count against the
target. Ignores users. Learns by counting (`fit_counts`), not by gradients.

C is a dense (num_items + 1)^2 float32 buffer: 11 MB for ML-100K's 1,682 items, 1.6 GB at 20,000
items, which is about the practical limit (scoring gathers L rows of C per user).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqrec.models.base import ModelSpec, check_config, check_settings


@dataclass(frozen=True)
class MarkovConfig:
    L: int = 5                    # how many recent items vote for the next one
    backoff: float = 0.5          # weight of normalised popularity; < 1 only breaks ties
    max_items: int = 20_000       # refuse catalogues whose dense count matrix would not fit

    def __post_init__(self) -> None:
        check_settings(self, [
            (self.backoff >= 0, f"model backoff must be >= 0, got {self.backoff}"),
            (self.max_items >= 1, f"model max_items must be >= 1, got {self.max_items}"),
        ])


class Markov(nn.Module):
    def __init__(self, config: MarkovConfig, num_users: int, num_items: int) -> None:
        super().__init__()
        check_config([(num_items <= config.max_items,
                       f"markov keeps a dense {num_items + 1}^2 count matrix; {num_items} items exceed "
                       f"model max_items={config.max_items}")])
        self.config = config
        self.register_buffer("transitions", torch.zeros(num_items + 1, num_items + 1))   # C
        self.register_buffer("counts", torch.zeros(num_items + 1))                      # n
        self.register_buffer("weights", torch.arange(1, config.L + 1, dtype=torch.float32),
                             persistent=False)                                          # w, oldest first

    @torch.no_grad()
    def fit_counts(self, users: Tensor, inputs: Tensor, targets: Tensor) -> None:
        """C[a, i] += 1 for every input a and target i of each window; padding rows/columns stay 0."""
        W, L, T = inputs.size(0), inputs.size(1), targets.size(1)
        pairs = inputs.unsqueeze(2).expand(W, L, T) * self.transitions.size(1) + targets.unsqueeze(1)  # (W, L, T)
        self.transitions.view(-1).add_(torch.bincount(pairs.flatten(), minlength=self.transitions.numel())
                                       .to(self.transitions))
        self.counts += torch.bincount(targets.flatten(), minlength=self.counts.numel()).to(self.counts)
        self.transitions[0].zero_()
        self.transitions[:, 0].zero_()
        self.counts[0] = 0

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:                    # (B, num_items + 1)
        recent = seqs[:, -self.config.L:]                                            # (B, L')
        w = self.weights[-recent.size(1):]                                           # (L',)
        votes = torch.einsum("l,bli->bi", w, self.transitions[recent])               # (B, num_items + 1)
        return votes + self.config.backoff * self.counts / self.counts.max().clamp(min=1)

    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:          # (B, C)
        recent = seqs[:, -self.config.L:]                                            # (B, L')
        w = self.weights[-recent.size(1):]
        votes = torch.einsum("l,blc->bc", w, self.transitions[recent.unsqueeze(2), items.unsqueeze(1)])  # (B, C)
        return votes + self.config.backoff * self.counts[items] / self.counts.max().clamp(min=1)


SPEC = ModelSpec(
    name="markov", config=MarkovConfig, module=Markov, regime="counting",
    summary="item-transition counts from each of the last L items, recency-weighted",
    presets={"markov": {"model_params": {"L": 5}, "train": {"epochs": 1}}},
)
