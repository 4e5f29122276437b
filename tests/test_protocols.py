"""Protocols on hand-made logs whose answers are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from seqrec.data.filters import shuffle_ties
from seqrec.data.sequences import Sequences, make_windows
from seqrec.data.split import caser_paper_split, loo_split
from seqrec.errors import ConfigError, DataError
from seqrec.evaluation.metrics import set_metrics
from seqrec.evaluation.protocols import evaluate, sampled_candidates, sampled_negatives
from seqrec.pipeline import split_for
from tests.conftest import make_log, markov_log, run_config


class FixedScores(nn.Module):
    """A 'model' whose scores are a fixed table: row u holds the scores of every item for user u."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)

    def score_all(self, users, seqs):
        return self.table[users]


def tiny_log():
    """User A: 10, 20, 30, 40 (10 and 20 at the same time: file order decides). User B: 50, 60, 10.
    Items map to 10->1, 20->2, 30->3, 40->4, 50->5, 60->6; users A->1, B->2."""
    return make_log(["A", "B", "A", "B", "A", "A", "B"], [10, 50, 20, 60, 30, 40, 10], [0, 0, 0, 1, 2, 3, 2])


def seqs(s, i):
    return s.items[s.indptr[i]: s.indptr[i + 1]].tolist()


def test_loo_split_by_hand():
    split = loo_split(tiny_log())
    assert split.train.users.tolist() == [1, 2]
    assert [seqs(split.train, 0), seqs(split.train, 1)] == [[1, 2], [5]]
    assert split.valid.targets.tolist() == [3, 6]
    assert split.test.targets.tolist() == [4, 1]
    assert [seqs(split.test.history, 0), seqs(split.test.history, 1)] == [[1, 2, 3], [5, 6]]   # valid item included
    assert [seqs(split.valid.history, 0), seqs(split.valid.history, 1)] == [[1, 2], [5]]


def test_short_users_are_an_error_or_dropped_with_a_count():
    log = make_log(["A", "A", "A", "B", "B"], [1, 2, 3, 1, 2])
    with pytest.raises(DataError, match="'B' has 2 event"):
        split_for(log, run_config(data={"short_users": "error"}))
    kept, split, dropped = split_for(log, run_config())
    assert dropped == 1 and kept.num_users == 1 and split.test.targets.tolist() == [3]


def test_shuffled_ties_reorder_only_events_of_one_user_at_one_time():
    # A's last three events share time 5 and are listed by item id, B's two share time 1; the rest do not tie
    log = make_log(["A", "A", "B", "A", "A", "B", "A", "B"], [1, 2, 3, 4, 5, 6, 7, 8], [0, 5, 1, 5, 5, 1, 9, 2])
    untied = [0, 6, 7]
    orders = set()
    for seed in range(100):
        shuffled = shuffle_ties(log, seed)
        assert shuffled.items[untied].tolist() == log.items[untied].tolist()
        assert sorted(shuffled.items[[1, 3, 4]].tolist()) == [2, 4, 5] and shuffled.times[[1, 3, 4]].tolist() == [5] * 3
        assert sorted(shuffled.items[[2, 5]].tolist()) == [3, 6] and shuffled.users.tolist() == log.users.tolist()
        assert shuffle_ties(log, seed).items.tolist() == shuffled.items.tolist()          # the seed decides
        orders.add(tuple(shuffled.items.tolist()))
    assert len(orders) == 12                                                            # 3! x 2! orders, all drawn


def test_shuffled_ties_change_which_event_is_held_out():
    # the user's last two events tie: the file puts item 4 last, so it is always the test item unless shuffled
    log = make_log(["A"] * 4 + ["B"] * 3, [1, 2, 3, 4, 1, 2, 3], [0, 1, 2, 2, 0, 1, 2])
    assert {split_for(log, run_config(seed=seed))[1].test.targets[0] for seed in range(8)} == {4}
    held_out = {split_for(log, run_config(seed=seed, data={"ties": "shuffle"}))[1].test.targets[0] for seed in range(8)}
    assert held_out == {3, 4}
    with pytest.raises(ConfigError, match="data.ties must be one of file, shuffle, got 'random'"):
        run_config(data={"ties": "random"})


# Scores per user row (index 0 unused), columns = item indices 0..6 (0 is padding, scored highest to prove
# it is never ranked). A: test target 4, history {1, 2, 3}. B: test target 1, history {5, 6}; item 2 ties it.
SCORES = [[0] * 7, [9, 6, 5, 4, 3, 2, 1], [100, 1, 1, 5, 0, 9, 9]]


def test_loo_full_excludes_seen_items_and_counts_ties_against_the_target():
    split = loo_split(tiny_log())
    m = evaluate(FixedScores(SCORES), split.test, "loo-full", L=3, num_users=2, num_items=6)
    # A: candidates {4, 5, 6}, target first -> rank 0. B: candidates {1, 2, 3, 4}, 3 and the tied 2 -> rank 2.
    assert m["hr@5"] == 1.0
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(4)) / 2)
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert m["auc"] == pytest.approx((1 + 1 / 3) / 2)       # A: (3-1-0)/2, B: (4-1-2)/3


def test_loo_full_with_repeats_allowed_ranks_seen_items():
    split = loo_split(tiny_log())
    m = evaluate(FixedScores(SCORES), split.test, "loo-full", L=3, num_users=2, num_items=6, allow_repeats=True)
    assert m["mrr"] == pytest.approx((1 / 4 + 1 / 5) / 2)   # A: items 1, 2, 3 ahead; B: 1, 2, 3, 5, 6 >= 1


def test_training_windows_never_hold_validation_or_test_events():
    # Every event has its own item, so an item id identifies one event.
    rng = np.random.default_rng(0)
    users = rng.integers(0, 20, 400)
    log = make_log(users, np.arange(400), rng.integers(0, 50, 400))
    for split in (loo_split(log), caser_paper_split(log)):
        held_out = np.r_[split.test.targets.items if hasattr(split.test.targets, "items") else split.test.targets,
                         split.valid.targets.items if hasattr(split.valid.targets, "items") else split.valid.targets]
        windows = make_windows(split.train, L=3, T=2)
        assert not np.isin(windows.inputs, held_out).any()
        assert not np.isin(windows.targets, held_out).any()
        assert not np.isin(split.train.items, held_out).any()
        assert len(split.train.items) + len(held_out) == len(log)


def test_sampled_negatives_are_unseen_distinct_and_seeded():
    log = markov_log(num_users=50, num_items=40, length=12)
    seen = Sequences.from_sorted(*(a[np.argsort(log.users, kind="stable")] for a in (log.users, log.items)))
    users = np.arange(1, 51)
    a, b = (sampled_negatives(seen, users, 40, 10, seed=(0, 1)) for _ in range(2))
    other = sampled_negatives(seen, users, 40, 10, seed=(1, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, other)
    assert all(len(set(row)) == 10 for row in a.tolist())
    user_items = {u: set(seen.items[seen.indptr[i]: seen.indptr[i + 1]].tolist()) for i, u in enumerate(seen.users)}
    assert not any(set(row) & user_items[u] for u, row in zip(users.tolist(), a.tolist(), strict=True))


def test_sampled_candidates_are_the_same_for_every_model_and_run():
    log = markov_log(num_users=50, num_items=40, length=12)
    eval_cfg = {"protocols": ["loo-sampled"], "num_sampled": 10}
    small = run_config(model_params={"embedding_dim": 4}, eval=eval_cfg)
    large = run_config(model_params={"embedding_dim": 16, "num_h_filters": 2}, eval=eval_cfg)

    def candidates(cfg):
        return sampled_candidates(log, split_for(log, cfg)[1], cfg.eval.protocols, cfg.eval.num_sampled, cfg.seed)

    first, second, again = candidates(small), candidates(large), candidates(small)
    other = candidates(run_config(seed=1, eval=eval_cfg))
    for stage in ("valid", "test"):
        assert np.array_equal(first[stage], second[stage]) and np.array_equal(first[stage], again[stage])
        assert not np.array_equal(first[stage], other[stage])


def test_loo_sampled_ranks_against_the_sampled_items_only():
    split = loo_split(tiny_log())
    negatives = np.array([[5, 6], [3, 4]])       # A never saw 5, 6; B never saw 3, 4
    m = evaluate(FixedScores(SCORES), split.test, "loo-sampled", L=3, num_users=2, num_items=6, negatives=negatives)
    # A: target 4 (3) vs 5 (2), 6 (1) -> rank 0. B: target 1 (1) vs 3 (5), 4 (0) -> rank 1.
    assert m["mrr/sampled2"] == pytest.approx((1 + 1 / 2) / 2)
    assert m["auc/sampled2"] == pytest.approx((1 + 1 / 2) / 2)
    assert "hr@10" not in m and m["hr@10/sampled2"] == 1.0


def test_caser_paper_split_sizes():
    log = make_log(["A"] * 10 + ["B"] * 3 + ["C"] * 20, np.arange(33))
    split = caser_paper_split(log)
    assert split.train.lengths.tolist() == [7, 1, 14]
    assert split.valid.targets.lengths.tolist() == [1, 1, 2]
    assert split.test.targets.lengths.tolist() == [2, 1, 4]
    assert split.test.history.lengths.tolist() == [8, 2, 16]


def test_set_metrics_by_hand():
    # case 0: targets at ranks 0, 2; case 1: one unrankable target; case 2: ranks 9, 1, 5 (any order).
    ranks = torch.tensor([0.0, 2.0, math.inf, 9.0, 1.0, 5.0])
    cases = torch.tensor([0, 0, 1, 2, 2, 2])
    m = set_metrics(ranks, cases, torch.tensor([2, 1, 3]), (1, 5, 10))
    assert m["precision@1"] == pytest.approx(1 / 3)
    assert m["precision@5"] == pytest.approx((2 / 5 + 0 + 1 / 5) / 3)
    assert m["precision@10"] == pytest.approx((2 / 10 + 0 + 3 / 10) / 3)
    assert m["recall@1"] == pytest.approx((1 / 2) / 3)
    assert m["recall@5"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert m["recall@10"] == pytest.approx((1 + 0 + 1) / 3)
    ap = [(1 / 1 + 2 / 3) / 2, 0.0, (1 / 2 + 2 / 6 + 3 / 10) / 3]
    assert m["map"] == pytest.approx(sum(ap) / 3)


def test_caser_paper_ranks_against_items_not_seen_before_the_test_period():
    # A: items 1..10 -> train 1..7, valid 8, test {9, 10}. B: 11, 12, 1 -> train 11, valid 12, test {1}.
    log = make_log(["A"] * 10 + ["B"] * 3, [*range(1, 11), 11, 12, 1])
    split = caser_paper_split(log)
    scores = [[0] * 13, [float(i) for i in range(13)], [float(i) for i in range(13)]]   # higher item, higher score
    m = evaluate(FixedScores(scores), split.test, "caser-paper", L=5, num_users=2, num_items=12)
    # A: candidates {9..12}: 10 at rank 2, 9 at rank 3. B: candidates {1..10}: 1 at rank 9.
    assert m["precision@1"] == 0.0
    assert m["precision@5"] == pytest.approx((2 / 5 + 0) / 2)
    assert m["precision@10"] == pytest.approx((2 / 10 + 1 / 10) / 2)
    assert m["recall@5"] == pytest.approx((1 + 0) / 2)
    assert m["map"] == pytest.approx(((1 / 3 + 2 / 4) / 2 + 1 / 10) / 2)


def test_protocols_on_different_splits_cannot_share_a_run():
    with pytest.raises(ConfigError, match="different splits"):
        run_config(eval={"protocols": ["loo-full", "caser-paper"]})
    with pytest.raises(ConfigError, match="unknown protocol 'loo'"):
        run_config(eval={"protocols": ["loo"]})
