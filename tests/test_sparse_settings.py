"""Settings for short histories: padded windows, tied item embeddings, label smoothing, end to end."""

from __future__ import annotations

import numpy as np
import pytest

from seqrec import api
from seqrec.errors import ConfigError
from seqrec.settings import build_run_config
from tests.conftest import make_log, markov_log, train_markov


def early_transition_log(pairs: int = 100):
    """User P_k: [a, b, c, d, e, f, g, h]; user Q_k: [m, m', a, b]. Q_k's test transition a -> b is the
    first transition of P_k, which no complete window of L = 5 has as its target."""
    k = np.arange(pairs)
    p = 10 * k[:, None] + np.arange(1, 9)                                 # (pairs, 8): a..h
    m, m2 = 10 * pairs + 2 * k + 1, 10 * pairs + 2 * k + 2
    q = np.stack([m, m2, p[:, 0], p[:, 1]], 1)                            # (pairs, 4)
    users = np.r_[np.repeat(k, 8), np.repeat(pairs + k, 4)]
    return make_log(users, np.r_[p.ravel(), q.ravel()])


def markov_hr5(log, windows: str) -> float:
    return train_markov(log, L=5, k=5, windows=windows).metrics["loo-full"]["hr@5"]


def test_padded_windows_teach_the_transitions_at_the_start_of_a_sequence():
    log = early_transition_log()
    assert markov_hr5(log, "padded") >= 0.5        # every Q_k: a -> b was counted
    assert markov_hr5(log, "complete") < 0.05      # a -> b is never a target of a complete window


def short_caser(windows: str) -> dict:
    return {"model": "caser", "seed": 0,
            "model_params": {"embedding_dim": 16, "L": 5, "num_h_filters": 4, "num_v_filters": 2,
                             "use_user": False, "tie_item_embeddings": True},
            "train": {"loss": "softmax", "label_smoothing": 0.1, "windows": windows, "lr": 0.02, "epochs": 10,
                      "batch_size": 32},
            "eval": {"protocols": ["loo-full"]}}


def test_caser_on_short_histories_learns_more_from_padded_windows_and_is_saved(tmp_path):
    log = markov_log(num_users=100, num_items=40, length=8, seed=1)     # 6 training items per user
    padded = api.run(log, build_run_config(short_caser("padded")), tmp_path / "run", progress=False)
    complete = api.train(log, build_run_config(short_caser("complete")), progress=False)
    hr = padded.metrics["loo-full"]["hr@10"]
    assert hr > 0.8 and hr - complete.metrics["loo-full"]["hr@10"] > 0.1      # measured 0.90 against 0.70
    bundle = api.load_bundle(tmp_path / "run")
    history = log.item_map.to_external(log.items[log.users == 1][-5:]).tolist()
    assert len(api.recommend(bundle, sequences=[history], k=5)[0].items) == 5


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "sasrec", "train": {"windows": "padded"}}, "train.windows=padded applies to models trained on windows"),
    ({"model": "caser", "train": {"loss": "bpr", "label_smoothing": 0.1}}, "train.label_smoothing needs train.loss"),
    ({"model": "caser", "train": {"windows": "ragged"}}, "train.windows must be one of complete, padded"),
])
def test_short_history_settings_refuse_what_they_cannot_mean(change, message):
    with pytest.raises(ConfigError, match=message):
        build_run_config(change)
