"""GRU4Rec (Hidasi et al., ICLR 2016): a GRU reads the last L items; its final state scores the next.

    h_t = GRU(dropout(q_{s_t}), h_{t-1})     t = 1..L, over the left-padded window (oldest first)
    y_i = v_i . h_L + b_i                    separate output item embeddings v_i and bias b_i

Ignores users. Trained at every position (`score_positions`), as in the paper. Left padding is
read as the zero embedding, so short histories start the GRU from a fixed state that training
sees too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqrec.models.base import ModelSpec, check_settings, dot_all, sequence_space, shared_scores


@dataclass(frozen=True)
class GRU4RecConfig:
    L: int = 20                   # maximum history length read
    embedding_dim: int = 64       # item embedding size = GRU hidden size
    num_layers: int = 1           # stacked GRU layers
    dropout: float = 0.2          # on the input embeddings (and between stacked layers)
    init_std: float = 0.02        # Normal(0, init_std) for item embeddings; the GRU keeps PyTorch's init

    def __post_init__(self) -> None:
        check_settings(self)


class GRU4Rec(nn.Module):
    def __init__(self, config: GRU4RecConfig, num_users: int, num_items: int) -> None:
        super().__init__()
        self.config, k = config, config.embedding_dim
        self.item_emb = nn.Embedding(num_items + 1, k, padding_idx=0)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(k, k, config.num_layers, batch_first=True,
                          dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.out_emb = nn.Embedding(num_items + 1, k, padding_idx=0)
        self.out_bias = nn.Embedding(num_items + 1, 1, padding_idx=0)
        with torch.no_grad():
            for emb in (self.item_emb, self.out_emb):
                emb.weight.normal_(0.0, config.init_std)
                emb.weight[0].zero_()
            self.out_bias.weight.zero_()

    def states(self, seqs: Tensor) -> Tensor:
        out, _ = self.gru(self.dropout(self.item_emb(seqs)))                         # (B, L, k), last layer
        return out

    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:          # (B, C)
        if items.dim() == 1:
            return shared_scores(self.states(seqs)[:, -1], self.out_emb.weight, items, self.out_bias.weight[:, 0])
        h = self.states(seqs)[:, -1].unsqueeze(2)                                    # (B, k, 1)
        return (self.out_emb(items) @ h).squeeze(2) + self.out_bias(items).squeeze(2)

    def factors(self, users: Tensor, seqs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.states(seqs)[:, -1], self.out_emb.weight, self.out_bias.weight[:, 0]    # (B, k), (I, k), (I,)

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:                    # (B, num_items + 1)
        return dot_all(*self.factors(users, seqs))

    def score_positions(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:  # (B, L, C)
        if items.dim() == 1:
            return shared_scores(self.states(seqs), self.out_emb.weight, items, self.out_bias.weight[:, 0])
        h = self.states(seqs).unsqueeze(3)                                           # (B, L, k, 1)
        return (self.out_emb(items) @ h).squeeze(3) + self.out_bias(items).squeeze(3)

    def score_all_positions(self, users: Tensor, seqs: Tensor) -> Tensor:          # (B, L, num_items + 1)
        return self.states(seqs) @ self.out_emb.weight.T + self.out_bias.weight.T


SPEC = ModelSpec(
    name="gru4rec", config=GRU4RecConfig, module=GRU4Rec, regime="positions", factorised=True,
    summary="GRU4Rec (Hidasi et al. 2016): a GRU over the last L items",
    presets={
        # The best of 12 `seqrec tune` trials on ML-100K's loo-full validation cases (seed 0, validation NDCG@10
        # 0.1247; README, "Comparing models"): sampled softmax at every position, early-stopped on the protocol's
        # validation metric where it has one.
        "gru4rec": {"model_params": {"L": 10, "embedding_dim": 32, "dropout": 0.1726},
                    "train": {"loss": "sampled-softmax", "num_negatives": 77, "lr": 8.840e-3, "weight_decay": 1e-6,
                              "batch_size": 64, "epochs": 20, "early_stopping_metric": "auto", "patience": 5}},
    },
    # What `seqrec tune` samples over a preset.
    search_space=sequence_space(("softmax", "sampled-softmax", "bpr"), (10, 20, 50))
    | {"model_params.num_layers": ("int", 1, 2)},
)
