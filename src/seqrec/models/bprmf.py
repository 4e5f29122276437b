"""BPR-MF (Rendle et al., UAI 2009): matrix factorisation, y_ui = p_u . q_i + b_i.

Ignores sequences: a non-sequential baseline trained with any loss (BPR by default). User 0
("unknown") has the zero embedding, so it falls back to the item biases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqrec.models.base import ModelSpec, check_settings, dot_all, shared_scores


@dataclass(frozen=True)
class BPRMFConfig:
    embedding_dim: int = 64       # size of p_u and q_i
    init_std: float = 0.01        # Normal(0, init_std) for the embeddings; biases start at 0

    def __post_init__(self) -> None:
        check_settings(self)


class BPRMF(nn.Module):
    def __init__(self, config: BPRMFConfig, num_users: int, num_items: int) -> None:
        super().__init__()
        self.config = config
        self.user_emb = nn.Embedding(num_users + 1, config.embedding_dim, padding_idx=0)   # p_u
        self.item_emb = nn.Embedding(num_items + 1, config.embedding_dim, padding_idx=0)   # q_i
        self.item_bias = nn.Embedding(num_items + 1, 1, padding_idx=0)                     # b_i
        with torch.no_grad():
            for emb in (self.user_emb, self.item_emb):
                emb.weight.normal_(0.0, config.init_std)
                emb.weight[0].zero_()
            self.item_bias.weight.zero_()

    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:          # (B, C)
        if items.dim() == 1:
            return shared_scores(self.user_emb(users), self.item_emb.weight, items, self.item_bias.weight[:, 0])
        p = self.user_emb(users).unsqueeze(2)                                        # (B, k, 1)
        return (self.item_emb(items) @ p).squeeze(2) + self.item_bias(items).squeeze(2)

    def factors(self, users: Tensor, seqs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.user_emb(users), self.item_emb.weight, self.item_bias.weight[:, 0]      # (B, k), (I, k), (I,)

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:                    # (B, num_items + 1)
        return dot_all(*self.factors(users, seqs))


SPEC = ModelSpec(
    name="bprmf", config=BPRMFConfig, module=BPRMF, regime="windows", factorised=True, history=lambda config: 0,
    summary="BPR-MF (Rendle et al. 2009): matrix factorisation, no sequence",
    presets={
        # The best of 30 `seqrec tune` trials on ML-100K's loo-full validation cases (seed 0, validation NDCG@10
        # 0.0793; README, "Comparing models"), early-stopped on the protocol's validation metric where it has one.
        "bprmf": {"model_params": {"embedding_dim": 128},
                  "train": {"loss": "bpr", "lr": 2.724e-3, "weight_decay": 1e-6, "batch_size": 1024, "epochs": 20,
                            "num_negatives": 8, "early_stopping_metric": "auto", "patience": 5}},
    },
    # What `seqrec tune` samples over a preset: BPR's optimiser, factor size and negatives (the loss stays BPR).
    search_space={
        "train.lr": ("float", 1e-4, 3e-2, True),
        "train.weight_decay": ("categorical", (0.0, 1e-6, 1e-5, 1e-4)),
        "train.num_negatives": ("int", 1, 8),
        "model_params.embedding_dim": ("categorical", (16, 32, 64, 128)),
    },
)
