"""Evaluation protocols as data: which items are candidates, and the rank of each target.

`d2l`: the book's candidates, item indices 1..num_users (its `range(num_users)` bug) minus the
user's training items. `d2l-fixed`: every item minus the user's training items.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqrec.data.split import EvalCases
from seqrec.evaluation.metrics import ranking_metrics
from seqrec.models.base import SequentialRecommender


@dataclass(frozen=True)
class Protocol:
    name: str
    max_candidate: str = "num_items"    # "num_users": the book's bug caps candidates at index num_users


PROTOCOLS = {"d2l": Protocol("d2l", max_candidate="num_users"), "d2l-fixed": Protocol("d2l-fixed")}


def candidate_mask(protocol: Protocol, exclude_rows: Tensor, exclude_items: Tensor, batch: int,
                   num_users: int, num_items: int) -> Tensor:
    """(batch, num_items + 1) bool: True where an item may be ranked. Padding (column 0) never is."""
    top = num_users if protocol.max_candidate == "num_users" else num_items
    mask = torch.zeros(batch, num_items + 1, dtype=torch.bool, device=exclude_items.device)
    mask[:, 1: min(top, num_items) + 1] = True
    mask[exclude_rows, exclude_items] = False
    return mask


def target_ranks(scores: Tensor, targets: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
    """0-based rank of each target among the candidates, ties counted against it (inf if not a candidate).

    scores (B, I), targets (B,), candidates bool (B, I) -> ranks (B,) float, num_candidates (B,).
    """
    target_scores = scores.gather(1, targets[:, None])
    ahead = ((scores >= target_scores) & candidates).sum(1) - 1
    is_candidate = candidates.gather(1, targets[:, None]).squeeze(1)
    ranks = torch.where(is_candidate, ahead.float(), torch.inf)
    return ranks, candidates.sum(1)


@torch.no_grad()
def evaluate(model: SequentialRecommender, cases: EvalCases, protocol: str, L: int, num_users: int,
             num_items: int, ks: tuple[int, ...] = (10, 50), batch_size: int = 1024,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Rank every case's target under `protocol`; returns flat metrics (the caller keys them by protocol)."""
    spec = PROTOCOLS[protocol]
    seqs = torch.as_tensor(cases.history.last(L), device=device)
    users = torch.as_tensor(cases.users, device=device)
    targets = torch.as_tensor(cases.targets, device=device)
    excl_rows = torch.as_tensor(cases.exclude.row_of_each_item(), device=device)
    excl_items = torch.as_tensor(cases.exclude.items, device=device)
    indptr = cases.exclude.indptr
    ranks, counts = [], []
    for start in range(0, len(cases), batch_size):
        stop = min(start + batch_size, len(cases))
        lo, hi = int(indptr[start]), int(indptr[stop])
        mask = candidate_mask(spec, excl_rows[lo:hi] - start, excl_items[lo:hi], stop - start, num_users, num_items)
        r, n = target_ranks(model.score_all(users[start:stop], seqs[start:stop]), targets[start:stop], mask)
        ranks.append(r)
        counts.append(n)
    return ranking_metrics(torch.cat(ranks).cpu(), torch.cat(counts).cpu(), ks)
