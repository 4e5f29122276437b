"""Numbers that must not lie and runs that survive: each case a hostile user found, and what seqrec does now."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from seqrec import api, cli, runs
from seqrec.bundle import save_bundle
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import Sequences
from seqrec.data.split import EvalCases, loo_split
from seqrec.errors import ConfigError, DataError, SeqrecError
from seqrec.evaluation.protocols import evaluate, ranks_of, repeat_cases, sampled_candidates
from tests.bundle_fixtures import random_bundle
from tests.conftest import make_log, markov_log, run_config


class TargetFirst(nn.Module):
    """Scores every case's own target highest (a perfect model), whatever the history holds."""

    def __init__(self, targets: np.ndarray, num_items: int) -> None:
        super().__init__()
        self.table = torch.zeros(len(targets), num_items + 1)
        self.table[torch.arange(len(targets)), torch.as_tensor(targets)] = 1.0

    def score_all(self, users, seqs):
        return self.table[users - 1]


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["seqrec", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


def test_a_non_finite_score_never_ranks_above_anything():
    scores = torch.tensor([[0.0, 1.0, float("nan"), 3.0, float("inf")], [0.0, float("nan"), 2.0, 1.0, 0.5]])
    candidates = torch.ones(2, 5, dtype=torch.bool)
    candidates[:, 0] = False
    ranks = ranks_of(scores, candidates, torch.tensor([0, 0, 1]), torch.tensor([3, 2, 1]))
    assert ranks.tolist() == [0.0, 3.0, 3.0]          # 3.0 beats the NaN and the inf; a NaN target ranks last


def test_a_diverged_model_is_an_error_naming_the_epoch_and_writes_nothing(tmp_path, monkeypatch, capsys):
    data = tmp_path / "log.csv"
    log = markov_log(num_users=40, num_items=20, length=10)
    pl.DataFrame({"user": log.users, "item": log.items}).write_csv(data)
    code, err = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--set", "train.lr=1e30",
                        "--epochs", "3", "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 2 and "training diverged in epoch 2: the mean loss is nan" in err
    assert not (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "run" / "bundle").exists()
    with pytest.raises(ConfigError, match="train.lr must be a finite number, got inf"):
        run_config(train={"lr": float("inf")})


def test_nothing_non_finite_is_written(tmp_path):
    result = api.train(markov_log(num_users=20, num_items=15, length=8), run_config(train={"epochs": 1}),
                       progress=False)
    result.metrics["loo-full"]["mrr"] = float("nan")
    with pytest.raises(SeqrecError, match="NaN or infinite; refusing to write it"):
        runs.write_run(result, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def repeat_log():
    """Music-style listening with repeats: each user plays 3 songs of 50 over and over, 20 plays."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(1, 31), 20)
    favourites = rng.choice(np.arange(1, 51), size=(30, 3))
    items = favourites[users - 1, rng.integers(0, 3, len(users))]
    items[::20] = rng.integers(1, 51, 30)                   # so that every item occurs
    return make_log(users, items)


def test_a_repeated_target_is_still_ranked_so_a_perfect_model_scores_one():
    log = repeat_log()
    split = loo_split(log)
    assert repeat_cases(split.test) > 20                    # most test items repeat an earlier play
    perfect = TargetFirst(split.test.targets, log.num_items)
    negatives = sampled_candidates(log, split, ("loo-sampled",), 10, 0)["test"]
    for protocol, key in (("loo-full", "mrr"), ("loo-sampled", "mrr/sampled10")):
        metrics = evaluate(perfect, split.test, protocol, 3, log.num_users, log.num_items, negatives=negatives)
        assert metrics[key] == 1.0
    # with repeats allowed the history is ranked too, and the target still comes first
    assert evaluate(perfect, split.test, "loo-full", 3, log.num_users, log.num_items, allow_repeats=True)["mrr"] == 1


def test_repeat_cases_are_counted_and_repeats_do_not_block_negative_sampling():
    log = repeat_log()
    result = api.train(log, run_config(train={"epochs": 1}), progress=False)
    assert result.dataset["repeat_cases"]["test"] == repeat_cases(loo_split(log).test) > 0
    seqs = Sequences(np.array([1]), np.array([0, 60]), np.tile(np.array([1, 2, 3]), 20))   # 60 plays, 3 songs
    drawn = NegativeSampler(seqs, 50).sample(np.array([1]), 40, np.random.default_rng(0))
    assert not np.isin(drawn, [1, 2, 3]).any()
    no_repeat = EvalCases(seqs, np.array([4]), seqs)
    assert repeat_cases(no_repeat) == 0


@pytest.mark.parametrize(("settings", "message"), [
    ({"train": {"batch_size": 1.5}}, "train.batch_size must be an integer, got 1.5"),
    ({"train": {"epochs": True}}, "train.epochs must be an integer, got True"),
    ({"seed": 1e20}, "seed must be an integer in 0 .. 2^63 - 1, got 1e+20"),
    ({"seed": 2**70}, "seed must be an integer in 0 .. 2^63 - 1"),
    ({"train": {"device": "cuda"}}, "no CUDA device" if not torch.cuda.is_available() else "cuda"),
    ({"train": {"device": "tpu"}}, "train.device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    ({"data": {"min_rating": float("nan")}}, "data.min_rating must be a finite number or unset, got nan"),
    ({"eval": {"protocols": ["caser-paper"]}, "train": {"early_stopping_metric": "ndcg@10"}},
     "'ndcg@10' is not a metric of protocol caser-paper"),
])
def test_nonsense_settings_are_one_line_errors_before_any_data_is_read(settings, message):
    if settings.get("train", {}).get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_config(**settings)


def test_the_paper_preset_stops_on_map_under_the_papers_protocol():
    assert api.resolve_run_config("paper").train.early_stopping_metric == "ndcg@10"
    paper = api.resolve_run_config("paper", overrides={"eval.protocols": ["caser-paper"], "train.epochs": 1,
                                                       "model_params.embedding_dim": 8})
    assert paper.train.early_stopping_metric == "map"
    result = api.train(markov_log(num_users=30, num_items=20, length=12), paper, progress=False)
    assert "valid/caser-paper/map" in result.history[0] and result.best_epoch == 1


def test_targets_beyond_every_history_and_memory_beyond_the_machine_are_caught_before_training():
    log = markov_log(num_users=20, num_items=15, length=8)
    with pytest.raises(DataError, match=r"no training examples: with train.T=50 .* \(the longest has 6 items\)"):
        api.train(log, run_config(train={"T": 50}), progress=False)
    with pytest.raises(ConfigError, match=r"this run needs about .* GB \(training windows .* lower model_params.L"):
        api.train(log, run_config(model_params={"L": 10**9}), progress=False)


def test_d2l_with_other_cut_offs_reports_what_it_has(tmp_path, monkeypatch, capsys):
    data = tmp_path / "log.csv"
    log = markov_log(num_users=30, num_items=20, length=8)
    pl.DataFrame({"user": log.users, "item": log.items}).write_csv(data)
    code, err = run_cli(monkeypatch, capsys, "train", "--preset", "d2l", "--data", str(data), "--epochs", "1",
                        "--set", "eval.ks=[10]", "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 0, err
    assert set(json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]["d2l"]) >= {"hit@10", "auc"}


@pytest.mark.parametrize(("args", "message"), [
    (["sweep", "--param", "L", "--values", "5..1"], "--values range '5..1' is empty"),
    (["train", "--out", "FILE"], "is a file; a run writes a folder"),
    (["train", "--out", "FOREIGN"], "holds events.sqlite, which a run folder does not"),
    (["export", "--bundle", "BUNDLE", "--out", "DIR"], "is a folder; give the file to write"),
    (["train", "--threads", "0"], "--threads must be at least 1"),
])
def test_bad_commands_fail_in_one_line_before_any_training(tmp_path, monkeypatch, capsys, args, message):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "FOREIGN").mkdir()
    (tmp_path / "FOREIGN" / "events.sqlite").write_text("")
    (tmp_path / "DIR").mkdir()
    monkeypatch.chdir(tmp_path)
    save_bundle(random_bundle(), tmp_path / "BUNDLE")
    monkeypatch.setattr(api, "load_dataset", lambda cfg: pytest.fail("read the data"))
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_run_folder_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    log = markov_log(num_users=20, num_items=15, length=8)
    first = api.run(log, run_config(seed=0, train={"epochs": 1}), tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "metrics.json").read_text()
    bundle_before = (tmp_path / "run" / "bundle" / "weights.safetensors").read_bytes()

    def crash(bundle, folder):
        folder.mkdir()
        raise OSError("disk full")

    monkeypatch.setattr(runs.bundles, "write_bundle_files", crash)
    with pytest.raises(OSError, match="disk full"):
        api.run(log, run_config(seed=1, train={"epochs": 1}), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "metrics.json").read_text() == before
    assert (tmp_path / "run" / "bundle" / "weights.safetensors").read_bytes() == bundle_before
    assert json.loads(before)["seed"] == first.config.seed == 0
    # the old run is whole; the failed one left its last checkpoint, to resume from
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["bundle", "checkpoint", "metrics.json"]
    (tmp_path / "run" / ".checkpoint.tmp-x1y2").mkdir()             # a kill during a checkpoint write
    runs.check_run_folder(tmp_path / "run")


def test_validation_candidates_of_loo_sampled_do_not_depend_on_the_test_items():
    log = markov_log(num_users=40, num_items=30, length=10)
    last = np.r_[log.users[1:] != log.users[:-1], True]              # each user's last (test) event
    poisoned = make_log(log.users, np.where(last, (log.items % 30) + 1, log.items), log.times)
    first, second = (sampled_candidates(lg, loo_split(lg), ("loo-sampled",), 10, 0) for lg in (log, poisoned))
    assert np.array_equal(first["valid"], second["valid"]) and not np.array_equal(first["test"], second["test"])
