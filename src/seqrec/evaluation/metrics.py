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


def ranking_metrics(ranks: Tensor, num_candidates: Tensor, ks: tuple[int, ...],
                    mrr_at_k: bool = False) -> dict[str, float]:
    """hr@k (and its alias hit@k, the book's word), ndcg@k (and mrr@k if asked) for each k, mrr and auc."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}"] = out[f"hit@{k}"] = hit_rate(ranks, k)
        out[f"ndcg@{k}"] = ndcg(ranks, k)
        if mrr_at_k:
            out[f"mrr@{k}"] = mrr(torch.where(ranks < k, ranks, torch.inf))
    return out | {"mrr": mrr(ranks), "auc": auc(ranks, num_candidates)}


def set_metrics(ranks: Tensor, cases: Tensor, num_targets: Tensor, ks: tuple[int, ...]) -> dict[str, float]:
    """Several targets per case (caser-paper): Precision@k, Recall@k and MAP over the full ranking.

    ranks (n,): 0-based rank of each target (inf: not rankable); cases (n,): its case; num_targets (C,).
    Precision@k = mean_c hits_c@k / k; Recall@k = mean_c hits_c@k / |targets_c|;
    AP_c = (1 / |targets_c|) sum_j j / (r_j + 1) over the case's ranked targets r_1 < r_2 < ... (j 1-based),
    as the Caser authors' `_compute_apk` with k = inf; MAP = mean_c AP_c.
    """
    num_cases, m = len(num_targets), num_targets.float()
    out: dict[str, float] = {}
    for k in ks:
        hits = torch.zeros(num_cases).index_add_(0, cases, (ranks < k).float())
        out[f"precision@{k}"] = (hits / k).mean().item()
        out[f"recall@{k}"] = (hits / m).mean().item()
    order = torch.argsort(ranks, stable=True)
    order = order[torch.argsort(cases[order], stable=True)]
    sorted_cases, sorted_ranks = cases[order], ranks[order]
    starts = torch.cumsum(num_targets, 0) - num_targets
    j = torch.arange(len(order)) - starts[sorted_cases] + 1
    gain = torch.where(torch.isfinite(sorted_ranks), j / (sorted_ranks + 1), 0.0)
    ap = torch.zeros(num_cases).index_add_(0, sorted_cases, gain.float()) / m
    return out | {"map": ap.mean().item()}
