"""`seqrec compare` and the grid runner on a tiny synthetic log."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys

import numpy as np
import polars as pl
import pytest

from seqrec import api, cli, pipeline
from seqrec.errors import ConfigError
from seqrec.experiments import (
    GridTable,
    finished_record,
    interrupted_state,
    parse_model_specs,
    parse_seeds,
    run_folder,
    run_grid,
)
from seqrec.models.registry import PRESETS, model_config
from seqrec.training import save_checkpoint
from tests.conftest import markov_log


def write_log(tmp_path):
    log = markov_log(num_users=40, num_items=25, length=10)
    path = tmp_path / "events.csv"
    pl.DataFrame({"u": log.users, "i": log.items, "t": log.times}).write_csv(path)
    return path


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["seqrec", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr()


def test_compare_writes_json_markdown_and_chart(tmp_path, monkeypatch, capsys):
    data, out = write_log(tmp_path), tmp_path / "cmp"
    code, _ = run_cli(monkeypatch, capsys, "compare", "--models", "caser:d2l,caser", "--data", str(data),
                      "--user-col", "u", "--item-col", "i", "--time-col", "t", "--protocol", "loo-full",
                      "--seeds", "0,1", "--epochs", "1", "--set", "train.device='cpu'", "--out", str(out))
    assert code == 0
    report = json.loads((out / "compare.json").read_text())
    assert report["protocol"] == "loo-full" and report["headline"] == ["hr@10", "ndcg@10"]
    assert list(report["summary"]) == ["caser:d2l", "caser"]
    assert [(r["label"], r["seed"]) for r in report["runs"]] == [("caser:d2l", 0), ("caser:d2l", 1), ("caser", 0),
                                                                  ("caser", 1)]
    for label, summary in report["summary"].items():
        runs = [r for r in report["runs"] if r["label"] == label]
        values = [r["metrics"]["loo-full"]["ndcg@10"] for r in runs]
        stat = summary["metrics"]["loo-full"]["ndcg@10"]
        assert stat["mean"] == pytest.approx(np.mean(values)) and stat["std"] == pytest.approx(np.std(values, ddof=1))
        assert summary["num_parameters"] > 0 and summary["seeds"] == [0, 1]
    markdown = (out / "compare.md").read_text()
    assert "| model | hr@10 | ndcg@10 |" in markdown and markdown.count("\n| caser") == 2
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reuse_reads_finished_runs_of_the_same_settings_and_trains_the_others(tmp_path, monkeypatch, capsys):
    data, out = write_log(tmp_path), tmp_path / "cmp"
    args = ["compare", "--data", str(data), "--user-col", "u", "--item-col", "i", "--time-col", "t",
            "--models", "caser:d2l,markov", "--out", str(out), "--reuse"]

    def trained(*more):
        code, printed = run_cli(monkeypatch, capsys, *args, *more)
        assert code == 0
        return [line.rsplit(":", 1)[0]
                for line in printed.out.splitlines() if " seed " in line and line.endswith(" s")]

    assert trained("--seeds", "0", "--epochs", "1") == ["caser:d2l seed 0", "markov seed 0"]
    first = json.loads((out / "compare.json").read_text())["runs"]
    assert trained("--seeds", "0,1", "--epochs", "1") == ["caser:d2l seed 1", "markov seed 1"]
    again = json.loads((out / "compare.json").read_text())["runs"]
    assert [r for r in again if r["seed"] == 0] == first                  # read back, not retrained
    assert trained("--seeds", "0", "--epochs", "2") == ["caser:d2l seed 0", "markov seed 0"]   # new settings


def test_reuse_reads_a_run_from_the_kept_table_when_its_folder_is_gone(tmp_path, monkeypatch, capsys):
    data, out = write_log(tmp_path), tmp_path / "cmp"
    args = ["compare", "--data", str(data), "--user-col", "u", "--item-col", "i", "--time-col", "t",
            "--models", "markov", "--seeds", "0,1", "--out", str(out), "--reuse"]

    def trained(*more):
        code, printed = run_cli(monkeypatch, capsys, *args, *more)
        assert code == 0
        return [line.rsplit(":", 1)[0] for line in printed.out.splitlines() if line.startswith("markov seed ")]

    assert trained() == ["markov seed 0", "markov seed 1"]
    first = json.loads((out / "compare.json").read_text())
    shutil.rmtree(out / "runs")                                      # a fresh checkout keeps only the table
    assert trained() == []
    assert json.loads((out / "compare.json").read_text()) == first
    first["runs"][1]["config"]["model_params"]["L"] = 3              # a record of other settings is not this run's
    (out / "compare.json").write_text(json.dumps(first))
    assert trained() == ["markov seed 1"]
    assert trained("--set", "model_params.L=2") == ["markov seed 0", "markov seed 1"]


def test_reuse_continues_an_interrupted_run_from_its_checkpoint_with_the_uninterrupted_numbers(tmp_path, monkeypatch):
    log = markov_log(num_users=40, num_items=25, length=10)
    configs = parse_model_specs("caser:d2l", {"eval.protocols": ["loo-full"], "train.epochs": 4, "train.device": "cpu"})
    whole = run_grid(configs, [0], log, tmp_path / "whole").records[0]
    saved_epochs = []

    def save_then_stop_after_epoch_2(state, path):
        save_checkpoint(state, path)
        saved_epochs.append(state.epoch)
        if state.epoch == 2 and len(saved_epochs) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "save_checkpoint", save_then_stop_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_grid(configs, [0], log, tmp_path / "cut", reuse=True)
    another_seed = dataclasses.replace(configs["caser:d2l"], seed=5)
    assert interrupted_state(run_folder(tmp_path / "cut", "caser:d2l", 0), another_seed) is None
    resumed = run_grid(configs, [0], log, tmp_path / "cut", reuse=True).records[0]
    assert saved_epochs == [1, 2, 3, 4]                              # epochs 1-2 were not trained again
    assert resumed.metrics == whole.metrics and resumed.best_epoch == whole.best_epoch


def test_a_finished_run_from_before_a_setting_existed_is_read_with_that_settings_default(tmp_path):
    cfg = parse_model_specs("markov", {"eval.protocols": ["loo-full"]})["markov"]
    saved = cfg.to_dict()
    del saved["train"]["windows"]                                   # written before train.windows existed
    metrics = {"config": saved, "metrics": {"loo-full": {"hr@10": 0.5}}, "timings": {"train_seconds": 1.0},
               "model": {"num_parameters": 0}, "best_epoch": None}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert finished_record(tmp_path, cfg, "markov").metrics == {"loo-full": {"hr@10": 0.5}}
    assert finished_record(tmp_path, dataclasses.replace(cfg, seed=1), "markov") is None
    saved["train"]["gone"] = 1                                      # a setting that no longer exists
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert finished_record(tmp_path, cfg, "markov") is None


def test_data_names_a_known_dataset_unless_a_file_of_that_name_exists(tmp_path, monkeypatch):
    assert api.data_source("ml-100k") == {"data.dataset": "ml-100k"}
    assert api.data_source("events.csv") == {"data.path": "events.csv"}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ml-100k").write_text("user,item\n")
    assert api.data_source("ml-100k") == {"data.path": "ml-100k"}


def test_model_specs_and_seeds():
    configs = parse_model_specs("caser:d2l, caser", {"eval.protocols": ["loo-sampled"]})
    assert list(configs) == ["caser:d2l", "caser"]
    assert configs["caser:d2l"].model_params == model_config("caser", PRESETS["d2l"]["model_params"])
    assert all(c.eval.protocols == ("loo-sampled",) for c in configs.values())
    assert parse_seeds("0, 1,2") == (0, 1, 2)
    for bad in ("0,x", "1,1", ""):
        with pytest.raises(ConfigError):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match="unknown model 'nosuch'"):
        parse_model_specs("nosuch")
    with pytest.raises(ConfigError, match="unknown preset 'nosuch'"):
        parse_model_specs("caser:nosuch")
    with pytest.raises(ConfigError, match="twice"):
        parse_model_specs("caser,caser")


def test_model_specs_from_toml_files(tmp_path):
    small = tmp_path / "small.toml"
    small.write_text('model = "caser"\n[model_params]\nembedding_dim = 8\n[train]\nepochs = 2\n')
    configs = parse_model_specs(f"{small},caser", {"train.epochs": 1})
    assert list(configs) == ["small", "caser"]
    assert configs["small"].model_params == model_config("caser", {"embedding_dim": 8})
    assert configs["small"].train.epochs == 1
    other = tmp_path / "other.toml"
    other.write_text('[eval]\nprotocols = ["caser-paper"]\n')
    with pytest.raises(ConfigError, match="same data and \\[eval\\] settings"):
        parse_model_specs(f"caser,{other}")


@pytest.mark.parametrize(("args", "message"), [
    (["--protocol", "loo"], "unknown protocol 'loo'"),
    (["--model", "nosuch"], "unknown model 'nosuch'"),
    (["--time-col", "when"], "missing column(s) 'when'; columns found: u, i, t"),
    (["--k-core", "50"], "no events left after filter k_core=50"),
])
def test_train_bad_input_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys, args, message):
    data = write_log(tmp_path)
    code, captured = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--user-col", "u", "--item-col", "i",
                             *args, "--epochs", "1", "--out", str(tmp_path / "out"))
    assert code == 2 and message in captured.err and captured.err.count("\n") == 1


def test_train_from_a_file_writes_the_metrics_contract(tmp_path, monkeypatch, capsys):
    data, out = write_log(tmp_path), tmp_path / "run"
    code, _ = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--format", "csv", "--user-col", "u",
                      "--item-col", "i", "--time-col", "t", "--model", "caser", "--protocol", "loo-full",
                      "--seed", "3", "--epochs", "2", "--early-stopping-metric", "ndcg@10", "--patience", "1",
                      "--set", "train.device='cpu'", "--out", str(out))
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"hr@10", "ndcg@10", "mrr", "auc"} <= set(metrics["metrics"]["loo-full"]) and metrics["seed"] == 3
    assert metrics["best_epoch"] in (1, 2) and "valid/loo-full/ndcg@10" in metrics["history"][0]
    assert metrics["dataset"]["cases"] == {"test": 40, "valid": 40}


def test_sampled_protocols_chart_their_sampled_metrics():
    assert GridTable("loo-sampled", 100).headline() == ("hr@10/sampled100", "ndcg@10/sampled100")
    assert GridTable("caser-paper", 100).headline() == ("precision@10", "map")
