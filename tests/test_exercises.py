"""The exercises: ablation switches, sweeps, the session protocol on hand-made data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqrec import experiments
from seqrec.data.sequences import Sequences
from seqrec.data.sessions import prefix_cases
from seqrec.errors import ConfigError
from seqrec.evaluation.protocols import evaluate
from seqrec.exercises import (
    ABLATIONS,
    ablation_configs,
    component_importance,
    importance_sentence,
    parse_duration,
    parse_values,
    plot_sweep,
    sweep_configs,
)
from seqrec.experiments import GridTable, RunRecord
from seqrec.models.base import count_parameters
from seqrec.models.registry import build_model
from seqrec.settings import resolve_run_config
from tests.conftest import markov_log, run_config


def test_ablation_configs_remove_exactly_their_component():
    configs = ablation_configs(resolve_run_config("d2l"))
    assert list(configs) == list(ABLATIONS)
    models = {label: build_model("caser", cfg.model_params, 943, 1682) for label, cfg in configs.items()}
    counts = {label: count_parameters(m) for label, m in models.items()}
    full, h_only, v_only, user_only, seq_only = (counts[label] for label in ABLATIONS)
    assert full == 65_286
    assert full - h_only == 4 * 5 + 4 + 4 * 10 * 10     # vertical filters (L x 1 each, + bias) and their fc weights
    assert full - v_only == 16 * 10 * 15 + 16 * 5 + 16 * 5 * 10
    assert full - seq_only == 943 * 10 + 1682 * 10       # user embeddings and their half of the output embeddings
    assert user_only == 943 * 10 + 1682 * 10 + 1682      # p_u, output embeddings of size k, item bias
    torch.manual_seed(0)
    seqs, users = torch.randint(1, 1683, (4, 5)), torch.tensor([1, 2, 3, 4])
    user_only_model = models["user only (no convolution)"].eval()
    torch.testing.assert_close(user_only_model.score_all(users, seqs), user_only_model.score_all(users, seqs.flip(1)))
    seq_only_model = models["sequence only (no user)"].eval()
    torch.testing.assert_close(seq_only_model.score_all(users, seqs), seq_only_model.score_all(users * 0, seqs))
    with pytest.raises(ConfigError, match="parts of Caser"):
        ablation_configs(run_config("sasrec"))


def table_of(means: dict[str, float], protocol="d2l-fixed") -> GridTable:
    table = GridTable(protocol, 100)
    for label, value in means.items():
        for seed, noise in enumerate((-0.01, 0.01)):
            metrics = {protocol: {"hit@50": value + noise, "auc": value / 2}}
            table.records.append(RunRecord(label, seed, metrics, 1.0, 10))
    return table


def test_component_importance_is_the_drop_when_a_part_is_removed():
    labels = list(ABLATIONS)
    table = table_of(dict(zip(labels, [0.40, 0.38, 0.30, 0.20, 0.35], strict=True)))
    cost = component_importance(table)["hit@50"]
    assert cost == pytest.approx({"horizontal": 0.10, "vertical": 0.02, "user": 0.05, "convolutions": 0.20})
    assert "the horizontal convolution matters more" in importance_sentence(table)


def test_values_and_durations():
    assert parse_values("1..4") == [1, 2, 3, 4]
    assert parse_values("0.1, 0.2,true") == [0.1, 0.2, True]
    assert parse_duration("30m") == 1800 and parse_duration("90") == 90 and parse_duration("2h") == 7200
    with pytest.raises(ConfigError):
        parse_duration("soon")


def test_sweep_configs_set_the_named_setting():
    base = resolve_run_config("d2l")
    configs = sweep_configs(base, "L", [1, 3])
    assert {label: cfg.model_params.L for label, cfg in configs.items()} == {"L=1": 1, "L=3": 3}
    assert sweep_configs(base, "lr", [0.5])["lr=0.5"].train.lr == 0.5
    with pytest.raises(ConfigError, match="not a setting"):
        sweep_configs(base, "nope", [1])
    with pytest.raises(ConfigError, match="L must be >= 1"):
        sweep_configs(base, "L", [0])


def test_sweep_grid_summarises_each_value_over_seeds(tmp_path):
    log = markov_log(num_users=60, num_items=40, length=12, seed=2)
    base = resolve_run_config("d2l", overrides={"train.epochs": 2, "train.batch_size": 128,
                                                "eval.protocols": ["d2l-fixed"]})
    configs = sweep_configs(base, "L", [1, 2])
    table = experiments.run_grid(configs, (0, 1), log, tmp_path, progress=False)
    summary = table.summary()
    for label in ("L=1", "L=2"):
        runs = [r.metrics["d2l-fixed"]["hit@50"] for r in table.records if r.label == label]
        assert summary[label]["metrics"]["d2l-fixed"]["hit@50"]["mean"] == pytest.approx(np.mean(runs))
        assert summary[label]["metrics"]["d2l-fixed"]["hit@50"]["std"] == pytest.approx(np.std(runs, ddof=1))
    png = plot_sweep(table, "L", [1, 2], tmp_path / "sweep.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


class TableModel(torch.nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = table

    def score_all(self, users, seqs):
        return self.table[seqs[:, -1]]                  # scores depend on the last item of the prefix only


def test_session_protocol_ranks_each_prefix_by_hand():
    # one test session 1 -> 2 -> 3 (4 items in the catalogue); the model's next-item scores by last item:
    table = torch.tensor([[0.0] * 5,
                          [0, 0.0, 0.9, 0.5, 0.1],     # after 1: 2 ranks first (3 and 4 follow)
                          [0, 0.8, 0.0, 0.1, 0.9]])    # after 2: 1 is excluded (seen), 4 beats 3 -> rank 1
    cases = prefix_cases(Sequences(np.array([7]), np.array([0, 3]), np.array([1, 2, 3])))
    np.testing.assert_array_equal(cases.targets, [2, 3])
    got = evaluate(TableModel(table), cases, "session", L=2, num_users=7, num_items=4, ks=(1, 2))
    assert got["hr@1"] == pytest.approx(0.5) and got["hr@2"] == pytest.approx(1.0)
    assert got["mrr@1"] == pytest.approx((1 + 0) / 2) and got["mrr@2"] == pytest.approx((1 + 1 / 2) / 2)
    assert got["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_importance_says_when_the_difference_is_within_the_spread():
    labels = list(ABLATIONS)
    table = table_of(dict(zip(labels, [0.40, 0.39, 0.385, 0.20, 0.35], strict=True)))
    assert "by less than the seed-to-seed spread" in importance_sentence(table)
