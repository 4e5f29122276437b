"""Metrics and the d2l protocols against slow, literal reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqrec.data.sequences import Sequences
from seqrec.data.split import EvalCases
from seqrec.evaluation.metrics import auc, hit_rate, mrr, ndcg
from seqrec.evaluation.protocols import evaluate


def test_ndcg_counts_only_ranks_below_k():
    ranks = torch.tensor([0.0, 1.0, 9.0, 10.0, math.inf])
    expected = (1 + 1 / math.log2(3) + 1 / math.log2(11) + 0 + 0) / 5
    assert ndcg(ranks, k=10) == pytest.approx(expected)
    assert hit_rate(ranks, 10) == pytest.approx(3 / 5)
    assert mrr(ranks) == pytest.approx((1 + 1 / 2 + 1 / 10 + 1 / 11) / 5)
    assert auc(ranks, torch.tensor([11, 11, 11, 11, 11])) == pytest.approx((1 + 0.9 + 0.1 + 0 + 0) / 5)


class TableModel(torch.nn.Module):
    """Scores come from a fixed (num_users + 1, num_items + 1) table."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def score_all(self, users, seqs):
        return self.table[users]


def book_evaluate_ranking(table, train_items, test_items, num_users, num_candidates_top, k=50):
    """The book's evaluate_ranking + hit_and_auc, per user in Python (0-based book item = index - 1)."""
    hits, aucs = [], []
    for u in range(1, num_users + 1):
        all_items = set(range(1, num_candidates_top + 1))
        neg = sorted(all_items - set(train_items[u]))
        ranked = [i for i, _ in sorted(((i, table[u, i].item()) for i in neg), key=lambda t: t[1], reverse=True)]
        hits.append(int(test_items[u] in ranked[:k]))
        pos = ranked.index(test_items[u]) if test_items[u] in ranked else None
        aucs.append((len(ranked) - 1 - pos) / (len(ranked) - 1) if pos is not None else 0.0)
    return float(np.mean(hits)), float(np.mean(aucs))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_d2l_protocols_match_the_book_reference_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    num_users, num_items = 40, 90
    table = torch.tensor(rng.normal(size=(num_users + 1, num_items + 1)), dtype=torch.float32)
    train_items = {u: list(rng.choice(np.arange(1, num_items + 1), rng.integers(1, 30), replace=False))
                   for u in range(1, num_users + 1)}
    test_items = {u: int(rng.choice(np.setdiff1d(np.arange(1, num_items + 1), train_items[u])))
                  for u in range(1, num_users + 1)}
    lengths = [len(train_items[u]) for u in range(1, num_users + 1)]
    history = Sequences(np.arange(1, num_users + 1), np.r_[0, np.cumsum(lengths)],
                        np.concatenate([train_items[u] for u in range(1, num_users + 1)]))
    cases = EvalCases(history, np.array([test_items[u] for u in range(1, num_users + 1)]), history)
    model = TableModel(table)
    for protocol, top in (("d2l", num_users), ("d2l-fixed", num_items)):
        got = evaluate(model, cases, protocol, L=3, num_users=num_users, num_items=num_items, ks=(10, 50),
                       batch_size=7)
        hit, auc_ref = book_evaluate_ranking(table, train_items, test_items, num_users, top)
        assert got["hit@50"] == pytest.approx(hit)
        assert got["auc"] == pytest.approx(auc_ref, abs=1e-6)


def test_ties_count_against_the_target():
    history = Sequences(np.array([1]), np.array([0, 0]), np.zeros(0, dtype=int))
    cases = EvalCases(history, np.array([3]), history)
    constant = TableModel(torch.zeros(2, 6))
    got = evaluate(constant, cases, "d2l-fixed", L=2, num_users=1, num_items=5, ks=(1, 4))
    assert got["hr@4"] == 0.0 and got["mrr"] == pytest.approx(1 / 5)
