"""BERT4Rec (Sun et al., CIKM 2019): bidirectional self-attention, trained by predicting masked items.

SASRec's network (seqrec.models.sasrec) with every real position visible to every other, one
more item row (index num_items + 1, the mask token) and an output bias:

    y_i = q_i . LN(x_B)[:, t] + b_i                   input and output item embeddings shared

Training (regime "masked") hides random positions of a chunk and scores them, and only them
(`score_all_positions`); to predict the next item the history is shifted left by one and the
mask token appended, and that last position is scored (`score_all`). Ignores users.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqrec.models.base import ADAM_SPACE, ModelSpec, check_config, dot_all, shared_scores
from seqrec.models.sasrec import SASRec, SASRecConfig


@dataclass(frozen=True)
class BERT4RecConfig(SASRecConfig):
    """SASRec's settings; L counts the mask position, so L - 1 history items are read at prediction."""

    num_heads: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_config([(self.L >= 2, f"model L must be >= 2 (history plus the mask position), got {self.L}")])


class BERT4Rec(SASRec):
    def __init__(self, config: BERT4RecConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items + 1)                 # item_emb gets the mask token's row
        self.mask_token = num_items + 1
        self.out_bias = nn.Parameter(torch.zeros(num_items + 1))

    def visible(self, real: Tensor) -> Tensor:
        """Bidirectional: every query may attend to every real position."""
        return real[:, None, :].expand(-1, real.size(1), -1)                        # (B, L, L)

    def _ask_next(self, seqs: Tensor) -> Tensor:
        """The history shifted left by one, with the mask token where the next item would be: (B, L)."""
        return torch.cat([seqs[:, 1:], torch.full_like(seqs[:, :1], self.mask_token)], 1)

    def _scores(self, states: Tensor) -> Tensor:                                    # (..., num_items + 1)
        return states @ self.item_emb.weight[: self.mask_token].T + self.out_bias

    def score_all_positions(self, users: Tensor, seqs: Tensor, where: Tensor | None = None) -> Tensor:
        """(B, L, num_items + 1); with where (B, L) bool, only the P positions it marks: (P, num_items + 1)."""
        states = self.states(seqs, seqs.size(1))                                     # (B, L, k)
        return self._scores(states if where is None else states[where])

    def score_positions(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:  # (B, L, C)
        if items.dim() == 1:
            return shared_scores(self.states(seqs, seqs.size(1)), self.item_emb.weight, items, self.out_bias)
        h = self.states(seqs, seqs.size(1)).unsqueeze(3)                             # (B, L, k, 1)
        return (self.item_emb(items) @ h).squeeze(3) + self.out_bias[items]

    def factors(self, users: Tensor, seqs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        states = self.states(self._ask_next(seqs), 1).squeeze(1)                     # (B, k)
        return states, self.item_emb.weight[: self.mask_token], self.out_bias       # the mask token is no item

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:                    # (B, num_items + 1)
        return dot_all(*self.factors(users, seqs))

    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:          # (B, C)
        if items.dim() == 1:
            return shared_scores(self.states(self._ask_next(seqs), 1).squeeze(1), self.item_emb.weight, items,
                                 self.out_bias)
        h = self.states(self._ask_next(seqs), 1).transpose(1, 2)                     # (B, k, 1)
        return (self.item_emb(items) @ h).squeeze(2) + self.out_bias[items]


SPEC = ModelSpec(
    name="bert4rec", config=BERT4RecConfig, module=BERT4Rec, regime="masked", factorised=True, cuts_padding=True,
    summary="BERT4Rec (Sun et al. 2019): bidirectional self-attention trained on masked items",
    presets={
        # Chosen on ML-100K by validation NDCG@10 of seed 0 among four candidates (README, "Comparing models").
        "bert4rec": {"model_params": {"L": 50, "embedding_dim": 64, "num_blocks": 2, "num_heads": 2, "dropout": 0.2},
                     "train": {"loss": "softmax", "lr": 3e-3, "batch_size": 64, "epochs": 200, "mask_prob": 0.4,
                               "early_stopping_metric": "auto", "patience": 10}},
    },
    # What `seqrec tune` samples over a preset: the masked objective keeps full softmax; every embedding_dim
    # is divisible by every num_heads.
    search_space=ADAM_SPACE | {
        "train.mask_prob": ("float", 0.1, 0.6),
        "model_params.L": ("categorical", (20, 50, 100)),
        "model_params.embedding_dim": ("categorical", (32, 64, 128)),
        "model_params.num_blocks": ("int", 1, 3),
        "model_params.num_heads": ("categorical", (1, 2, 4)),
        "model_params.dropout": ("float", 0.0, 0.5),
    },
)
