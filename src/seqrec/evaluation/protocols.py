"""Evaluation protocols as data: which split, which items are candidates, and the rank of each target.

`d2l`: the book's candidates, item indices 1..num_users (its `range(num_users)` bug) minus the
user's training items. `d2l-fixed`: every item minus the user's training items.
`loo-full`: leave-one-out, every item minus the items before the target (PROTOCOLS.md section 2).
`loo-sampled`: leave-one-out, the target against N seeded negatives (section 3; keys end in /sampledN).
`caser-paper`: 70/10/20 per user, several targets per user, Precision/Recall@k and MAP (section 4).
`session`: the last 20% of sessions by end time are test, the 10% before them validation; each next item
is ranked against every item given the session's prefix; HR@k, NDCG@k, MRR@k over all prefix positions
(section 5).
The padding column 0 is never a candidate; ties count against the target. `evaluate` scores cases in
chunks of bounded size (seqrec.evaluation.ranking); `sample_cases` draws a seeded subset (eval.max_users).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from seqrec.data.interactions import Interactions
from seqrec.data.keys import contains, distinct
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import Sequences
from seqrec.data.sessions import session_split
from seqrec.data.split import EvalCases, Split, caser_paper_split, d2l_split, loo_split, stages
from seqrec.errors import ConfigError
from seqrec.evaluation.metrics import ranking_metrics, set_metrics
from seqrec.evaluation.ranking import (
    candidate_counts,
    chunk_rows,
    chunks,
    count_at_or_above_,
    count_others_above,
    finite_or_neg_inf_,
    ranks_from_counts,
    take_rows,
    writable,
)
from seqrec.models.base import SequentialRecommender

# Split families by name: the split function and the fewest events per user (or session) it needs.
SPLITS: dict[str, tuple[Callable[[Interactions], Split], int]] = {
    "d2l": (d2l_split, 1), "loo": (loo_split, 3), "caser-paper": (caser_paper_split, 3), "session": (session_split, 2)}
VALIDATED_SPLITS = ("loo", "caser-paper", "session")   # split families with validation cases (d2l has none)
CASE_STREAM = 2**32 - 1     # default_rng((seed, CASE_STREAM)) samples cases; (seed, stage) draws negatives


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


def validated_protocols() -> str:
    """The protocols with validation cases, comma-separated (for messages)."""
    return ", ".join(p for p, spec in PROTOCOLS.items() if spec.split in VALIDATED_SPLITS)


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
    """The sampled candidates of loo-sampled per stage ('test', 'valid'): a function of the split,
    num_sampled and the seed only, so every model sees the same ones. Empty for full-ranking protocols.

    A stage's negatives avoid the items its cases know (history and target), and nothing later: the
    validation candidates never depend on the test item, so a search on validation cannot see it.
    """
    if not any(PROTOCOLS[p].candidates == "sampled" for p in protocols):
        return {}
    return {stage: sampled_negatives(_known(cases), cases.users, log.num_items, num_sampled, (seed, i))
            for i, (stage, cases) in enumerate(stages(split).items())}


def _known(cases: EvalCases) -> Sequences:
    """Each case's history followed by its target(s): the items it may not draw as negatives."""
    targets = target_sets(cases)
    rows = np.r_[cases.history.row_of_each_item(), targets.row_of_each_item()]
    items = np.r_[cases.history.items, targets.items]
    order = np.argsort(rows, kind="stable")
    return Sequences.from_sorted(cases.users[rows[order]], items[order])


def target_sets(cases: EvalCases) -> Sequences:
    """The cases' targets as one Sequences row per case (one item each, unless the targets are sets already)."""
    if isinstance(cases.targets, Sequences):
        return cases.targets
    return Sequences(cases.users, np.arange(len(cases) + 1, dtype=np.int64), np.asarray(cases.targets))


def repeat_cases(cases: EvalCases) -> int:
    """How many cases have a target that is also an item of their history (repeat consumption)."""
    targets = target_sets(cases)
    stride = int(max(targets.items.max(initial=0), cases.exclude.items.max(initial=0))) + 1
    seen = distinct(cases.exclude.row_of_each_item() * stride + cases.exclude.items)
    hit = contains(seen, targets.row_of_each_item() * stride + targets.items)
    return int(distinct(targets.row_of_each_item()[hit]).size)


def _take(seqs: Sequences, index: np.ndarray) -> Sequences:
    """Sequences `index` (in that order), copied into a compact Sequences of their own."""
    lengths = seqs.lengths[index]
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    offsets = np.repeat(seqs.indptr[index] - indptr[:-1], lengths)
    return Sequences(seqs.users[index], indptr, seqs.items[np.arange(indptr[-1]) + offsets])


def case_sample(num_cases: int, max_users: int | None, seed: int) -> np.ndarray:
    """Indices of at most max_users of num_cases cases, in increasing order: all of them when max_users is
    None or not smaller, else drawn without replacement by np.random.default_rng((seed, CASE_STREAM)), so
    every model and stage with the same seed and number of cases gets the same cases."""
    if max_users is None or max_users >= num_cases:
        return np.arange(num_cases)
    return np.sort(np.random.default_rng((seed, CASE_STREAM)).choice(num_cases, max_users, replace=False))


def sample_cases(cases: EvalCases, max_users: int | None, seed: int) -> EvalCases:
    """A seeded sample of at most max_users cases (`case_sample`), in case order, for quick looks at huge logs.

    Works for one target per case and for target sets alike. The sampled negatives of loo-sampled are
    aligned with the cases: take the same rows of them, negatives[case_sample(len(cases), max_users, seed)].
    """
    if max_users is None or max_users >= len(cases):
        return cases
    return take_cases(cases, case_sample(len(cases), max_users, seed))


def take_cases(cases: EvalCases, index: np.ndarray) -> EvalCases:
    """Cases `index` (in that order), e.g. a sample or one process's share of them."""
    history = _take(cases.history, index)
    exclude = history if cases.exclude is cases.history else _take(cases.exclude, index)
    targets = _take(cases.targets, index) if isinstance(cases.targets, Sequences) else np.asarray(cases.targets)[index]
    return EvalCases(history, targets, exclude)


def candidate_mask(protocol: Protocol, exclude_rows: Tensor, exclude_items: Tensor, batch: int,
                   num_users: int, num_items: int) -> Tensor:
    """(batch, num_items + 1) bool: True where an item may be ranked. Padding (column 0) never is.

    The dense form of the candidates, for small batches and checks; `evaluate` never builds it.
    """
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
    scores = finite_or_neg_inf_(scores.clone()).masked_fill_(~candidates, -torch.inf)
    target_scores = scores[rows, items]
    return ranks_from_counts(count_at_or_above_(scores, target_scores, rows), target_scores,
                             candidates.sum(1)[rows], candidates[rows, items])


def _chunk_pairs(seqs: Sequences, start: int, stop: int, width: int,
                 device: torch.device | str) -> tuple[Tensor, Tensor]:
    """Row within the chunk and flat index row * width + item into the chunk's (b, width) scores, for every
    item of sequences start..stop-1. (Flat indices: index_put with a scalar and two index tensors is ~100x
    slower on CPU.)"""
    rows = np.repeat(np.arange(stop - start), np.diff(seqs.indptr[start: stop + 1]))
    flat = rows * width + seqs.items[seqs.indptr[start]: seqs.indptr[stop]]
    return torch.as_tensor(rows, device=device), torch.as_tensor(flat, device=device)


def _inputs(cases: EvalCases, start: int, stop: int, L: int, device: torch.device | str) -> tuple[Tensor, Tensor]:
    """users (b,) and their last L history items (b, L) of cases start..stop-1."""
    return (torch.as_tensor(cases.users[start:stop], device=device),
            torch.as_tensor(take_rows(cases.history, start, stop).last(L), device=device))


def _full_ranks(model: SequentialRecommender, cases: EvalCases, spec: Protocol, L: int, top: int, rows: int,
                device: torch.device | str, allow_repeats: bool, factorised: bool) -> tuple[Tensor, Tensor]:
    """Ranks of every target (n,) against items 1..top less the exclusions, and candidates per case (C,).

    A factorised model with one target per case is scored block by block from its factors
    (`count_others_above`); any other model through score_all, a chunk of rows at a time."""
    targets, one_each = target_sets(cases), not isinstance(cases.targets, Sequences)
    no_exclusion = Sequences(cases.users, np.zeros(len(cases) + 1, np.int64), np.zeros(0, np.int64))
    exclude = no_exclusion if allow_repeats and spec.repeats_flag else cases.exclude
    counts, is_candidate = candidate_counts(exclude, targets, top, spec.repeats_flag)
    per_target = torch.as_tensor(counts[targets.row_of_each_item()], device=device)
    is_candidate = torch.as_tensor(is_candidate, device=device)
    ranks = []
    fused = factorised and one_each
    for start, stop in chunks(targets.indptr, rows):
        lo, hi = int(targets.indptr[start]), int(targets.indptr[stop])
        if fused:
            ex_rows, _ = _chunk_pairs(exclude, start, stop, 0, device)
            ex_items = torch.as_tensor(exclude.items[exclude.indptr[start]: exclude.indptr[stop]], device=device)
            at_or_above, target_scores = count_others_above(
                *model.factors(*_inputs(cases, start, stop, L, device)),
                torch.as_tensor(targets.items[lo:hi], device=device), top, ex_rows, ex_items)
            ranks.append(ranks_from_counts(at_or_above, target_scores, per_target[lo:hi], is_candidate[lo:hi]))
            continue
        scores = finite_or_neg_inf_(writable(model.score_all(*_inputs(cases, start, stop, L, device))))  # (b, I+1)
        flat = scores.view(-1)
        t_rows, t_flat = _chunk_pairs(targets, start, stop, scores.size(1), device)
        target_scores = flat[t_flat]                                              # (n,)
        scores[:, 0] = -torch.inf                                                 # padding is never ranked
        flat[_chunk_pairs(exclude, start, stop, scores.size(1), device)[1]] = -torch.inf
        if spec.repeats_flag:                          # a target that repeats a history item is still ranked
            flat[t_flat] = target_scores
        at_or_above = count_at_or_above_(scores[:, : top + 1], target_scores, None if one_each else t_rows)
        ranks.append(ranks_from_counts(at_or_above, target_scores, per_target[lo:hi], is_candidate[lo:hi]))
    return torch.cat(ranks).cpu(), torch.as_tensor(counts)


def _sampled_ranks(model: SequentialRecommender, cases: EvalCases, negatives: np.ndarray, L: int, rows: int,
                   device: torch.device | str) -> tuple[Tensor, Tensor]:
    """Ranks of each case's target (C,) against its sampled negatives (C, N), and candidates per case (C,).

    Scores come from score_all, not score: the two agree only to rounding for most models, and ranks
    must not depend on which one ran. A negative listed twice (or equal to the target) counts once.
    """
    targets = np.asarray(cases.targets)
    ranks, counts = [], []
    for start, stop in chunks(np.arange(len(cases) + 1), rows):
        scores = model.score_all(*_inputs(cases, start, stop, L, device))                        # (b, I+1)
        target = torch.as_tensor(targets[start:stop], device=device)                             # (b,)
        items = torch.cat([target[:, None], torch.as_tensor(negatives[start:stop], device=device)], 1)
        items = items.sort(1).values                                                             # (b, 1 + N)
        repeat = torch.cat([torch.zeros_like(items[:, :1], dtype=torch.bool), items[:, 1:] == items[:, :-1]], 1)
        candidate_scores = finite_or_neg_inf_(scores.gather(1, items)).masked_fill_(repeat, -torch.inf)
        target_scores = finite_or_neg_inf_(scores.gather(1, target[:, None]))[:, 0]                # (b,)
        num_candidates = (~repeat).sum(1)
        ranks.append(ranks_from_counts(count_at_or_above_(candidate_scores, target_scores), target_scores,
                                       num_candidates, torch.ones_like(repeat[:, 0])))
        counts.append(num_candidates)
    return torch.cat(ranks).cpu(), torch.cat(counts).cpu()


@torch.no_grad()
def evaluate(model: SequentialRecommender, cases: EvalCases, protocol: str, L: int, num_users: int,
             num_items: int, ks: tuple[int, ...] = (), batch_size: int = 1024, device: torch.device | str = "cpu",
             negatives: np.ndarray | None = None, allow_repeats: bool = False,
             factorised: bool = False) -> dict[str, float]:
    """Rank every case's target(s) under `protocol`; returns flat metrics (the caller keys them by protocol).

    ks: cut-offs (empty: the protocol's own). negatives (B, N): the sampled candidates of `loo-sampled`
    (see `sampled_negatives`). Items of the history are not ranked, except the target itself, which is
    always a candidate (a repeat of an earlier item can be predicted); allow_repeats ranks every item of
    the history too. The d2l protocols keep the book's rule: training items are never candidates.

    Cases are scored in chunks of at most batch_size rows (and targets) whose scores hold at most
    SCORE_BUDGET floats (`chunk_rows`), so memory does not grow with the number of users; ranks take
    one comparison pass over each chunk's scores and no sort (seqrec.evaluation.ranking). With
    `factorised` (a FactorisedRecommender: ModelSpec.factorised), one-target protocols score the
    catalogue from the model's factors in cache-sized blocks instead.
    """
    spec, ks = PROTOCOLS[protocol], ks or PROTOCOLS[protocol].ks
    if spec.candidates == "sampled" and negatives is None:
        raise ConfigError(f"protocol {protocol} needs sampled negatives")
    if negatives is not None and len(negatives) != len(cases):
        raise ConfigError(f"{len(negatives)} rows of sampled negatives for {len(cases)} cases; a sample of cases "
                          "(sample_cases) needs the same rows of the negatives (case_sample)")
    fused = factorised and spec.candidates != "sampled" and not isinstance(cases.targets, Sequences)
    rows = batch_size if fused else chunk_rows(num_items, batch_size)
    if spec.candidates == "sampled":
        ranks, counts = _sampled_ranks(model, cases, negatives, L, rows, device)
    else:
        top = min(num_users, num_items) if spec.max_candidate == "num_users" else num_items
        ranks, counts = _full_ranks(model, cases, spec, L, top, rows, device, allow_repeats, factorised)
    if isinstance(cases.targets, Sequences):
        return set_metrics(ranks, torch.as_tensor(cases.targets.row_of_each_item()),
                           torch.as_tensor(cases.targets.lengths), ks)
    metrics = ranking_metrics(ranks, counts, ks, spec.mrr_at_k)
    num_sampled = 0 if negatives is None else negatives.shape[1]
    return {metric_key(protocol, name, num_sampled): v for name, v in metrics.items()}
