"""The `seqrec` command end to end, and its one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def seqrec(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqrec", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_train_book_preset_one_epoch_writes_metrics(ml100k_dir, tmp_path):
    out = tmp_path / "run"
    done = seqrec("train", "--preset", "d2l", "--data-dir", str(ml100k_dir), "--seed", "0", "--epochs", "1",
                  "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "metrics.json").read_text())
    assert 0.15 < report["metrics"]["d2l"]["hit@50"] < 0.6             # one epoch: about 0.2 (seeds 0-4)
    assert 0.6 < report["metrics"]["d2l"]["auc"] < 0.88
    assert report["metrics"]["d2l-fixed"]["auc"] > report["metrics"]["d2l"]["auc"]
    assert set(report["metrics"]["d2l-fixed"]) >= {"hr@10", "hit@50", "ndcg@10", "mrr", "auc"}
    assert report["config"]["train"]["epochs"] == 1 and report["config"]["train"]["lr"] == 0.04
    assert report["timings"]["train_windows_per_second"] > 0 and report["dataset"]["num_events"] == 100_000
    assert report["dataset"]["sha256"].startswith("06416e59") and report["seed"] == 0
    assert "torch" in report["versions"]
    assert "hit@50" in done.stdout and "0.397" in done.stdout       # the table beside the book's figures


def test_toml_config_and_set_override(ml100k_dir, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[train]\nepochs = 1\nbatch_size = 8192\n[model_params]\nL = 3\n')
    done = seqrec("train", "--preset", "d2l", "--config", str(config), "--set", "train.lr=0.02",
                  "--data-dir", str(ml100k_dir), "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    resolved = json.loads((tmp_path / "o" / "metrics.json").read_text())["config"]
    assert (resolved["train"]["batch_size"], resolved["train"]["lr"], resolved["model_params"]["L"]) == (8192, 0.02, 3)


def corrupt_copy(ml100k_dir: Path, tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    shutil.copy(ml100k_dir / "u.item", folder / "u.item")
    (folder / "u.data").write_text(text)
    return folder


GOOD = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("", "u.data: file is empty"),
    (GOOD + "22\t377\t1\n", "u.data:3: expected 4 fields"),
    (GOOD + "22\t37x\t1\t878887116\n", "u.data:3: column 2 (item) is not an integer: '37x'"),
    (GOOD, "checksum mismatch"),
])
def test_bad_data_files_give_one_line_errors(ml100k_dir, tmp_path, text, expected):
    folder = corrupt_copy(ml100k_dir, tmp_path, text)
    done = seqrec("train", "--preset", "d2l", "--data-dir", str(folder), "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "expected"), [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--preset", "d2l", "--L", "0"], "L must be >= 1"),
    (["--preset", "d2l", "--lr", "-0.1"], "train.lr must be > 0"),
    (["--set", "train.bogus=1"], "bad [train] setting"),
    (["--data-dir", "/no/such/folder"], "/no/such/folder: data folder not found"),
])
def test_bad_settings_give_one_line_errors(args, expected, tmp_path):
    done = seqrec("train", *args, "--out", str(tmp_path / "o"))
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
