"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the last L items.

    x_0 = sqrt(k) q_{s_t} + p_t                       (B, L, k) item + learned position embeddings
    x_b = x_{b-1} + Attn(LN(x_{b-1}))                 causal, padded keys masked, then
    x_b = x_b + FFN(LN(x_b))                          FFN(x) = W_2 ReLU(W_1 x); dropout after each part
    y_i = q_i . LN(x_B)[:, -1]                         the last position's state; input and output
                                                       item embeddings are shared, as in the paper

Ignores users. Trained at every position (`score_positions`), as in the paper. Scoring needs only
the last position, so there the last block computes attention and FFN for that one query (keys
and values still span the window): the same output, about half the work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.models.base import ModelSpec, check_settings, dot_all, sequence_space, shared_scores


@dataclass(frozen=True)
class SASRecConfig:
    L: int = 50                   # maximum history length read (positions 1..L)
    embedding_dim: int = 64       # k: item, position and hidden size
    num_blocks: int = 2           # self-attention blocks
    num_heads: int = 1            # attention heads (must divide embedding_dim)
    dropout: float = 0.2          # on embeddings, attention weights, and each block's outputs
    init_std: float = 0.02        # Normal(0, init_std) for the embeddings; linear layers keep PyTorch's init

    def __post_init__(self) -> None:
        divides = self.num_heads >= 1 and self.embedding_dim % self.num_heads == 0
        check_settings(self, [(divides, f"model num_heads must divide embedding_dim={self.embedding_dim}, "
                                        f"got {self.num_heads}")])


class Block(nn.Module):
    """One pre-LN transformer block; `queries` selects how many trailing positions to compute."""

    def __init__(self, k: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads, self.p = num_heads, dropout
        self.ln_attn, self.ln_ffn = nn.LayerNorm(k), nn.LayerNorm(k)
        self.qkv, self.proj = nn.Linear(k, 3 * k), nn.Linear(k, k)
        self.ffn = nn.Sequential(nn.Linear(k, k), nn.ReLU(), nn.Dropout(dropout), nn.Linear(k, k))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, allowed: Tensor, queries: int) -> Tensor:
        B, L, k = x.shape
        q, kv = self.qkv(self.ln_attn(x)).split([k, 2 * k], 2)                      # (B, L, k), (B, L, 2k)
        q = q[:, L - queries:].view(B, queries, self.num_heads, -1).transpose(1, 2)  # (B, H, Q, k/H)
        key, value = kv.view(B, L, 2, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, L, k/H) each
        a = F.scaled_dot_product_attention(q, key, value, attn_mask=allowed[:, :, L - queries:],
                                           dropout_p=self.p if self.training else 0.0)  # (B, H, Q, k/H)
        x = x[:, L - queries:] + self.dropout(self.proj(a.transpose(1, 2).reshape(B, queries, k)))  # (B, Q, k)
        return x + self.dropout(self.ffn(self.ln_ffn(x)))                           # (B, Q, k)


class SASRec(nn.Module):
    def __init__(self, config: SASRecConfig, num_users: int, num_items: int) -> None:
        super().__init__()
        self.config, k = config, config.embedding_dim
        self.item_emb = nn.Embedding(num_items + 1, k, padding_idx=0)     # input and output embeddings
        self.pos_emb = nn.Embedding(config.L, k)
        self.blocks = nn.ModuleList(Block(k, config.num_heads, config.dropout) for _ in range(config.num_blocks))
        self.ln_out = nn.LayerNorm(k)
        self.dropout = nn.Dropout(config.dropout)
        self.register_buffer("causal", torch.ones(config.L, config.L, dtype=torch.bool).tril(), persistent=False)
        with torch.no_grad():
            for emb in (self.item_emb, self.pos_emb):
                emb.weight.normal_(0.0, config.init_std)
            self.item_emb.weight[0].zero_()

    def states(self, seqs: Tensor, queries: int) -> Tensor:
        """seqs (B, L) -> (B, queries, k): the states of the last `queries` positions."""
        seqs = seqs[:, -self.config.L:]                                              # (B, L)
        L = seqs.size(1)
        x = self.item_emb(seqs) * math.sqrt(self.config.embedding_dim)             # (B, L, k)
        x = self.dropout(x + self.pos_emb.weight[-L:])                              # (B, L, k)
        real = seqs != 0                                                             # (B, L)
        # a query sees the real items visible to it; a padded one sees only itself (never an empty row)
        allowed = (self.visible(real) | torch.eye(L, dtype=torch.bool, device=seqs.device)).unsqueeze(1)  # (B,1,L,L)
        for b, block in enumerate(self.blocks):
            q = min(queries, L) if b == len(self.blocks) - 1 else L
            x = block(x, allowed, q) * real[:, L - q:, None]                         # (B, q, k)
        return self.ln_out(x)                                                        # (B, queries, k)

    def visible(self, real: Tensor) -> Tensor:
        """real (B, L) -> (B, L, L): query t may attend to key j; causal: the real items up to t."""
        L = real.size(1)
        return self.causal[:L, :L] & real[:, None, :]

    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:          # (B, C)
        if items.dim() == 1:
            return shared_scores(self.states(seqs, 1).squeeze(1), self.item_emb.weight, items)
        return (self.item_emb(items) @ self.states(seqs, 1).transpose(1, 2)).squeeze(2)

    def factors(self, users: Tensor, seqs: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        return self.states(seqs, 1).squeeze(1), self.item_emb.weight, None                  # (B, k), (I, k)

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:                    # (B, num_items + 1)
        return dot_all(*self.factors(users, seqs))

    def score_positions(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:  # (B, L, C)
        if items.dim() == 1:
            return shared_scores(self.states(seqs, seqs.size(1)), self.item_emb.weight, items)
        h = self.states(seqs, seqs.size(1)).unsqueeze(3)                             # (B, L, k, 1)
        return (self.item_emb(items) @ h).squeeze(3)

    def score_all_positions(self, users: Tensor, seqs: Tensor) -> Tensor:          # (B, L, num_items + 1)
        return self.states(seqs, seqs.size(1)) @ self.item_emb.weight.T


SPEC = ModelSpec(
    name="sasrec", config=SASRecConfig, module=SASRec, regime="positions", factorised=True, cuts_padding=True,
    summary="SASRec (Kang & McAuley 2018): causal self-attention over the last L items",
    presets={
        # The best of 16 `seqrec tune` trials on ML-100K's loo-full validation cases (seed 0, validation NDCG@10
        # 0.1426; README, "Comparing models"): sampled softmax at every position, early-stopped on the protocol's
        # validation metric where it has one.
        "sasrec": {"model_params": {"L": 20, "embedding_dim": 64, "num_blocks": 2, "num_heads": 2, "dropout": 0.2646},
                   "train": {"loss": "sampled-softmax", "num_negatives": 123, "lr": 5.094e-3, "weight_decay": 1e-6,
                             "batch_size": 64, "epochs": 20, "early_stopping_metric": "auto", "patience": 5}},
    },
    # What `seqrec tune` samples over a preset; every embedding_dim is divisible by every num_heads.
    search_space=sequence_space(("softmax", "sampled-softmax", "bce"), (20, 50, 100))
    | {"model_params.num_blocks": ("int", 1, 3), "model_params.num_heads": ("categorical", (1, 2, 4))},
)
