"""Evaluation, top-k and the item-transition model at scale: chunked, sparse, sampled, and still exact.

Every chunked or sparse path is checked against a slow, literal reference on small data, where the
numbers must be identical (not approximately equal): scaling must not move a metric.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from seqrec.bundle import load_bundle, make_bundle, save_bundle
from seqrec.data.sequences import Sequences, make_windows
from seqrec.data.split import EvalCases, loo_split
from seqrec.errors import ConfigError
from seqrec.evaluation import ranking
from seqrec.evaluation.metrics import ranking_metrics, set_metrics
from seqrec.evaluation.protocols import PROTOCOLS, case_sample, evaluate, metric_key, sample_cases, target_sets
from seqrec.evaluation.ranking import candidate_counts, chunk_rows, chunks
from seqrec.models.base import dot_all
from seqrec.models.markov import Markov, MarkovConfig
from seqrec.recommend import top_k
from tests.conftest import markov_log, run_config


class Table(nn.Module):
    """Scores from a fixed (num_users + 1, num_items + 1) table; records the rows of every score_all call."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table, self.batches = table, []

    def score_all(self, users, seqs):
        self.batches.append(len(users))
        return self.table[users]


def random_sequences(rng, n: int, num_items: int, low: int, high: int) -> Sequences:
    lengths = rng.integers(low, high, n)
    return Sequences(np.arange(1, n + 1), np.r_[0, np.cumsum(lengths)].astype(np.int64),
                     rng.integers(1, num_items + 1, lengths.sum()).astype(np.int64))


def random_problem(seed: int, multi: bool = False):
    """Cases whose histories repeat items, scores with many ties and some NaN / +-inf (a diverged model)."""
    rng = np.random.default_rng(seed)
    n, num_items, num_users = int(rng.integers(1, 30)), int(rng.integers(2, 40)), int(rng.integers(1, 50))
    table = torch.tensor(rng.integers(0, 5, (n + 1, num_items + 1)), dtype=torch.float32)
    special = rng.random(table.shape)
    table[special < 0.05] = math.nan
    table[(special >= 0.05) & (special < 0.08)] = math.inf
    table[(special >= 0.08) & (special < 0.11)] = -math.inf
    history = random_sequences(rng, n, num_items, 0, 10)
    exclude = history if seed % 2 else random_sequences(rng, n, num_items, 0, 10)
    targets = random_sequences(rng, n, num_items, 1, 4) if multi else rng.integers(1, num_items + 1, n)
    return table, EvalCases(history, targets, exclude), num_users, num_items


def reference(table, cases, protocol, num_users, num_items, ks, negatives=None, allow_repeats=False):
    """The protocol's rules, literally, one case and one candidate at a time."""
    spec = PROTOCOLS[protocol]
    top = min(num_users, num_items) if spec.max_candidate == "num_users" else num_items
    targets, ranks, counts = target_sets(cases), [], []
    for c in range(len(cases)):
        row = [s if math.isfinite(s) else -math.inf for s in table[cases.users[c]].tolist()]
        wanted = targets.items[targets.indptr[c]: targets.indptr[c + 1]].tolist()
        if negatives is not None:
            candidates = set(negatives[c].tolist()) | set(wanted)
        else:
            excluded = set() if allow_repeats and spec.repeats_flag else set(
                cases.exclude.items[cases.exclude.indptr[c]: cases.exclude.indptr[c + 1]].tolist())
            candidates = set(range(1, top + 1)) - excluded | (set(wanted) if spec.repeats_flag else set())
        counts.append(len(candidates))
        for t in wanted:
            if t not in candidates:
                ranks.append(math.inf)
            elif row[t] == -math.inf:                          # a non-finite target score ranks last
                ranks.append(len(candidates) - 1)
            else:                                              # ties count against the target
                ranks.append(sum(row[i] >= row[t] for i in candidates) - 1)
    ranks = torch.tensor(ranks, dtype=torch.float32)
    if isinstance(cases.targets, Sequences):
        return set_metrics(ranks, torch.as_tensor(targets.row_of_each_item()), torch.as_tensor(targets.lengths), ks)
    num_sampled = 0 if negatives is None else negatives.shape[1]
    return {metric_key(protocol, k, num_sampled): v
            for k, v in ranking_metrics(ranks, torch.tensor(counts), ks, spec.mrr_at_k).items()}


@pytest.mark.parametrize("seed", range(12))
def test_chunked_ranks_equal_the_literal_rules_for_every_protocol(seed):
    table, cases, num_users, num_items = random_problem(seed)
    model, ks, batch = Table(table), (1, 3, 10), 1 + seed % 5
    for protocol in ("d2l", "d2l-fixed", "loo-full", "session"):
        for allow_repeats in (False, True):
            got = evaluate(model, cases, protocol, 3, num_users, num_items, ks, batch, allow_repeats=allow_repeats)
            assert got == reference(table, cases, protocol, num_users, num_items, ks, allow_repeats=allow_repeats)
    negatives = np.random.default_rng(seed).integers(1, num_items + 1, (len(cases), 4))   # repeats, even the target
    got = evaluate(model, cases, "loo-sampled", 3, num_users, num_items, ks, batch, negatives=negatives)
    assert got == reference(table, cases, "loo-sampled", num_users, num_items, ks, negatives)
    table, cases, num_users, num_items = random_problem(seed, multi=True)
    got = evaluate(Table(table), cases, "caser-paper", 3, num_users, num_items, ks, batch)
    assert got == reference(table, cases, "caser-paper", num_users, num_items, ks)


def test_a_chunks_scores_stay_within_the_budget_whatever_the_batch_size(monkeypatch):
    table, cases, num_users, num_items = random_problem(3)
    whole = evaluate(Table(table), cases, "loo-full", 3, num_users, num_items)
    monkeypatch.setattr(ranking, "SCORE_BUDGET", 2 * (num_items + 1))          # two rows per chunk
    model = Table(table)
    assert evaluate(model, cases, "loo-full", 3, num_users, num_items, batch_size=1024) == whole
    assert max(model.batches) == 2 and sum(model.batches) == len(cases)
    table, cases, num_users, num_items = random_problem(4, multi=True)
    model = Table(table)
    evaluate(model, cases, "caser-paper", 3, num_users, num_items)
    starts = np.cumsum([0, *model.batches])
    targets_per_chunk = cases.targets.indptr[starts[1:]] - cases.targets.indptr[starts[:-1]]
    assert ((targets_per_chunk <= 2) | (np.array(model.batches) == 1)).all()   # chunked by targets, too


def test_chunk_sizes():
    assert chunk_rows(1682, 1024) == 1024 and chunk_rows(100_000, 1024) == 2**22 // 100_001 == 41
    assert chunk_rows(10**9, 1024) == 1                                       # never zero rows
    assert list(chunks(np.arange(6), 2)) == [(0, 2), (2, 4), (4, 5)]           # one target per case
    assert list(chunks(np.array([0, 3, 4, 5, 9]), 2)) == [(0, 1), (1, 3), (3, 4)]  # a case over budget goes alone


def test_candidate_counts_count_distinct_exclusions_and_keep_targets_where_asked():
    exclude = Sequences(np.array([1, 2]), np.array([0, 4, 5]), np.array([2, 2, 7, 3, 1]))   # case 0 repeats 2
    targets = Sequences(np.array([1, 2]), np.array([0, 1, 2]), np.array([2, 4]))
    counts, is_candidate = candidate_counts(exclude, targets, top=5, keep_targets=True)
    # case 0: items 1..5 less {2, 3} (7 is past the top), plus its target 2; case 1: 1..5 less {1}
    assert counts.tolist() == [5 - 2 + 1, 5 - 1] and is_candidate.tolist() == [True, True]
    counts, is_candidate = candidate_counts(exclude, targets, top=5, keep_targets=False)
    assert counts.tolist() == [3, 4] and is_candidate.tolist() == [False, True]


def test_a_case_sample_is_seeded_in_case_order_and_keeps_each_cases_data():
    log = markov_log(num_users=60, num_items=20, length=8)
    test = loo_split(log).test
    a, b, other = sample_cases(test, 10, 0), sample_cases(test, 10, 0), sample_cases(test, 10, 1)
    assert len(a) == 10 and np.array_equal(a.users, b.users) and not np.array_equal(a.users, other.users)
    assert np.all(np.diff(a.users) > 0)                                        # case order, no repeats
    index = np.searchsorted(test.users, a.users)
    assert np.array_equal(a.targets, test.targets[index]) and np.array_equal(a.history.last(4),
                                                                             test.history.last(4)[index])
    assert sample_cases(test, None, 0) is test and sample_cases(test, 60, 0) is test
    negatives = np.ones((len(test), 3), np.int64)
    with pytest.raises(ConfigError, match="the same rows of the negatives"):
        evaluate(Table(torch.zeros(61, 21)), a, "loo-sampled", 3, 60, 20, negatives=negatives)
    evaluate(Table(torch.zeros(61, 21)), a, "loo-sampled", 3, 60, 20, negatives=negatives[case_sample(60, 10, 0)])
    _, multi, _, _ = random_problem(5, multi=True)
    sampled = sample_cases(multi, 3, 0)
    rows = np.searchsorted(multi.users, sampled.users)
    for i, c in enumerate(rows):
        get = lambda s, r: s.items[s.indptr[r]: s.indptr[r + 1]].tolist()     # noqa: E731
        assert get(sampled.targets, i) == get(multi.targets, c) and get(sampled.exclude, i) == get(multi.exclude, c)


def test_top_k_in_chunks_returns_the_one_shot_answer(monkeypatch):
    rng = np.random.default_rng(0)
    num_users, num_items = 30, 50
    table = torch.tensor(rng.normal(size=(num_users + 1, num_items + 1)), dtype=torch.float32)
    bundle = SimpleNamespace(model=Table(table), num_items=num_items)
    users = rng.integers(0, num_users + 1, 40)
    rows, items = rng.integers(0, 40, 300), rng.integers(1, num_items + 1, 300)   # unsorted, repeated pairs
    expected = table[users].clone()
    expected[:, 0] = -torch.inf
    expected[rows, items] = -torch.inf
    values, indices = expected.topk(5, 1)
    monkeypatch.setattr(ranking, "SCORE_BUDGET", 3 * (num_items + 1))
    got_items, got_scores = top_k(bundle, users, np.zeros((40, 1), np.int64), rows, items, 5)
    assert max(bundle.model.batches) == 3
    np.testing.assert_array_equal(got_items, indices.numpy())
    np.testing.assert_array_equal(got_scores, values.numpy())


def dense_markov_scores(model: Markov, seqs: torch.Tensor) -> torch.Tensor:
    """The dense formula y = sum_j w_j C[s_j] + backoff * n / max n, C rebuilt densely from the CSR."""
    n = model.stride
    C = torch.zeros(n * n)
    C[model._keys()] = model.transition_counts
    recent = seqs[:, -model.config.L:]
    votes = torch.einsum("l,bli->bi", model.weights[-recent.size(1):], C.view(n, n)[recent])
    return votes + model.config.backoff * model.counts / model.counts.max().clamp(min=1)


def test_markov_counts_sparsely_and_scores_as_the_dense_formula_at_any_catalogue_size():
    g = torch.Generator().manual_seed(0)
    for num_items in (7, 200_000):                                 # the dense matrix would be 160 GB
        model = Markov(MarkovConfig(L=3), 5, num_items)
        pool = torch.randint(1, num_items + 1, (12,), generator=g)     # few items: repeated transitions
        for _ in range(2):                                           # counts accumulate over calls
            inputs = pool[torch.randint(0, 12, (50, 3), generator=g)] * (torch.rand(50, 3, generator=g) > 0.2)
            model.fit_counts(torch.ones(50), inputs, pool[torch.randint(0, 12, (50, 2), generator=g)])
        seqs = torch.cat([pool[torch.randint(0, 12, (4, 3), generator=g)], torch.zeros(1, 3, dtype=torch.long)])
        with torch.no_grad():
            scores = model.score_all(torch.zeros(5), seqs)
            if num_items < 100:
                assert torch.equal(scores, dense_markov_scores(model, seqs))
            assert len(model.transition_items) <= 12 * 12 and torch.equal(
                model.score(torch.zeros(5), seqs, pool.expand(5, -1)), scores.gather(1, pool.expand(5, -1)))


def test_a_trained_markov_bundle_round_trips_with_its_sparse_counts(tmp_path):
    log = markov_log(num_users=30, num_items=25, length=10)
    split = loo_split(log)
    windows = make_windows(split.train, 5, 1)
    model = Markov(MarkovConfig(L=5), log.num_users, log.num_items)
    model.fit_counts(*(torch.as_tensor(a) for a in (windows.users, windows.inputs, windows.targets)))
    assert len(model.transition_items) > 0
    loaded = load_bundle(save_bundle(make_bundle(model, log, run_config("markov")), tmp_path / "bundle")).model
    for name in ("row_starts", "transition_items", "transition_counts", "counts"):
        assert torch.equal(getattr(loaded, name), getattr(model, name))
    assert evaluate(loaded, split.test, "loo-full", 5, log.num_users, log.num_items) == evaluate(
        model, split.test, "loo-full", 5, log.num_users, log.num_items)


class Factors(nn.Module):
    """A product model: score_all = states[users] @ weight.T + bias, with its factors for block scoring."""

    def __init__(self, states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.states, self.weight, self.bias = states, weight, bias

    def factors(self, users, seqs):
        return self.states[users], self.weight, self.bias

    def score_all(self, users, seqs):
        return dot_all(*self.factors(users, seqs))


@pytest.mark.parametrize("seed", range(8))
def test_block_scores_from_factors_rank_as_the_literal_rules(seed, monkeypatch):
    monkeypatch.setattr(ranking, "BLOCK", 64)                          # many blocks even for small catalogues
    _, cases, num_users, num_items = random_problem(seed)
    rng = np.random.default_rng(seed)
    states = torch.tensor(rng.integers(-2, 3, (len(cases) + 1, 3)), dtype=torch.float32)   # small integers: ties
    weight = torch.tensor(rng.integers(-2, 3, (num_items + 1, 3)), dtype=torch.float32)
    weight[rng.random(num_items + 1) < 0.1] = math.nan                 # a diverged item scores NaN for everyone
    bias = torch.tensor(rng.integers(0, 2, num_items + 1), dtype=torch.float32)
    model = Factors(states, weight, bias)
    table = model.score_all(torch.arange(len(cases) + 1), None)
    for protocol in ("d2l", "d2l-fixed", "loo-full", "session"):
        for allow_repeats in (False, True):
            got = evaluate(model, cases, protocol, 3, num_users, num_items, (1, 3, 10), 1 + seed % 4,
                           allow_repeats=allow_repeats, factorised=True)
            expected = reference(table, cases, protocol, num_users, num_items, (1, 3, 10), allow_repeats=allow_repeats)
            assert got == expected


@pytest.mark.parametrize("seed", range(4))
def test_block_scores_that_overflow_rank_as_the_literal_rules(seed, monkeypatch):
    """Finite factors whose products overflow to +-inf are caught too (the cheap finiteness bound fails)."""
    monkeypatch.setattr(ranking, "BLOCK", 64)
    _, cases, num_users, num_items = random_problem(seed)
    rng = np.random.default_rng(seed)
    states = torch.tensor(rng.integers(0, 3, (len(cases) + 1, 3)), dtype=torch.float32)
    weight = torch.tensor(rng.integers(-2, 3, (num_items + 1, 3)), dtype=torch.float32)
    # finite, but 2e38 + 2e38 overflows: each such row has one sign and the states none below 0, so a product's
    # terms share their sign and it is +-inf in any summation order (which differs between matrix kernels)
    signs = torch.tensor(rng.choice([-1.0, 1.0], len(weight[1::3])), dtype=torch.float32)
    weight[1::3] = 2e38 * signs[:, None]
    model = Factors(states, weight, None)
    table = model.score_all(torch.arange(len(cases) + 1), None)
    assert torch.isinf(table).any() and torch.isfinite(weight).all()
    got = evaluate(model, cases, "loo-full", 3, num_users, num_items, (1, 3, 10), 2, factorised=True)
    assert got == reference(table, cases, "loo-full", num_users, num_items, (1, 3, 10))
