"""The MovieLens-100K reader, the book's split and its windows, checked on the real files."""

from __future__ import annotations

import numpy as np
import pytest

from seqrec.data.movielens import load_ml100k
from seqrec.data.sequences import make_windows
from seqrec.data.split import d2l_split


@pytest.fixture(scope="module")
def ml100k(ml100k_dir):
    return load_ml100k(ml100k_dir)


@pytest.fixture(scope="module")
def split(ml100k):
    return d2l_split(ml100k)


def test_reader_counts_and_titles(ml100k):
    assert (len(ml100k), ml100k.num_users, ml100k.num_items) == (100_000, 943, 1682)
    assert ml100k.item_titles[1] == "Toy Story (1995)"
    assert ml100k.user_map.to_external(ml100k.users[:3]).tolist() == [196, 186, 22]   # file order kept


def test_d2l_split_sizes(split):
    assert split.train.indptr[-1] == 99_057
    assert len(split.test) == 943
    assert split.train.lengths.min() == 19


def test_d2l_test_item_is_latest_and_first_in_file_order_on_ties(ml100k, split):
    users, items, times = ml100k.users, ml100k.items, ml100k.times
    for user in (1, 13, 450, 943):                              # spot checks against a direct reading
        rows = np.flatnonzero(users == user)
        latest = rows[times[rows] == times[rows].max()]
        assert split.test.targets[user - 1] == items[latest[0]]
        train = rows[rows != latest[0]]
        expected = items[train[np.argsort(times[train], kind="stable")]]
        start, stop = split.train.indptr[user - 1], split.train.indptr[user]
        np.testing.assert_array_equal(split.train.items[start:stop], expected)


def test_415_users_have_ties_at_their_latest_time(ml100k):
    order = np.lexsort((-ml100k.times, ml100k.users))
    u, t = ml100k.users[order], ml100k.times[order]
    first = np.r_[True, u[1:] != u[:-1]]
    latest_time = np.repeat(t[first], np.diff(np.r_[np.flatnonzero(first), len(u)]))
    ties = np.bincount(u[t == latest_time]) > 1
    assert ties.sum() == 415


def test_windows_for_l5(split):
    windows = make_windows(split.train, L=5, T=1)
    assert len(windows) == 94_342
    assert windows.inputs.min() >= 1                            # no user is shorter than L + 1
    first = split.train.items[:6]
    np.testing.assert_array_equal(windows.inputs[0], first[:5])
    assert windows.targets[0, 0] == first[5]


def test_113_test_items_fall_outside_the_book_candidates(split):
    assert int((split.test.targets > 943).sum()) == 113
