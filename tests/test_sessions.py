"""Sessions: cutting by inactivity gap, the time split, prefix cases, the synthetic generator."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from seqrec import api
from seqrec.data.sessions import session_split, sessionize, synthetic_sessions
from seqrec.errors import DataError
from seqrec.settings import build_run_config
from tests.conftest import make_log, train_markov


def test_sessionize_cuts_at_gaps_per_user():
    #        user a: t=0, 10, 100 (gap 90 > 50: new session); user b: t=5, 20
    log = make_log(["a", "b", "a", "a", "b"], [1, 2, 3, 4, 5], [0, 5, 10, 100, 20])
    sessions = sessionize(log, gap_seconds=50)
    names = sessions.user_map.to_external(sessions.users).tolist()
    assert names == ["a:0", "a:0", "a:1", "b:0", "b:0"]
    assert sessions.item_map.to_external(sessions.items).tolist() == [1, 3, 4, 2, 5]
    with pytest.raises(DataError, match="gap must be positive"):
        sessionize(log, 0)


def _histories(cases, ext) -> list[list[int]]:
    h = cases.history
    return [ext(h.items[a:b]).tolist() for a, b in zip(h.indptr[:-1], h.indptr[1:], strict=True)]


def test_session_split_is_by_time_and_each_prefix_is_a_case():
    # sessions s1 (ends t=3) train, s2 (ends t=13) validation, s3 (ends t=24) test, with fractions 1/3 each.
    log = make_log(["s1"] * 3 + ["s2"] * 3 + ["s3"] * 5, [1, 2, 3, 2, 3, 4, 1, 2, 9, 4, 3],
                   [1, 2, 3, 11, 12, 13, 20, 21, 22, 23, 24])
    split = session_split(log, test_fraction=1 / 3, valid_fraction=1 / 3)
    ext = log.item_map.to_external
    assert len(split.train) == 1 and ext(split.train.items).tolist() == [1, 2, 3]
    # item 4 never occurs in training: dropped from validation, leaving s2 = 2, 3 -> one case (2 -> 3)
    assert ext(split.valid.targets).tolist() == [3] and _histories(split.valid, ext) == [[2]]
    # item 9 occurs before no test event: dropped; item 4 occurs in validation: kept -> s3 = 1, 2, 4, 3
    assert ext(split.test.targets).tolist() == [2, 4, 3]
    assert _histories(split.test, ext) == [[1], [1, 2], [1, 2, 4]]
    np.testing.assert_array_equal(split.test.history.last(3), [[0, 0, 1], [0, 1, 2], [1, 2, 4]])
    # a refit learns from the training and validation sessions, never from test prefixes
    assert ext(split.refit_sequences.items).tolist() == [1, 2, 3, 2, 3, 4]


def test_session_split_without_validation_trains_on_every_earlier_session():
    log = make_log(["s1"] * 3 + ["s2"] * 3 + ["s3"] * 4, [1, 2, 3, 2, 3, 4, 1, 2, 9, 3],
                   [1, 2, 3, 11, 12, 13, 20, 21, 22, 23])
    split = session_split(log, test_fraction=1 / 3, valid_fraction=0)
    assert split.valid is None and len(split.train) == 2 and len(split.refit_sequences) == 2
    assert log.item_map.to_external(split.test.targets).tolist() == [2, 3]


def test_no_test_or_validation_session_is_an_error():
    log = make_log(["s1", "s1", "s2"], [1, 2, 7], [1, 2, 3])
    with pytest.raises(DataError, match="0 test sessions"):
        session_split(log, test_fraction=0.5, valid_fraction=0)
    log = make_log(["s1", "s1", "s2", "s2", "s3", "s3"], [1, 2, 7, 8, 1, 2], [1, 2, 3, 4, 5, 6])
    with pytest.raises(DataError, match="1 training, 0 validation and 1 test sessions"):
        session_split(log, test_fraction=1 / 3, valid_fraction=1 / 3)
    with pytest.raises(DataError, match="fractions"):
        session_split(log, test_fraction=0.5, valid_fraction=0.5)


def handoff_sessions(n: int = 20):
    """Per k, in time order: 7 training sessions ([x, u], [y, v], 5 x [u, v]), then (the last 30%) one
    validation session [x, y, x, y] and two test sessions [x, y]. x -> y is seen only in validation."""
    x, y, u, v = (np.arange(n) * 4 + offset for offset in (1, 2, 3, 4))
    train = [[x, u], [y, v]] + [[u, v]] * 5
    sessions = [np.stack(s, 1) for s in train] + [np.stack([x, y, x, y], 1)] + [np.stack([x, y], 1)] * 2
    names, items = [], []
    for number, block in enumerate(sessions):                  # block: (n, length), one row per k
        names += [f"{number}-{k}" for k in range(n) for _ in range(block.shape[1])]
        items += block.ravel().tolist()
    return make_log(names, items, np.arange(len(items)))


def test_session_protocol_selects_on_validation_and_refits_on_validation_sessions():
    plain, refit = (train_markov(handoff_sessions(), L=1, k=1, protocol="session", refit=r) for r in (False, True))
    assert plain.metrics["session"]["hr@1"] == 0.0          # from x, training only knows x -> u
    assert refit.metrics["session"]["hr@1"] == 1.0          # the validation sessions' x -> y, twice
    assert plain.dataset["cases"] == {"test": 40, "valid": 60}
    raw = {"model": "caser", "model_params": {"L": 2, "embedding_dim": 8, "use_user": False},
           "train": {"loss": "softmax", "epochs": 3, "early_stopping_metric": "auto", "patience": 5},
           "eval": {"protocols": ["session"]}}
    caser = api.train(handoff_sessions(), build_run_config(raw), progress=False)
    assert caser.best_epoch is not None and "mrr@10" in caser.validation["session"]


def test_synthetic_sessions_follow_planted_patterns():
    log = synthetic_sessions(num_sessions=500, num_items=100, num_patterns=5, noise=0.0, seed=3)
    sessions = sessionize(log, gap_seconds=1800)
    assert sessions.num_users == log.num_users == 500
    same = sessions.users[:-1] == sessions.users[1:]
    transitions = np.unique(np.stack([sessions.items[:-1][same], sessions.items[1:][same]]), axis=1)
    assert transitions.shape[1] <= 5 * 7            # at most pattern_length - 1 transitions per pattern
    again = synthetic_sessions(num_sessions=500, num_items=100, num_patterns=5, noise=0.0, seed=3)
    np.testing.assert_array_equal(log.items, again.items)


def test_sessions_command_early_stops_caser_on_the_validation_sessions(tmp_path):
    done = subprocess.run([sys.executable, "-m", "seqrec", "sessions", "--data", "synthetic-sessions", "--models",
                           "caser:caser-session,markov", "--seeds", "0", "--epochs", "3",
                           "--no-progress", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run = json.loads((tmp_path / "runs" / "caser-caser-session" / "seed-0" / "metrics.json").read_text())
    assert run["best_epoch"] in (1, 2, 3) and run["dataset"]["cases"]["valid"] > 0
    assert [e["epoch"] for e in run["history"]] == [1, 2, 3] and "valid/session/mrr@10" in run["history"][0]
    assert "| caser:caser-session |" in (tmp_path / "sessions.md").read_text()
