"""Metrics as functions of 0-based target ranks only (inf: the target was not a candidate).

ranks: (B,) float; a target that could not be ranked has rank inf and scores 0 on every metric.
"""

from __future__ import annotations

import torch
from torch import Tensor


def hit_rate(ranks: Tensor, k: int) -> float:
    """HR@k = mean 1[rank < k] (= Recall@k with one target per case)."""
    return (ranks < k).float().mean().item()


def ndcg(ranks: Tensor, k: int) -> float:
    """NDCG@k with one relevant item = mean 1[rank < k] / log2(rank + 2)."""
    return torch.where(ranks < k, 1.0 / torch.log2(ranks + 2), 0.0).mean().item()


def mrr(ranks: Tensor) -> float:
    """MRR = mean 1 / (rank + 1)."""
    return (1.0 / (ranks + 1)).mean().item()


def auc(ranks: Tensor, num_candidates: Tensor) -> float:
    """The book's AUC: mean (n - 1 - rank) / (n - 1), n candidates per case; 0 for an unranked target."""
    n = num_candidates.float()
    per_case = torch.where(torch.isfinite(ranks), (n - 1 - ranks) / (n - 1).clamp(min=1), 0.0)
    return per_case.mean().item()


def ranking_metrics(ranks: Tensor, num_candidates: Tensor, ks: tuple[int, ...]) -> dict[str, float]:
    """hr@k (and its alias hit@k, the book's word) and ndcg@k for each k, mrr and auc."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}"] = out[f"hit@{k}"] = hit_rate(ranks, k)
        out[f"ndcg@{k}"] = ndcg(ranks, k)
    return out | {"mrr": mrr(ranks), "auc": auc(ranks, num_candidates)}
