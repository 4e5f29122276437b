"""`seqrec train` killed with SIGKILL in the middle of an epoch, then `--resume`d, ends with the numbers of an
uninterrupted run: a real subprocess, a real signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from tests.conftest import REPO, markov_log

EPOCHS = 6
TIMINGS = ("train_seconds",)


def command(*args: str) -> list[str]:
    # one thread: with more, MKL and oneDNN kernels can differ in the last digit from one process to the next
    return [sys.executable, "-m", "seqrec", "train", *args, "--threads", "1", "--no-progress"]


def settings(data: Path) -> list[str]:
    return ["--data", str(data), "--model", "caser", "--loss", "softmax", "--epochs", str(EPOCHS), "--seed", "3",
            "--set", "model_params.embedding_dim=32", "--set", "train.batch_size=256",
            "--early-stopping-metric", "ndcg@10", "--patience", str(EPOCHS)]


def comparable(run: Path) -> dict:
    """metrics.json less what a restart may change: timings and versions."""
    report = json.loads((run / "metrics.json").read_text())
    history = [{k: v for k, v in epoch.items() if k not in TIMINGS} for epoch in report["history"]]
    return {k: report[k] for k in ("metrics", "validation", "best_epoch", "seed", "config")} | {"history": history}


def test_kill_9_mid_epoch_then_resume_gives_the_uninterrupted_numbers(tmp_path):
    log = markov_log(num_users=1500, num_items=300, length=30, seed=5)
    data = tmp_path / "log.csv"
    pl.DataFrame({"user": log.users, "item": log.items}).write_csv(data)
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}

    whole = tmp_path / "whole"
    subprocess.run(command(*settings(data), "--out", str(whole)), env=env, check=True, capture_output=True,
                   timeout=300)

    cut = tmp_path / "cut"
    proc = subprocess.Popen(command(*settings(data), "--out", str(cut)), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    state, deadline = cut / "checkpoint" / "state.json", time.monotonic() + 240
    while not (state.is_file() and json.loads(state.read_text())["epoch"] >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.02)
    time.sleep(0.1)                                                   # into epoch 3
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed_after = json.loads(state.read_text())["epoch"]
    assert 2 <= killed_after < EPOCHS and not (cut / "metrics.json").exists()

    done = subprocess.run(command("--resume", str(cut)), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert comparable(cut) == comparable(whole)
    assert sorted(p.name for p in cut.iterdir()) == ["bundle", "metrics.json"]      # the checkpoint is gone
