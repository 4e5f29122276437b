"""torchrun + DistributedDataParallel on the CPU (gloo): disjoint shards, rank 0 alone writes, and the same
numbers as one process within a stated tolerance."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import polars as pl

from seqrec.training.distributed import Ranks, shard
from tests.conftest import REPO, markov_log

# Two ranks see the same shuffled batches as one process, split in halves, and DDP averages the halves'
# gradients: with no dropout and the full softmax only the summation order differs.
TOLERANCE = 0.01


def test_ranks_train_disjoint_shards_that_cover_every_example():
    order = np.random.default_rng(0).permutation(1001)
    parts = [shard(order, Ranks(rank, 3)) for rank in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(1001))
    assert all(not set(a.tolist()) & set(b.tolist()) for i, a in enumerate(parts) for b in parts[i + 1:])


def test_torchrun_with_two_processes_matches_one_process(tmp_path):
    log = markov_log(num_users=300, num_items=60, length=16, seed=2)
    data = tmp_path / "log.csv"
    pl.DataFrame({"user": log.users, "item": log.items}).write_csv(data)
    args = ["train", "--data", str(data), "--model", "caser", "--loss", "softmax", "--epochs", "3", "--seed", "1",
            "--set", "model_params.dropout=0.0", "--set", "model_params.embedding_dim=16", "--set",
            "train.batch_size=128", "--threads", "1", "--no-progress"]
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    one = subprocess.run([sys.executable, "-m", "seqrec", *args, "--out", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "seqrec", *args, "--out", str(tmp_path / "two")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("wrote ") == 1                                # rank 0 alone reports and writes
    a, b = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("one", "two"))
    assert b["timings"]["processes"] == 2 and a["timings"]["processes"] == 1
    assert [e["windows"] for e in b["history"]] == [e["windows"] for e in a["history"]]   # every example, once
    for name, value in a["metrics"]["loo-full"].items():
        assert abs(b["metrics"]["loo-full"][name] - value) < TOLERANCE, (name, value, b["metrics"]["loo-full"][name])
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["bundle", "metrics.json"]
