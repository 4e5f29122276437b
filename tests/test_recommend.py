"""recommend(): known users, explicit sequences, unknown users, exclusions, titles, batching."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seqrec.bundle import load_bundle
from seqrec.cli import app
from seqrec.errors import SeqrecError
from seqrec.recommend import UnknownUserError, recommend
from tests.bundle_fixtures import random_bundle, saved_random_bundle, titled_log


@pytest.fixture(scope="module")
def bundle():
    return random_bundle()


def _oracle(bundle, user: int, seq: list[int], k: int, exclude: set[int]) -> list[int]:
    """Top-k item indices by brute force: score every item, drop padding and `exclude`, sort."""
    with torch.no_grad():
        scores = bundle.model.score_all(torch.tensor([user]), torch.tensor([seq]))[0].tolist()
    ranked = sorted((i for i in range(1, bundle.num_items + 1) if i not in exclude), key=lambda i: -scores[i])
    return ranked[:k]


def _seen(bundle, user: int) -> set[int]:
    _, items = bundle.histories.seen_of(np.array([user]))
    return set(items.tolist())


def test_known_user_is_scored_from_the_stored_history_without_seen_items(bundle):
    for user in (1, 7, 40):
        index = int(bundle.user_index([user])[0])
        got = recommend(bundle, users=[user], k=5)[0]
        expected = _oracle(bundle, index, bundle.histories.last[index].tolist(), 5, _seen(bundle, index))
        assert got.user == user and got.items == bundle.item_map.external[np.array(expected) - 1].tolist()
        assert not set(bundle.item_index(got.items).tolist()) & _seen(bundle, index)
        assert got.scores == sorted(got.scores, reverse=True)


def test_seen_items_come_back_only_when_asked(bundle):
    index = int(bundle.user_index([3])[0])
    got = recommend(bundle, users=[3], k=bundle.num_items, exclude_seen=False)[0]
    assert len(got.items) == bundle.num_items                           # every real item, padding never
    assert sorted(bundle.item_index(got.items).tolist()) == list(range(1, bundle.num_items + 1))
    assert got.items[:5] == recommend(bundle, users=[3], k=5, exclude_seen=False)[0].items
    kept = recommend(bundle, users=[3], k=bundle.num_items)[0]
    assert len(kept.items) == bundle.num_items - len(_seen(bundle, index))  # fewer than k candidates: shorter


def test_unknown_user_with_a_sequence_gets_the_sequence_only_score(bundle):
    seq = [4, 5, 6]
    alone = recommend(bundle, sequences=[seq], k=6)[0]
    stranger = recommend(bundle, users=["nobody"], sequences=[seq], k=6)[0]
    expected = _oracle(bundle, 0, bundle.item_index(seq).tolist(), 6, set(bundle.item_index(seq).tolist()))
    assert alone.user is None and stranger.user == "nobody"
    assert alone.items == stranger.items == bundle.item_map.external[np.array(expected) - 1].tolist()


def test_an_explicit_sequence_replaces_a_known_users_history(bundle):
    index = int(bundle.user_index([2])[0])
    seq_idx = bundle.item_index([10, 11]).tolist()
    got = recommend(bundle, users=[2], sequences=[[10, 11]], k=4)[0]
    expected = _oracle(bundle, index, [0, *seq_idx], 4, _seen(bundle, index) | set(seq_idx))
    assert got.items == bundle.item_map.external[np.array(expected) - 1].tolist()


def test_unknown_items_are_left_out_and_reported_and_a_query_with_nothing_known_is_an_error(bundle):
    got = recommend(bundle, sequences=[[1, 999, "x", 999]], k=5)[0]
    assert got.unknown_items == [999, "x"] and got.items == recommend(bundle, sequences=[[1]], k=5)[0].items
    known_user = recommend(bundle, users=[3], sequences=[["x"]], k=5)[0]        # nothing known given: the history
    assert known_user.unknown_items == ["x"] and known_user.items == recommend(bundle, users=[3], k=5)[0].items
    with pytest.raises(UnknownUserError, match=r"unknown user 'ghost': nothing to recommend from"):
        recommend(bundle, users=[1, "ghost"])
    with pytest.raises(UnknownUserError, match=r"unknown user 'ghost'.*\(unknown: 999\)"):
        recommend(bundle, users=["ghost"], sequences=[[999]])
    with pytest.raises(SeqrecError, match=r"no item the model knows.*\(unknown: 999, 'x'\)"):
        recommend(bundle, sequences=[[999, "x"]])
    with pytest.raises(SeqrecError, match=r"no item the model knows"):
        recommend(bundle, sequences=[[]])
    with pytest.raises(SeqrecError, match=r"k must be between 1 and the number of items \(30\), got 31"):
        recommend(bundle, users=[1], k=31)


def test_a_batch_matches_one_query_at_a_time(bundle):
    users = [*range(1, 41), "new"]
    sequences = [None] * 40 + [[1, 2]]
    sequences[5] = [7, 8, 9, 10]
    batch = recommend(bundle, users=users, sequences=sequences, k=7)
    single = [recommend(bundle, users=[u], sequences=[s], k=7)[0] for u, s in zip(users, sequences, strict=True)]
    assert [r.items for r in batch] == [r.items for r in single]
    np.testing.assert_allclose([r.scores for r in batch], [r.scores for r in single], atol=1e-6)


def test_titles_come_with_the_items_when_the_dataset_has_them():
    b = random_bundle(titled_log())
    got = recommend(b, users=["u9"], k=5)[0]
    assert got.items == [9]                                             # u9 saw the other eight items
    assert got.titles == [f"title {i}" for i in got.items]


def test_cli_recommend_prints_what_the_api_returns(tmp_path_factory):
    folder = saved_random_bundle(tmp_path_factory)
    result = CliRunner().invoke(app, ["recommend", "--bundle", str(folder), "--user", "4", "--user", "5", "-k", "3",
                                      "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    expected = recommend(load_bundle(folder), users=[4, 5], k=3)
    assert [(r["user"], r["items"]) for r in lines] == [("4", expected[0].items), ("5", expected[1].items)]
