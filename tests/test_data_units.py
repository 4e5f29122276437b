"""Windows, splits and negative sampling on hand-made logs."""

from __future__ import annotations

import numpy as np

from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import Sequences, make_windows
from seqrec.data.split import d2l_split
from tests.conftest import make_log


def seqs(*lists):
    lengths = [len(x) for x in lists]
    return Sequences(np.arange(1, len(lists) + 1), np.r_[0, np.cumsum(lengths)], np.concatenate(lists).astype(int))


def test_windows_slide_with_stride_one():
    w = make_windows(seqs([1, 2, 3, 4, 5]), L=2, T=1)
    np.testing.assert_array_equal(w.inputs, [[1, 2], [2, 3], [3, 4]])
    np.testing.assert_array_equal(w.targets, [[3], [4], [5]])


def test_short_history_gives_one_left_padded_window_and_too_short_gives_none():
    w = make_windows(seqs([7, 8, 9], [4], [5, 6, 7, 8, 9, 10]), L=4, T=1)
    np.testing.assert_array_equal(w.users, [1, 3, 3])
    np.testing.assert_array_equal(w.inputs, [[0, 0, 7, 8], [5, 6, 7, 8], [6, 7, 8, 9]])
    np.testing.assert_array_equal(w.targets, [[9], [9], [10]])


def test_windows_with_several_targets():
    w = make_windows(seqs([1, 2, 3, 4, 5]), L=2, T=2)
    np.testing.assert_array_equal(w.inputs, [[1, 2], [2, 3]])
    np.testing.assert_array_equal(w.targets, [[3, 4], [4, 5]])


def test_last_items_left_padded():
    np.testing.assert_array_equal(seqs([1, 2, 3], [4]).last(2), [[2, 3], [0, 4]])


def test_d2l_split_takes_latest_row_first_in_file_order():
    #            user a: times 5, 9, 9, 1 -> test is the first row at time 9 (item 20)
    log = make_log(["a", "a", "a", "a", "b", "b"], [10, 20, 30, 40, 50, 60], [5, 9, 9, 1, 3, 3])
    split = d2l_split(log)
    assert log.item_map.to_external(split.test.targets).tolist() == [20, 50]
    train_a = split.train.items[split.train.indptr[0]: split.train.indptr[1]]
    assert log.item_map.to_external(train_a).tolist() == [40, 10, 30]       # by time, ties in file order
    assert log.item_map.to_external(split.train.items[3:]).tolist() == [60]


def test_negatives_exclude_seen_items_and_are_seeded():
    seen = seqs([1, 2, 3], [4])
    sampler = NegativeSampler(seen, num_items=5)
    users = np.array([1] * 2000 + [2] * 2000)
    a = sampler.sample(users, 2, np.random.default_rng(3))
    assert a.shape == (4000, 2)
    assert not np.isin(a[:2000], [1, 2, 3]).any() and not (a[2000:] == 4).any()
    assert set(np.unique(a[:2000])) == {4, 5}
    counts = np.bincount(a[2000:].ravel(), minlength=6)[1:]
    np.testing.assert_allclose(counts[[0, 1, 2, 4]] / 4000, 0.25, atol=0.03)   # uniform over the rest
    np.testing.assert_array_equal(a, sampler.sample(users, 2, np.random.default_rng(3)))


def test_padded_windows_make_every_item_after_the_first_a_target_once():
    w = make_windows(seqs([7, 8, 9], [4], [5, 6, 7, 8, 9, 10]), L=4, T=1, padded=True)
    np.testing.assert_array_equal(w.users, [1, 1, 3, 3, 3, 3, 3])
    np.testing.assert_array_equal(w.targets[:, 0], [8, 9, 6, 7, 8, 9, 10])
    np.testing.assert_array_equal(w.inputs[:3], [[0, 0, 0, 7], [0, 0, 7, 8], [0, 0, 0, 5]])
    complete = make_windows(seqs([5, 6, 7, 8, 9, 10]), L=4, T=1)
    np.testing.assert_array_equal(w.inputs[-2:], complete.inputs)          # the complete windows come last


def test_padded_windows_with_several_targets_start_after_one_input():
    w = make_windows(seqs([1, 2, 3, 4]), L=2, T=2, padded=True)
    np.testing.assert_array_equal(w.inputs, [[0, 1], [1, 2]])
    np.testing.assert_array_equal(w.targets, [[2, 3], [3, 4]])
