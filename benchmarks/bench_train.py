"""Speed of the book's experiment on this machine: training throughput, evaluation time, end to end.

    python benchmarks/bench_train.py [--data-dir PATH] [--repeats 3]

Prints one line per measurement; benchmarks/RESULTS.md records a run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from seqrec import api
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import make_windows
from seqrec.data.split import d2l_split
from seqrec.evaluation.protocols import evaluate
from seqrec.models.registry import build_model
from seqrec.settings import resolve_run_config
from seqrec.training import fit, make_regime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = resolve_run_config("d2l", overrides={"data.data_dir": args.data_dir})
    log = api.load_dataset(cfg.data)
    split = d2l_split(log)
    windows = make_windows(split.train, 5)
    sampler = NegativeSampler(split.train, log.num_items)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(windows):,} windows per epoch")

    rates = []
    for seed in range(args.repeats):
        torch.manual_seed(seed)
        model = build_model("caser", cfg.model_params, log.num_users, log.num_items)
        history = fit(model, make_regime("windows", cfg.train, log.num_items), windows, sampler, cfg.train, seed,
                      progress=False)
        rates.append(history.windows_seen / history.train_seconds)
        print(f"train  seed {seed}: {history.windows_seen:,} windows in {history.train_seconds:.2f} s "
              f"= {rates[-1]:,.0f} windows/s (8 epochs, batch 4096)")
    print(f"train  median: {statistics.median(rates):,.0f} windows/s")

    model.eval()
    for protocol in ("d2l", "d2l-fixed"):
        evaluate(model, split.test, protocol, 5, log.num_users, log.num_items)          # warm-up
        times = []
        for _ in range(10):
            started = time.perf_counter()
            evaluate(model, split.test, protocol, 5, log.num_users, log.num_items)
            times.append(time.perf_counter() - started)
        median_ms = statistics.median(times) * 1000
        print(f"eval   {protocol}: all {len(split.test)} users in {median_ms:.1f} ms (median of 10)")

    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "seqrec", "train", "--preset", "d2l", "--seed", "0", "--out", out]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        print(f"main command end to end (process start to metrics.json): {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
