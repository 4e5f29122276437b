"""`seqrec tune`: a search on validation data only, shared studies, pruning, best.toml, one-line errors."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
import types
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest
import torch
from optuna.trial import TrialState

from seqrec import tuning
from seqrec.cli import main
from seqrec.data.catalog import load_dataset
from seqrec.data.interactions import Interactions
from seqrec.errors import ConfigError
from seqrec.evaluation.protocols import SPLITS
from seqrec.models.registry import MODELS
from seqrec.settings import build_run_config, preset_for, resolve_run_config, with_settings
from seqrec.tuning.interrupts import SearchInterrupts
from tests.conftest import markov_log, run_config

SMALL = {"train": {"epochs": 2, "batch_size": 128}, "eval": {"protocols": ["loo-full"]}}
GOOD = {"train.lr": 1e-2, "train.weight_decay": 0.0, "train.loss": "softmax", "train.num_negatives": 1, "train.T": 1,
        "model_params.L": 3, "model_params.embedding_dim": 32, "model_params.num_h_filters": 8,
        "model_params.num_v_filters": 2, "model_params.dropout": 0.1, "model_params.use_user": True,
        "model_params.tie_item_embeddings": False, "train.windows": "complete"}
BAD = GOOD | {"train.lr": 1e-4, "train.loss": "bpr", "model_params.embedding_dim": 16, "model_params.dropout": 0.7}


def small_log() -> Interactions:
    return markov_log(num_users=60, num_items=30, length=12, seed=1)


def poisoned(log: Interactions) -> Interactions:
    """`log` with every user's last (test) item replaced by another item of the catalogue."""
    order = np.lexsort((log.times, log.users))
    last = order[np.r_[log.users[order][1:] != log.users[order][:-1], True]]
    items = log.items.copy()
    items[last] = items[last] % log.num_items + 1
    return dataclasses.replace(log, items=items)


def trials_of(study: optuna.Study) -> list[tuple]:
    return [(t.number, t.state, t.params, t.value, t.intermediate_values) for t in study.trials]


def write_csv(log: Interactions, path: Path) -> Path:
    pl.DataFrame({"user": log.users, "item": log.items, "time": log.times}).write_csv(path)
    return path


def file_config(path: Path):
    return run_config("caser", data={"path": str(path), "time_col": "time"}, **SMALL)


@pytest.fixture(scope="module")
def clean_search(tmp_path_factory) -> tuple[Path, tuning.TuneResult]:
    """A search over a log file, so that best.toml names the data as `seqrec train --config` reads it."""
    # one thread: with more, a process can differ from another in the last digit (README, "Same seed, same
    # numbers"), and the search is compared with a second search and with a `seqrec train` subprocess
    torch.set_num_threads(1)                      # module scope: before the autouse per-test setting
    folder = tmp_path_factory.mktemp("tune")
    base = file_config(write_csv(small_log(), folder / "log.csv"))
    result = tuning.tune(load_dataset(base.data), base, folder / "out", tuning.TuneOptions(trials=4))
    return folder / "out", result


def test_search_never_reads_test_items(clean_search, tmp_path):
    _, clean = clean_search
    torch.set_num_threads(1)
    base = clean.best_config
    log = load_dataset(base.data)
    dirty = poisoned(log)
    assert dirty.num_items == log.num_items and (dirty.items != log.items).sum() == log.num_users
    result = tuning.tune(dirty, file_config(base.data.path), tmp_path / "out", tuning.TuneOptions(trials=4))
    assert trials_of(result.study) == trials_of(clean.study)          # same trials, same values, same order
    assert len({json.dumps(t.params) for t in clean.study.trials}) == 4
    # the final run reads the test items once: the poison shows there, and only there
    assert result.final.validation == clean.final.validation
    assert result.final.metrics["loo-full"]["hr@10"] != clean.final.metrics["loo-full"]["hr@10"]


def test_writes_trials_table_plots_summary_and_best_run(clean_search):
    out, result = clean_search
    rows = list(pl.read_csv(out / "trials.csv").iter_rows(named=True))
    assert [r["number"] for r in rows] == [0, 1, 2, 3] and {r["state"] for r in rows} == {"complete"}
    assert {"value", "seconds", "best_epoch", "train.lr", "model_params.L"} <= set(rows[0])
    assert max(r["value"] for r in rows) == pytest.approx(result.best.value)
    assert "| number | state | value |" in (out / "trials.md").read_text()
    for png in ("history.png", "importance.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best_run = json.loads((out / "best" / "metrics.json").read_text())
    assert set(best_run["metrics"]["loo-full"]) >= {"hr@10", "ndcg@10"} and (out / "best" / "bundle").is_dir()
    summary = json.loads((out / "tune.json").read_text())
    assert summary["best"]["number"] == result.best.number and summary["trials"]["complete"] == 4
    assert "tuned caser" in result.summary() and f"best trial {result.best.number}" in result.summary()


def test_best_toml_reproduces_the_best_trial(clean_search, tmp_path):
    out, result = clean_search
    best = tomllib.loads((out / "best.toml").read_text())
    assert best["train"]["lr"] == result.best.params["train.lr"] and best["train"]["early_stopping_metric"] == "ndcg@10"
    done = subprocess.run([sys.executable, "-m", "seqrec", "train", "--config", str(out / "best.toml"), "--out",
                           str(tmp_path / "run"), "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["validation"]["loo-full"]["ndcg@10"] == pytest.approx(result.best.value, rel=1e-9, abs=1e-12)


def test_a_finished_run_of_a_point_of_the_space_is_read_as_its_trial_not_trained_again(clean_search, tmp_path):
    out, clean = clean_search
    torch.set_num_threads(1)
    base = file_config(clean.best_config.data.path)
    log, lines = load_dataset(base.data), []
    read = tuning.TuneOptions(trials=0, final=False, from_runs=(out / "best",))   # best/: the best settings' run
    result = tuning.tune(log, base, tmp_path / "read", read, echo=lines.append)
    (trial,) = result.study.trials
    assert result.trials_here == 0 and trial.state == TrialState.COMPLETE and trial.params == clean.best.params
    assert trial.value == pytest.approx(clean.best.value, rel=1e-9, abs=1e-12)
    assert trial.intermediate_values == pytest.approx(clean.best.intermediate_values, rel=1e-9, abs=1e-12)
    run = json.loads((out / "best" / "metrics.json").read_text())
    assert trial.duration.total_seconds() == pytest.approx(run["timings"]["train_seconds"], abs=1e-3)
    assert trial.user_attrs == {"best_epoch": run["best_epoch"], "worker": f"run {out / 'best'}"}
    assert lines == [f"trial 0: read from the finished run {out / 'best'}: valid/loo-full/ndcg@10 {trial.value:.4f}"]
    sittings = json.loads((tmp_path / "read" / "tune.json").read_text())["sittings"]
    assert sittings == [{"trials": 1, "seconds": run["timings"]["train_seconds"], "started": sittings[0]["started"],
                         "run": str(out / "best")}]
    # several runs: one trial each, numbered in turn
    other_lr = tmp_path / "other-lr"
    other_lr.mkdir()
    run["config"]["train"]["lr"], run["validation"]["loo-full"]["ndcg@10"] = 5e-3, 0.5      # as another lr's run
    (other_lr / "metrics.json").write_text(json.dumps(run))
    both, lines = dataclasses.replace(read, from_runs=(out / "best", other_lr)), []
    two = tuning.tune(log, base, tmp_path / "two", both, echo=lines.append)
    assert [line.partition(":")[0] for line in lines] == ["trial 0", "trial 1"] and lines[1].endswith("ndcg@10 0.5000")
    assert two.best.number == 1 and two.best.params == clean.best.params | {"train.lr": 5e-3}
    # queued or read again, those settings are not trained again: the next trial is drawn (and one drawn alike,
    # as trial n draws from (seed, n) here as in the search that found them, is not run either)
    again = dataclasses.replace(read, trials=1, enqueue=(clean.best.params,))
    _, drawn = tuning.tune(log, base, tmp_path / "read", again).study.trials
    assert drawn.params != clean.best.params or drawn.user_attrs["error"].startswith("repeats trial 0 ")
    # a run with another setting than those searched, or on other events, is no trial of this search
    longer = with_settings(base, {"train.epochs": 3})
    with pytest.raises(ConfigError, match="trained with train.epochs = 2, the search's base has 3"):
        tuning.tune(log, longer, tmp_path / "longer", read)
    other_file = write_csv(markov_log(num_users=60, num_items=30, length=12, seed=2), tmp_path / "other.csv")
    other = file_config(other_file)
    with pytest.raises(ConfigError, match="it trained on other events than the search"):
        tuning.tune(load_dataset(other.data), other, tmp_path / "other", read)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metrics.json").write_text('{"config": ')
    with pytest.raises(ConfigError, match="is no metrics.json of `seqrec train` \\(JSONDecodeError: Expecting value"):
        tuning.tune(log, base, tmp_path / "broken-out", dataclasses.replace(read, from_runs=(broken,)))
    assert not (tmp_path / "longer").exists() and not (tmp_path / "broken-out").exists()


def test_pruning_stops_a_clearly_bad_trial(tmp_path):
    options = tuning.TuneOptions(trials=2, prune_after=1, prune_warmup=0, enqueue=(GOOD, BAD), final=False)
    base = run_config("caser", **(SMALL | {"train": {"epochs": 5, "batch_size": 128}}))
    result = tuning.tune(small_log(), base, tmp_path / "out", options)
    good, bad = result.study.trials
    assert (good.state, bad.state) == (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    step = bad.last_step                              # the first epoch below the good trial's, not the last
    assert step < 5 and bad.intermediate_values[step] < good.intermediate_values[step]
    assert bad.params["train.lr"] == 1e-4
    assert "pruned" in (tmp_path / "out" / "trials.csv").read_text()


def test_the_timeout_cuts_a_trial_still_training_at_the_end_of_its_epoch(tmp_path, monkeypatch):
    now, trained = [0.0], tuning.train

    def second_per_epoch(log, cfg, progress, search):      # the search's clock: each epoch takes 1 s
        def tick(epoch: int, value: float) -> None:
            now[0] += 1.0
            search(epoch, value)
        return trained(log, cfg, progress, search=tick)

    monkeypatch.setattr(tuning, "train", second_per_epoch)
    monkeypatch.setattr(tuning, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    base = run_config("caser", **(SMALL | {"train": {"epochs": 3, "batch_size": 128, "patience": 10}}))
    options = tuning.TuneOptions(trials=3, timeout=4.5, prune=False, enqueue=(GOOD,), final=False)
    result = tuning.tune(small_log(), base, tmp_path / "out", options)
    done, cut = result.study.trials          # epochs end at 1, 2, 3 s, then at 4 and 5 s; no third trial starts
    assert (done.state, sorted(done.intermediate_values)) == (TrialState.COMPLETE, [1, 2, 3])
    assert (cut.state, sorted(cut.intermediate_values)) == (TrialState.FAIL, [1, 2])
    assert cut.user_attrs["error"] == (f"cut at epoch 2 ({result.metric} {cut.intermediate_values[2]:.4f}): "
                                       "the search's --timeout of 4.5 s had passed")
    assert "cut at epoch 2" in (tmp_path / "out" / "trials.csv").read_text()


def test_second_process_joins_a_running_study(tmp_path):
    data = write_csv(small_log(), tmp_path / "log.csv")
    url, name = f"sqlite:///{tmp_path / 'shared.sqlite'}", "shared"

    def start(trials: int, out: str) -> subprocess.Popen:
        args = ["--data", str(data), "--time-col", "time", "--protocol", "loo-full", "--epochs", "2", "--L", "3",
                "--trials", str(trials), "--timeout", "900", "--storage", url, "--study", name, "--no-final",
                "--threads", "1", "--out", str(tmp_path / out)]
        return subprocess.Popen([sys.executable, "-m", "seqrec", "tune", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    first = start(1000, "a")                  # runs until interrupted, so the second surely joins it while it runs
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:     # until the first has finished a trial
        try:
            if any(t.state.is_finished() for t in optuna.load_study(study_name=name, storage=url).trials):
                break
        except KeyError:                        # the study does not exist yet
            pass
        time.sleep(0.2)
    second = start(3, "b")
    second_out = second.communicate(timeout=300)
    first.send_signal(signal.SIGTERM)           # as Ctrl-C: the first ends its search and writes its results
    first_out = first.communicate(timeout=300)
    assert (first.returncode, second.returncode) == (0, 0), (first_out, second_out)
    assert "interrupted" in first_out[0] and (tmp_path / "a" / "best.toml").is_file()
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert sorted(t.number for t in trials) == list(range(len(trials)))                 # one numbering, no repeats
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == len(trials)  # nobody drew the same trial
    assert not any("model_params.L" in t.params for t in trials)                       # --L fixes L
    workers = {process.pid: f"{socket.gethostname()}:{process.pid}" for process in (first, second)}
    # a trial that Ctrl-C cut before its objective began has no worker and failed; none is left running
    assert all(t.state == optuna.trial.TrialState.FAIL for t in trials if "worker" not in t.user_attrs)
    assert not any(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    assert {t.user_attrs["worker"] for t in trials if "worker" in t.user_attrs} == set(workers.values())
    joined = [t.number for t in trials if t.user_attrs.get("worker") == workers[second.pid]]
    started = [t.number for t in trials if t.user_attrs.get("worker") == workers[first.pid]]
    assert len(joined) == 3 and all(t.state.is_finished() for t in trials if t.number in joined)
    assert min(joined) < max(started)                                  # the first went on while the second ran


@pytest.mark.parametrize(("protocol", "key"), [("caser-paper", "map"), ("loo-sampled", "ndcg@10/sampled10")])
def test_tunes_under_every_protocol_with_validation_cases(protocol, key, tmp_path):
    base = run_config("caser", train={"epochs": 1}, eval={"protocols": [protocol], "num_sampled": 10})
    result = tuning.tune(small_log(), base, tmp_path / "out", tuning.TuneOptions(trials=1))
    assert result.metric == f"valid/{protocol}/{key}" and result.best_config.train.early_stopping_metric in key
    assert result.final.validation[protocol][key] == result.best.value
    assert f"final run (seed 0): valid {key} {result.best.value:.4f}; test " in result.summary()


def test_each_sitting_of_a_study_is_counted_in_every_summary_of_it(tmp_path):
    base, out = run_config("caser", **SMALL), tmp_path / "out"
    for trials in (1, 2):                       # a second `seqrec tune` into the same folder continues the study
        tuning.tune(small_log(), base, out, tuning.TuneOptions(trials, final=False))
    summary = json.loads((out / "tune.json").read_text())
    assert [sitting["trials"] for sitting in summary["sittings"]] == [1, 2] and summary["trials"]["complete"] == 3
    assert summary["seconds"]["search"] == summary["sittings"][1]["seconds"] > 0
    # a process joining the study from another folder (or machine) counts them all, and a report of OUT counts it
    joined = tuning.TuneOptions(1, final=False, storage=f"sqlite:///{out / 'study.sqlite'}")
    tuning.tune(small_log(), base, tmp_path / "elsewhere", joined)
    tuning.tune(small_log(), base, out, tuning.TuneOptions(0, final=False))
    for folder in ("elsewhere", "out"):
        sittings = json.loads((tmp_path / folder / "tune.json").read_text())["sittings"]
        assert [sitting["trials"] for sitting in sittings] == [1, 2, 1], folder


def test_the_report_of_a_stopped_study_runs_no_trial_and_reads_its_sittings_from_the_trials(tmp_path, monkeypatch):
    base, out = run_config("caser", **SMALL), tmp_path / "out"
    with monkeypatch.context() as stopped:      # a process stopped from outside records no sitting
        stopped.setattr(tuning, "record_sitting", lambda *args: None)
        searched = trials_of(tuning.tune(small_log(), base, out, tuning.TuneOptions(2, final=False)).study)
    for name in ("tune.json", "best.toml", "trials.csv"):           # a process stopped from outside writes none
        (out / name).unlink()
    report = tuning.tune(small_log(), base, out, tuning.TuneOptions(0, final=False, enqueue=(GOOD,)))
    assert report.trials_here == 0 and trials_of(report.study) == searched          # nothing ran or was queued
    summary = json.loads((out / "tune.json").read_text())
    assert [sitting["trials"] for sitting in summary["sittings"]] == [2] and summary["sittings"][0]["seconds"] > 0
    assert summary["best"]["number"] == report.best.number and (out / "best.toml").is_file()
    tuning.tune(small_log(), base, out, tuning.TuneOptions(0, final=False))         # another report adds no sitting
    assert json.loads((out / "tune.json").read_text())["sittings"] == summary["sittings"]


def test_a_summary_counts_every_process_of_the_study_and_the_time_of_a_cut_trial(clean_search, tmp_path, monkeypatch):
    out, clean = clean_search
    torch.set_num_threads(1)
    base = file_config(clean.best_config.data.path)
    log, study_dir, record = load_dataset(base.data), tmp_path / "study", tuning.record_sitting
    with monkeypatch.context() as stopped:      # reads a run, draws a trial, is stopped from outside before its
        stopped.setattr(tuning, "WORKER", "stopped:1")                  # own sitting is recorded
        stopped.setattr(tuning, "record_sitting", lambda study, trials, seconds, known=None:
                        known is not None and record(study, trials, seconds, known))
        tuning.tune(log, base, study_dir, tuning.TuneOptions(1, final=False, from_runs=(out / "best",)))

    def killed(*args, **kwargs):                # SIGTERM while the trial trains: this process cuts it
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

    with monkeypatch.context() as cut:          # a process whose only trial is cut: a sitting of no trial
        cut.setattr(tuning, "WORKER", "cut:2")
        cut.setattr(tuning, "train", killed)
        tuning.tune(log, base, study_dir, tuning.TuneOptions(1, final=False, enqueue=(GOOD,)))
    report = tuning.tune(log, base, study_dir, tuning.TuneOptions(0, final=False))
    sittings = json.loads((study_dir / "tune.json").read_text())["sittings"]
    drawn = next(t for t in report.study.trials if t.user_attrs["worker"] == "stopped:1")
    assert [sitting["trials"] for sitting in sittings] == [1, int(drawn.state == TrialState.COMPLETE), 0]
    assert sittings[0]["run"] == str(out / "best") and 0 < sittings[2]["seconds"] < 30
    assert sittings[1]["seconds"] == pytest.approx(drawn.duration.total_seconds())
    tuning.tune(log, base, study_dir, tuning.TuneOptions(0, final=False))          # another report: the same
    assert json.loads((study_dir / "tune.json").read_text())["sittings"] == sittings


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")           # ask() outside optimize, as a killed process
def test_the_trials_table_says_why_a_trial_failed_and_gives_no_seconds_where_its_end_is_unknown(tmp_path, monkeypatch):
    base, out = run_config("caser", **SMALL), tmp_path / "out"
    study = tuning.tune(small_log(), base, out, tuning.TuneOptions(1, final=False)).study

    def killed(*args, **kwargs):                # SIGTERM while the trial trains: this process cuts it
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

    with monkeypatch.context() as cut:
        cut.setattr(tuning, "train", killed)
        tuning.tune(small_log(), base, out, tuning.TuneOptions(1, final=False))
    # a trial whose process was killed (no word, no end): its last heartbeat is an hour old
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.sqlite'}", heartbeat_interval=60)
    dead = optuna.load_study(study_name=study.study_name, storage=storage).ask()
    storage.record_heartbeat(dead._trial_id)
    with sqlite3.connect(out / "study.sqlite") as db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, '-1 hour')")
    tuning.tune(small_log(), base, out, tuning.TuneOptions(0, final=False))          # a later process reports
    rows = {row["number"]: row for row in pl.read_csv(out / "trials.csv").iter_rows(named=True)}
    assert [rows[n]["state"] for n in (0, 1, dead.number)] == ["complete", "fail", "fail"]
    assert rows[1]["error"] == "cut by SIGTERM" and 0 < rows[1]["seconds"] < 30
    assert rows[dead.number]["error"] == tuning.outputs.UNSEEN_END and rows[dead.number]["seconds"] is None
    assert rows[0]["error"] is None and rows[0]["seconds"] > 0


def test_a_study_started_before_a_setting_existed_is_joined_with_that_settings_default(tmp_path):
    base, options = run_config("caser", **SMALL), tuning.TuneOptions(trials=1, final=False)
    study = tuning.tune(small_log(), base, tmp_path / "out", options).study
    identity = study.user_attrs["identity"]
    del identity["settings"]["data.ties"]                    # as a study written before data.ties existed
    study.set_user_attr("identity", identity)
    assert tuning.tune(small_log(), base, tmp_path / "out", options).trials_here == 1
    shuffled = with_settings(base, {"data.ties": "shuffle"})
    with pytest.raises(ConfigError, match="started with settings.data.ties = None, not 'shuffle'"):
        tuning.tune(small_log(), shuffled, tmp_path / "out", options)


def test_joining_a_study_with_other_settings_is_refused(tmp_path):
    options = tuning.TuneOptions(trials=1, final=False)
    tuning.tune(small_log(), run_config("caser", **SMALL), tmp_path / "out", options)
    other = run_config("caser", train={"epochs": 1, "batch_size": 128}, eval={"protocols": ["loo-full"]})
    with pytest.raises(ConfigError, match="train.epochs = 2, not 1"):
        tuning.tune(small_log(), other, tmp_path / "out", options)


@pytest.mark.parametrize(("args", "message"), [
    (["--protocol", "d2l", "--trials", "2"], "protocol d2l has no validation split"),
    (["--metric", "map", "--trials", "2"], "'map' is not a metric of protocol loo-full"),
    ([], "say how long to search: --trials N, --timeout 30m, or both"),
    (["--timeout", "soon"], "a duration looks like 1800, 30m, 2h or 1d"),
    (["--model", "pop", "--trials", "2"], "model pop declares no search space"),
    (["--params", "train.nope", "--trials", "2"], "train.nope is not in model caser's search space"),
    (["--params", "train.label_smoothing", "--trials", "2"],
     "train.label_smoothing is searched only when train.loss is one of ['softmax'], and train.loss is 'bpr' here"),
    (["--trials", "2", "--from-run", "nowhere"], "--from-run nowhere: no metrics.json; give the folder of a finished"),
])
def test_bad_inputs_are_one_line_errors_before_anything_runs(args, message, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"                     # the data file does not exist: the error must come before reading it
    monkeypatch.setattr(sys, "argv", ["seqrec", "tune", "--data", str(tmp_path / "missing.csv"), "--protocol",
                                      "loo-full", "--out", str(out), *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("seqrec: error:"), err
    assert message in err and not out.exists()


@pytest.mark.parametrize("name", [n for n, spec in MODELS.items() if spec.search_space])
def test_every_search_space_gives_valid_settings(name):
    base = tuning.search_base(resolve_run_config(preset_for(name), None, {"model": name,
                                                                         "eval.protocols": ["loo-full"]}))
    space = tuning.search_space(name)
    assert set(space) == set(MODELS[name].search_space)
    ends = [{n: d.choices[i] if isinstance(d, optuna.distributions.CategoricalDistribution) else (d.low, d.high)[i]
             for n, d in space.items()} for i in (0, -1)]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [tuning.suggest(study.ask(), space, base) for _ in range(20)]
    for params in ends + drawn:
        cfg = with_settings(base, params)
        for dotted, value in params.items():
            section, key = dotted.split(".")
            assert getattr(getattr(cfg, section), key) == value
    declared = list(MODELS[name].search_space)
    for setting, (on, _, _) in MODELS[name].search_conditions.items():
        assert setting in declared and (on not in declared or declared.index(on) < declared.index(setting))


def test_a_conditional_setting_is_drawn_only_under_its_condition():
    base = tuning.search_base(resolve_run_config("tuned", None, {"eval.protocols": ["loo-full"],
                                                                 "train.label_smoothing": 0.3}))
    space = tuning.search_space("caser")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trials = [study.ask() for _ in range(30)]
    drawn = [tuning.suggest(trial, space, base) for trial in trials]
    for trial, settings in zip(trials, drawn, strict=True):
        softmax = settings["train.loss"] == "softmax"
        assert ("train.label_smoothing" in trial.params) == softmax
        assert softmax or settings["train.label_smoothing"] == 0.0
        with_settings(base, settings)                                # no "label smoothing needs softmax" error
    assert {s["train.loss"] for s in drawn} == {"bpr", "bce", "softmax"}
    assert any(s["train.label_smoothing"] > 0 for s in drawn)
    best = next(t.params for t in trials if t.params["train.loss"] == "bpr")   # a best trial's settings
    assert with_settings(base, best | tuning.unmet_conditions(base, best)).train.label_smoothing == 0.0


def test_only_the_named_splits_have_validation_cases():
    log = markov_log(num_users=30, num_items=20, length=10)
    log = dataclasses.replace(log, times=log.times + log.users * 100)      # sessions end at different times
    assert {family for family, (split, _) in SPLITS.items() if split(log).valid is not None} == \
        set(tuning.VALIDATED_SPLITS)


def test_best_toml_round_trips_any_settings():
    configs = [run_config("caser", train={"lr": 1e-5, "early_stopping_metric": "auto"},
                          data={"path": 'a "quoted" folder/log.csv', "rating_col": "r", "min_rating": 3.5},
                          eval={"protocols": ["loo-full", "loo-sampled"], "ks": [5, 10]}),
               run_config("sasrec", seed=7), run_config("bert4rec", train={"mask_prob": 0.35})]
    for cfg in configs:
        assert build_run_config(tomllib.loads(tuning.to_toml(cfg.to_dict()))) == cfg


def test_settings_given_as_flags_are_not_searched():
    assert set(tuning.search_space("caser", fixed=("train.lr", "train.epochs"))) == \
        set(MODELS["caser"].search_space) - {"train.lr"}
    assert set(tuning.search_space("caser", ("train.lr",), fixed=("train.lr",))) == {"train.lr"}   # --params wins
    with pytest.raises(ConfigError, match="flags fix every setting of model markov's search space"):
        tuning.search_space("markov", fixed=("model_params.L", "model_params.backoff", "train.windows"))


def test_search_space_descriptions_are_checked():
    assert tuning.distribution("x", ("float", 1e-4, 1e-2, True)).log
    for bad in [("float", 1.0, 0.5), ("float", 0.0, 1.0, True), ("int", 1), ("normal", 0, 1), ("categorical", ())]:
        with pytest.raises(ConfigError, match="search space entry x"):
            tuning.distribution("x", bad)


@pytest.mark.parametrize(("where", "states", "reached"), [
    ("training", [TrialState.FAIL], []),                     # cut at once
    ("report", [TrialState.FAIL], ["after"]),                # the storage call ends first, then the trial is cut
    ("before training", [TrialState.FAIL], ["after"]),       # the trial is cut as its training starts
    ("callback", [TrialState.COMPLETE], ["after"]),          # between trials: the search stops, nothing raises
])
def test_a_signal_cuts_a_trial_only_while_it_trains_and_elsewhere_stops_the_search(where, states, reached):
    study = optuna.create_study(direction="maximize")
    interrupts = SearchInterrupts(study)
    seen: list[str] = []

    def signal_here(place: str) -> None:
        if place == where:
            os.kill(os.getpid(), signal.SIGTERM)
            seen.append("after")

    def objective(trial: optuna.Trial) -> float:
        signal_here("before training")
        with interrupts.training():
            with interrupts.held():
                signal_here("report")
            signal_here("training")
        return 1.0

    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(KeyboardInterrupt), interrupts.installed():
        study.optimize(objective, n_trials=3, callbacks=[lambda study, trial: signal_here("callback")])
    assert ([t.state for t in study.trials], seen, interrupts.received) == (states, reached, "SIGTERM")
    assert signal.getsignal(signal.SIGTERM) is previous


@pytest.mark.parametrize(("preset", "first_is_base"), [("tuned", True), ("d2l", False)])
def test_the_base_settings_are_the_first_trial_when_the_space_holds_them(preset, first_is_base, tmp_path,
                                                                         monkeypatch, capsys):
    data = write_csv(small_log(), tmp_path / "log.csv")
    monkeypatch.setattr(sys, "argv", ["seqrec", "tune", "--data", str(data), "--time-col", "time", "--preset", preset,
                                      "--protocol", "loo-full", "--epochs", "1", "--trials", "2", "--no-final",
                                      "--threads", "1", "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0
    base = tuning.search_base(resolve_run_config(preset, None, {"data.path": str(data), "data.time_col": "time",
                                                                "eval.protocols": ["loo-full"], "train.epochs": 1}))
    first = optuna.load_study(study_name="caser", storage=f"sqlite:///{tmp_path / 'out' / 'study.sqlite'}").trials[0]
    own = {name: value for name, value in tuning.own_values(base).items() if name in first.params}
    assert (first.params == own) is first_is_base and len(own) == len(MODELS["caser"].search_space)
    err = capsys.readouterr().err
    assert ("not a point of the search space (train.lr = 0.04)" in err) is not first_is_base


def test_base_settings_failed_are_tried_again_others_not_repeated_and_copies_queued_together_run_once(tmp_path):
    base, out = run_config("caser", **SMALL), tmp_path / "out"
    tuning.tune(small_log(), base, out, tuning.TuneOptions(1, final=False))
    good = GOOD | {"train.label_smoothing": 0.0}
    study = optuna.load_study(study_name="caser", storage=f"sqlite:///{out / 'study.sqlite'}")
    study.enqueue_trial(good)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)     # as a trial cut when its process was stopped
    with_good = tuning.TuneOptions(1, final=False, enqueue=(good,))
    assert tuning.tune(small_log(), base, out, with_good).study.trials[2].params == good
    assert tuning.tune(small_log(), base, out, with_good).study.trials[3].params != good
    other = good | {"train.lr": 3e-3}
    study.enqueue_trial(other)
    study.enqueue_trial(other)                    # as two processes starting together may each queue it
    with_other = dataclasses.replace(with_good, trials=2, enqueue=(other,))
    trials = tuning.tune(small_log(), base, out, with_other).study.trials
    assert [t.state for t in trials[4:6]] == [TrialState.COMPLETE, TrialState.FAIL] and trials[4].params == other
    assert trials[5].user_attrs["error"] == "a copy of trial 4 queued by another process"
    assert trials[6].params != other


def test_a_drawn_trial_that_repeats_an_earlier_one_as_printed_is_not_run(tmp_path):
    """A preset copied from a trial line (4 significant digits) is drawn again by that trial number of any later
    search with the same seed: that trial fails at once, naming the trial it repeats, and the search goes on."""
    base = run_config("caser", **SMALL)
    drawn = tuning.tune(small_log(), base, tmp_path / "first", tuning.TuneOptions(2, final=False)).study.trials[1]
    preset = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in drawn.params.items()}
    options = tuning.TuneOptions(3, final=False, enqueue=(preset,))
    first, again, after = tuning.tune(small_log(), base, tmp_path / "second", options).study.trials
    assert (first.state, first.params) == (TrialState.COMPLETE, preset)
    assert again.state == TrialState.FAIL and again.user_attrs["error"].startswith("repeats trial 0 ")
    assert after.state == TrialState.COMPLETE and after.params != drawn.params


def test_importances_cover_only_the_settings_that_changed_between_finished_trials():
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    from seqrec.tuning.outputs import param_importances

    study = optuna.create_study(direction="maximize")
    space = {"lr": FloatDistribution(1e-4, 1e-2), "tied": CategoricalDistribution((False, True)),
             "dropout": FloatDistribution(0.0, 0.7)}
    assert param_importances(study) == {}
    for tied, value in ((False, 0.0372), (True, 0.0515)):          # two runs that differ in one setting
        study.add_trial(create_trial(params={"lr": 1e-3, "tied": tied, "dropout": 0.5}, distributions=space,
                                     value=value))
    assert param_importances(study) == {"tied": pytest.approx(1.0)}
