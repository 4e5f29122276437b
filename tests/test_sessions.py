"""Sessions: cutting by inactivity gap, the time split, prefix cases, the synthetic generator."""

from __future__ import annotations

import numpy as np
import pytest

from seqrec.data.sessions import session_split, sessionize, synthetic_sessions
from seqrec.errors import DataError
from tests.conftest import make_log


def test_sessionize_cuts_at_gaps_per_user():
    #        user a: t=0, 10, 100 (gap 90 > 50: new session); user b: t=5, 20
    log = make_log(["a", "b", "a", "a", "b"], [1, 2, 3, 4, 5], [0, 5, 10, 100, 20])
    sessions = sessionize(log, gap_seconds=50)
    names = sessions.user_map.to_external(sessions.users).tolist()
    assert names == ["a:0", "a:0", "a:1", "b:0", "b:0"]
    assert sessions.item_map.to_external(sessions.items).tolist() == [1, 3, 4, 2, 5]
    with pytest.raises(DataError, match="gap must be positive"):
        sessionize(log, 0)


def test_session_split_is_by_time_and_each_prefix_is_a_case():
    # sessions s1 (ends t=3), s2 (ends t=13), s3 (ends t=23); s3 is test with test_fraction 1/3.
    log = make_log(["s1"] * 3 + ["s2"] * 3 + ["s3"] * 4, [1, 2, 3, 2, 3, 4, 1, 2, 9, 3],
                   [1, 2, 3, 11, 12, 13, 20, 21, 22, 23])
    split = session_split(log, test_fraction=1 / 3)
    assert len(split.train) == 2
    ext = log.item_map.to_external
    # item 9 never occurs in training: dropped, leaving s3 = 1, 2, 3 -> cases (1 -> 2), (1, 2 -> 3)
    assert ext(split.test.targets).tolist() == [2, 3]
    history = [ext(split.test.history.items[a:b]).tolist()
               for a, b in zip(split.test.history.indptr[:-1], split.test.history.indptr[1:], strict=True)]
    assert history == [[1], [1, 2]]
    np.testing.assert_array_equal(split.test.history.last(3), [[0, 0, 1], [0, 1, 2]])


def test_no_test_session_is_an_error():
    log = make_log(["s1", "s1", "s2"], [1, 2, 7], [1, 2, 3])
    with pytest.raises(DataError, match="0 test sessions"):
        session_split(log, test_fraction=0.5)


def test_synthetic_sessions_follow_planted_patterns():
    log = synthetic_sessions(num_sessions=500, num_items=100, num_patterns=5, noise=0.0, seed=3)
    sessions = sessionize(log, gap_seconds=1800)
    assert sessions.num_users == log.num_users == 500
    same = sessions.users[:-1] == sessions.users[1:]
    transitions = np.unique(np.stack([sessions.items[:-1][same], sessions.items[1:][same]]), axis=1)
    assert transitions.shape[1] <= 5 * 7            # at most pattern_length - 1 transitions per pattern
    again = synthetic_sessions(num_sessions=500, num_items=100, num_patterns=5, noise=0.0, seed=3)
    np.testing.assert_array_equal(log.items, again.items)
