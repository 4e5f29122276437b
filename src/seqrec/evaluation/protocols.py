"""Evaluation protocols as data: which split, which items are candidates, and the rank of each target.

`d2l`: the book's candidates, item indices 1..num_users (its `range(num_users)` bug) minus the
user's training items. `d2l-fixed`: every item minus the user's training items.
`loo-full`: leave-one-out, every item minus the items before the target (PROTOCOLS.md section 2).
`loo-sampled`: leave-one-out, the target against N seeded negatives (section 3; keys end in /sampledN).
`caser-paper`: 70/10/20 per user, several targets per user, Precision/Recall@k and MAP (section 4).
`session`: sessions ending after a time cut-off are test; each next item is ranked against every item
given the session's prefix; HR@k, NDCG@k, MRR@k over all prefix positions (section 5).
The padding column 0 is never a candidate; ties count against the target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from seqrec.data.interactions import Interactions
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import Sequences
from seqrec.data.sessions import session_split
from seqrec.data.split import EvalCases, Split, caser_paper_split, d2l_split, loo_split, stages
from seqrec.errors import ConfigError
from seqrec.evaluation.metrics import ranking_metrics, set_metrics
from seqrec.models.base import SequentialRecommender

# Split families by name: the split function and the fewest events per user (or session) it needs.
SPLITS: dict[str, tuple[Callable[[Interactions], Split], int]] = {
    "d2l": (d2l_split, 1), "loo": (loo_split, 3), "caser-paper": (caser_paper_split, 3), "session": (session_split, 2)}


@dataclass(frozen=True)
class Protocol:
    name: str
    split: str                          # split family in SPLITS
    ks: tuple[int, ...]                 # cut-offs reported when eval.ks is not set
    headline: tuple[str, str]           # the two metrics tables and charts show first
    candidates: str = "full"            # "full" | "sampled" (target + N seeded negatives)
    max_candidate: str = "num_items"    # "num_users": the book's bug caps candidates at index num_users
    repeats_flag: bool = True           # False: the book's exclusion is part of the protocol, not a choice
    mrr_at_k: bool = False              # also report MRR@k (MRR counting only ranks below k)
    selection: str = "ndcg@10"          # the validation metric early stopping uses for "auto"


PROTOCOLS = {
    "d2l": Protocol("d2l", "d2l", (10, 50), ("hit@50", "auc"), max_candidate="num_users", repeats_flag=False),
    "d2l-fixed": Protocol("d2l-fixed", "d2l", (10, 50), ("hit@50", "auc"), repeats_flag=False),
    "loo-full": Protocol("loo-full", "loo", (5, 10, 20), ("hr@10", "ndcg@10")),
    "loo-sampled": Protocol("loo-sampled", "loo", (5, 10, 20), ("hr@10", "ndcg@10"), candidates="sampled"),
    "caser-paper": Protocol("caser-paper", "caser-paper", (1, 5, 10), ("precision@10", "map"), selection="map"),
    "session": Protocol("session", "session", (5, 10, 20), ("hr@10", "mrr@10"), mrr_at_k=True, selection="mrr@10"),
}


def metric_key(protocol: str, name: str, num_sampled: int) -> str:
    """The key a metric has under `protocol`: sampled protocols carry their N ('hr@10/sampled100')."""
    return f"{name}/sampled{num_sampled}" if PROTOCOLS[protocol].candidates == "sampled" else name


def metric_names(protocol: str, ks: tuple[int, ...], num_sampled: int) -> tuple[str, ...]:
    """The keys `evaluate` returns under `protocol` for cut-offs `ks` (empty: the protocol's own)."""
    spec, ks = PROTOCOLS[protocol], ks or PROTOCOLS[protocol].ks
    if spec.split == "caser-paper":
        names = [f"{name}@{k}" for k in ks for name in ("precision", "recall")] + ["map"]
    else:
        at_k = ("hr", "hit", "ndcg", "mrr") if spec.mrr_at_k else ("hr", "hit", "ndcg")
        names = [f"{name}@{k}" for k in ks for name in at_k] + ["mrr", "auc"]
    return tuple(metric_key(protocol, name, num_sampled) for name in names)


def split_family(protocols: tuple[str, ...]) -> str:
    """The one split all `protocols` share; protocols built on different splits cannot share a run."""
    families = {PROTOCOLS[p].split for p in protocols}
    if len(families) != 1:
        raise ConfigError(f"protocols {', '.join(protocols)} use different splits ({', '.join(sorted(families))}); "
                          "evaluate them in separate runs")
    return families.pop()


def sampled_negatives(seen: Sequences, users: np.ndarray, num_items: int, n: int,
                      seed: int | tuple[int, ...]) -> np.ndarray:
    """(len(users), n) distinct items per case, uniform over items the user never interacted with.

    Depends only on (seen, users, num_items, n, seed): every model and run with the same seed ranks
    the same candidates. Duplicates are redrawn until each row holds n distinct items.
    """
    sampler = NegativeSampler(seen, num_items)
    unseen = num_items - sampler.distinct[users]
    short = np.flatnonzero(unseen < n)
    if short.size:
        raise ConfigError(f"eval.num_sampled={n} exceeds the {unseen[short[0]]} items user index "
                          f"{users[short[0]]} has not interacted with; lower eval.num_sampled")
    rng = np.random.default_rng(seed)
    out = sampler.sample(users, n, rng)
    while True:
        order = np.argsort(out, axis=1, kind="stable")
        ordered = np.take_along_axis(out, order, 1)
        dup = np.zeros_like(out, dtype=bool)
        np.put_along_axis(dup, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], 1)
        if not dup.any():
            return out
        rows = np.nonzero(dup)[0]
        out[dup] = sampler.sample(users[rows], 1, rng)[:, 0]


def sampled_candidates(log: Interactions, split: Split, protocols: tuple[str, ...], num_sampled: int,
                       seed: int) -> dict[str, np.ndarray]:
    """The sampled candidates of loo-sampled per stage ('test', 'valid'): a function of the log, the split,
    num_sampled and the seed only, so every model sees the same ones. Empty for full-ranking protocols."""
    if not any(PROTOCOLS[p].candidates == "sampled" for p in protocols):
        return {}
    order = np.argsort(log.users, kind="stable")
    seen = Sequences.from_sorted(log.users[order], log.items[order])     # every item of each user
    return {stage: sampled_negatives(seen, cases.users, log.num_items, num_sampled, (seed, i))
            for i, (stage, cases) in enumerate(stages(split).items())}


def repeat_cases(cases: EvalCases) -> int:
    """How many cases have a target that is also an item of their history (repeat consumption)."""
    targets = cases.targets if isinstance(cases.targets, Sequences) else Sequences(
        cases.users, np.arange(len(cases) + 1, dtype=np.int64), np.asarray(cases.targets))
    stride = int(max(targets.items.max(initial=0), cases.exclude.items.max(initial=0))) + 1
    seen = cases.exclude.row_of_each_item() * stride + cases.exclude.items
    hit = np.isin(targets.row_of_each_item() * stride + targets.items, seen)
    return int(np.unique(targets.row_of_each_item()[hit]).size)


def candidate_mask(protocol: Protocol, exclude_rows: Tensor, exclude_items: Tensor, batch: int,
                   num_users: int, num_items: int) -> Tensor:
    """(batch, num_items + 1) bool: True where an item may be ranked. Padding (column 0) never is."""
    top = num_users if protocol.max_candidate == "num_users" else num_items
    mask = torch.zeros(batch, num_items + 1, dtype=torch.bool, device=exclude_items.device)
    mask[:, 1: min(top, num_items) + 1] = True
    mask[exclude_rows, exclude_items] = False
    return mask


def ranks_of(scores: Tensor, candidates: Tensor, rows: Tensor, items: Tensor) -> Tensor:
    """0-based rank of item items[j] in row rows[j] among that row's candidates, ties counted against it.

    scores (B, I), candidates bool (B, I), rows (n,), items (n,) -> ranks (n,) float, inf if not a candidate.
    A non-finite score (NaN, +-inf: a diverged model) counts as -inf, so it never ranks above anything and
    a target with one ranks last.
    """
    if not torch.isfinite(scores).all():
        scores = scores.masked_fill(~torch.isfinite(scores), -torch.inf)
    target_scores = scores[rows, items]
    ahead = ((scores[rows] >= target_scores[:, None]) & candidates[rows]).sum(1) - 1
    return torch.where(candidates[rows, items], ahead.float(), torch.inf)


def target_ranks(scores: Tensor, targets: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
    """One target per row: scores (B, I), targets (B,), candidates (B, I) -> ranks (B,), num_candidates (B,)."""
    return ranks_of(scores, candidates, torch.arange(len(targets), device=targets.device), targets), candidates.sum(1)


def _csr(seqs: Sequences, device: torch.device | str) -> tuple[Tensor, Tensor, np.ndarray]:
    return (torch.as_tensor(seqs.row_of_each_item(), device=device), torch.as_tensor(seqs.items, device=device),
            seqs.indptr)


@torch.no_grad()
def evaluate(model: SequentialRecommender, cases: EvalCases, protocol: str, L: int, num_users: int,
             num_items: int, ks: tuple[int, ...] = (), batch_size: int = 1024, device: torch.device | str = "cpu",
             negatives: np.ndarray | None = None, allow_repeats: bool = False) -> dict[str, float]:
    """Rank every case's target(s) under `protocol`; returns flat metrics (the caller keys them by protocol).

    ks: cut-offs (empty: the protocol's own). negatives (B, N): the sampled candidates of `loo-sampled`
    (see `sampled_negatives`). Items of the history are not ranked, except the target itself, which is
    always a candidate (a repeat of an earlier item can be predicted); allow_repeats ranks every item of
    the history too. The d2l protocols keep the book's rule: training items are never candidates.
    """
    spec, ks = PROTOCOLS[protocol], ks or PROTOCOLS[protocol].ks
    if spec.candidates == "sampled" and negatives is None:
        raise ConfigError(f"protocol {protocol} needs sampled negatives")
    seqs = torch.as_tensor(cases.history.last(L), device=device)
    users = torch.as_tensor(cases.users, device=device)
    no_exclusion = Sequences(cases.users, np.zeros(len(cases) + 1, np.int64), np.zeros(0, np.int64))
    ex_rows, ex_items, ex_ptr = _csr(no_exclusion if allow_repeats and spec.repeats_flag else cases.exclude, device)
    multi = isinstance(cases.targets, Sequences)
    one_each = Sequences(cases.users, np.arange(len(cases) + 1, dtype=np.int64), np.asarray(cases.targets))
    t_rows, t_items, t_ptr = _csr(cases.targets if multi else one_each, device)
    ranks, counts = [], []
    for start in range(0, len(cases), batch_size):
        stop = min(start + batch_size, len(cases))
        lo, hi = int(ex_ptr[start]), int(ex_ptr[stop])
        if spec.candidates == "sampled":
            mask = torch.zeros(stop - start, num_items + 1, dtype=torch.bool, device=device)
            mask.scatter_(1, torch.as_tensor(negatives[start:stop], device=device), True)
            mask[torch.arange(stop - start, device=device), t_items[start:stop]] = True
        tlo, thi = int(t_ptr[start]), int(t_ptr[stop])
        if spec.candidates != "sampled":
            mask = candidate_mask(spec, ex_rows[lo:hi] - start, ex_items[lo:hi], stop - start, num_users, num_items)
            if spec.repeats_flag:                      # a target that repeats a history item is still ranked
                mask[t_rows[tlo:thi] - start, t_items[tlo:thi]] = True
        scores = model.score_all(users[start:stop], seqs[start:stop])
        ranks.append(ranks_of(scores, mask, t_rows[tlo:thi] - start, t_items[tlo:thi]))
        counts.append(mask.sum(1))
    ranks_all = torch.cat(ranks).cpu()
    if multi:
        return set_metrics(ranks_all, t_rows.cpu(), torch.as_tensor(cases.targets.lengths), ks)
    metrics = ranking_metrics(ranks_all, torch.cat(counts).cpu(), ks, spec.mrr_at_k)
    num_sampled = 0 if negatives is None else negatives.shape[1]
    return {metric_key(protocol, name, num_sampled): v for name, v in metrics.items()}
