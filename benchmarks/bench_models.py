"""Seconds per training epoch on MovieLens-100K for each model preset, on a fixed number of CPU threads.

    PYTHONPATH=src python benchmarks/bench_models.py [--threads 2] [--epochs 3] [--presets sasrec,paper,d2l]

Each preset trains for --epochs epochs (the first one includes warm-up); the best and the median
epoch are printed with the preset's target. Evaluation time is not counted. Results are recorded
in benchmarks/RESULTS-models.md; on a shared machine they are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

from seqrec import api
from seqrec.settings import resolve_run_config

TARGETS = {"sasrec": 10.0, "paper": 5.0, "d2l": 0.5}     # seconds per epoch on 2 cores (issue 3)
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-100k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--presets", default="sasrec,paper,d2l,gru4rec,bprmf")
    parser.add_argument("--data-dir", default=os.environ.get("SEQREC_DATA_DIR", str(DEFAULT_DATA)))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print(f"{'preset':<10}{'windows':>9}{'best s/epoch':>14}{'median':>9}{'target':>8}")
    for preset in args.presets.split(","):
        run = resolve_run_config(preset, overrides={"data.data_dir": args.data_dir, "train.epochs": args.epochs,
                                                    "train.device": "cpu", "eval.protocols": ["d2l-fixed"]})
        result = api.train(api.load_dataset(run.data), run, progress=False)
        seconds = [e["train_seconds"] for e in result.history]
        target = TARGETS.get(preset)
        print(f"{preset:<10}{result.history[0]['windows']:>9,}{min(seconds):>14.2f}{statistics.median(seconds):>9.2f}"
              f"{'' if target is None else f'{target:>8.1f}'}", flush=True)


if __name__ == "__main__":
    main()
