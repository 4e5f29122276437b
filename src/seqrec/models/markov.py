"""Item-transition baseline: how often item i followed each of the user's last L items.

    C[a, i]  = number of training windows in which a is one of the L inputs and i a target
    y_i      = sum_{j=1..L} w_j C[s_j, i] + backoff * n_i / max_k n_k

s_j is the j-th most recent input (s_1 the latest) and w_j = L + 1 - j, so the most recent item
weighs L and the oldest 1 (PROTOCOLS.md: weights 1..5 over the last 5 items). n_i counts item i
as a target; with backoff < 1 the popularity term only breaks ties between items of equal
transition evidence (C and w are integers), which matters for AUC, where ties count against the
target. Ignores users. Learns by counting (`fit_counts`), not by gradients.

C is sparse, in CSR form: for each item a, the items that followed it (ascending) and the counts, so
memory grows with the distinct transitions seen, not with num_items^2 (10^5 items, 10^6 events: 3
million nonzeros, 35 MB). Scoring gathers the nonzeros of the rows C[s_j] of each user and adds them,
weighted, into the (B, num_items + 1) scores. Sums of integer counts are exact in float32 (below
2^24), so the scores are those of a dense C, bit for bit. The nonzeros' length is the data's, so a
bundle restores it as saved (`sized_by_data`, `_load_from_state_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from seqrec.models.base import ModelSpec, check_settings


@dataclass(frozen=True)
class MarkovConfig:
    L: int = 5                    # how many recent items vote for the next one
    backoff: float = 0.5          # weight of normalised popularity; < 1 only breaks ties

    def __post_init__(self) -> None:
        check_settings(self, [(self.backoff >= 0, f"model backoff must be >= 0, got {self.backoff}")])


class Markov(nn.Module):
    sized_by_data = ("transition_items", "transition_counts")  # C's nonzeros: as many as the data has (bundle.py)

    def __init__(self, config: MarkovConfig, num_users: int, num_items: int) -> None:
        super().__init__()
        self.config, self.stride = config, num_items + 1
        # C in CSR form: row a holds items transition_items[row_starts[a]: row_starts[a + 1]] (ascending)
        # with their counts; a fresh model has no nonzeros
        self.register_buffer("row_starts", torch.zeros(num_items + 2, dtype=torch.long))
        self.register_buffer("transition_items", torch.zeros(0, dtype=torch.long))
        self.register_buffer("transition_counts", torch.zeros(0))
        self.register_buffer("counts", torch.zeros(num_items + 1))                      # n
        self.register_buffer("weights", torch.arange(1, config.L + 1, dtype=torch.float32),
                             persistent=False)                                          # w, oldest first

    def _keys(self) -> Tensor:                                                          # (nnz,) a * stride + i
        rows = torch.repeat_interleave(torch.arange(self.stride, device=self.row_starts.device), self.row_starts.diff())
        return rows * self.stride + self.transition_items

    @torch.no_grad()
    def fit_counts(self, users: Tensor, inputs: Tensor, targets: Tensor) -> None:
        """C[a, i] += 1 for every input a and target i of each window; padding rows/columns stay 0."""
        real = (inputs != 0).unsqueeze(2) & (targets != 0).unsqueeze(1)                 # (W, L, T)
        pairs = (inputs.unsqueeze(2) * self.stride + targets.unsqueeze(1))[real]        # (P,) keys a * stride + i
        keys, index = torch.unique(torch.cat([self._keys(), pairs]), sorted=True, return_inverse=True)
        weights = torch.cat([self.transition_counts, torch.ones(len(pairs), device=pairs.device)])
        self.transition_counts = torch.zeros(len(keys), device=keys.device).index_add_(0, index, weights)
        self.transition_items = keys % self.stride
        bounds = torch.arange(self.stride + 1, device=keys.device) * self.stride
        self.row_starts.copy_(torch.searchsorted(keys, bounds))
        self.counts += torch.bincount(targets.flatten(), minlength=self.counts.numel()).to(self.counts)
        self.counts[0] = 0

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # C's nonzeros take the saved length (the data's), whatever this model held before
        for name in self.sized_by_data:
            if prefix + name in state_dict:
                setattr(self, name, getattr(self, name).new_empty(state_dict[prefix + name].shape))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _popularity(self) -> Tensor:                                                    # (num_items + 1,)
        return self.config.backoff * self.counts / self.counts.max().clamp(min=1)

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:                    # (B, num_items + 1)
        recent = seqs[:, -self.config.L:]                                            # (B, L')
        B, L = recent.shape
        sources = recent.flatten()                                                   # (B * L,) s_j of each row
        starts = self.row_starts[sources]
        lengths = self.row_starts[sources + 1] - starts                              # nonzeros of each row C[s]
        # one entry per gathered nonzero (P in all): its place in C, its output position and its weight
        shift = (starts - lengths.cumsum(0) + lengths).repeat_interleave(lengths)    # (P,)
        at = torch.arange(shift.numel(), device=seqs.device).add_(shift)             # (P,)
        rows = (torch.arange(B, device=seqs.device) * self.stride).repeat_interleave(L)   # (B * L,)
        index = rows.repeat_interleave(lengths).add_(self.transition_items[at])      # (P,) into (B * stride)
        votes = self.transition_counts[at].mul_(self.weights[-L:].repeat(B).repeat_interleave(lengths))  # (P,)
        scores = torch.zeros(B, self.stride, device=seqs.device)                     # (B, num_items + 1)
        scores.view(-1).index_add_(0, index, votes)                   # filled in place: callers get no view
        return scores.add_(self._popularity())

    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:          # (B, C)
        recent = seqs[:, -self.config.L:]                                            # (B, L')
        items = items.expand(recent.size(0), -1) if items.dim() == 1 else items      # (C,) shared by every row
        pairs = recent.unsqueeze(2) * self.stride + items.unsqueeze(1)               # (B, L', C) keys
        keys = torch.cat([self._keys(), pairs.new_full((1,), -1)])                   # -1 past the end: no pair's key
        at = torch.searchsorted(keys[:-1], pairs)
        found = torch.cat([self.transition_counts, self.transition_counts.new_zeros(1)])[at]
        votes = torch.einsum("l,blc->bc", self.weights[-recent.size(1):], torch.where(keys[at] == pairs, found, 0.0))
        return votes + self._popularity()[items]                                     # (B, C)

SPEC = ModelSpec(
    name="markov", config=MarkovConfig, module=Markov, regime="counting",
    summary="item-transition counts from each of the last L items, recency-weighted",
    presets={"markov": {"model_params": {"L": 5}, "train": {"epochs": 1}}},
    # What `seqrec tune` samples: how many recent items vote, and how much popularity (>= 1: it can outvote them).
    search_space={"model_params.L": ("int", 1, 10), "model_params.backoff": ("float", 0.0, 4.0),
                  "train.windows": ("categorical", ("complete", "padded"))},
)
