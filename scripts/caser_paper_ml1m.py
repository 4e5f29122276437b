"""The Caser paper's protocol on its own dataset: `caser-paper` on MovieLens-1M, beside the paper's MAP.

    python scripts/caser_paper_ml1m.py [--data-dir PATH] [--seeds 0] [--out runs/caser-paper-ml1m] [--no-readme]

Each setting early-stops on validation MAP; "refit" then trains a fresh model on training + validation
items for the selected number of epochs and tests that one (the authors' practice, `train.refit`).
Replaces the README section `caser-paper-ml1m`. ML-1M's local copy: --data-dir or $SEQREC_ML1M_DIR.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from readme_section import publish

from seqrec import api

SETTINGS = {
    "paper preset": ("paper", {}),
    "paper preset, refit on train + valid": ("paper", {"train.refit": True}),
    "tuned preset (chosen on ML-100K), refit": ("tuned", {"train.refit": True}),
}
METRICS = ("map", "precision@1", "precision@5", "precision@10", "recall@1", "recall@5", "recall@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", type=Path, default=Path("runs/caser-paper-ml1m"))
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    common = {"data.dataset": "ml-1m", "data.data_dir": args.data_dir, "eval.protocols": ["caser-paper"]}
    log = api.load_dataset(api.resolve_run_config("paper", None, common).data)
    lines = ["| Caser on ML-1M, `caser-paper` | " + " | ".join(METRICS) + " | valid map | epochs | seconds |",
             "|---|" + "---|" * (len(METRICS) + 3)]
    for label, (preset, change) in SETTINGS.items():
        results, started = [], time.perf_counter()
        for seed in seeds:
            cfg = api.resolve_run_config(preset, None, common | change | {"seed": seed})
            results.append(api.run(log, cfg, args.out / preset / ("refit" if change else "plain") / f"seed-{seed}",
                                   progress=None))
            print(f"{label}, seed {seed}: map {results[-1].metrics['caser-paper']['map']:.4f}", flush=True)
        seconds = (time.perf_counter() - started) / len(seeds)
        mean = {m: statistics.mean(r.metrics["caser-paper"][m] for r in results) for m in METRICS}
        valid = statistics.mean(r.validation["caser-paper"]["map"] for r in results)
        epochs = ",".join(str(r.best_epoch) for r in results)
        lines.append(f"| {label} | " + " | ".join(f"{mean[m]:.4f}" for m in METRICS)
                     + f" | {valid:.4f} | {epochs} | {seconds:.0f} |")
    paper = "| Caser paper (Tang & Wang 2018), its own ML-1M preprocessing | about 0.15 |"
    lines.append(paper + " |" * (len(METRICS) + 2))
    table = "\n".join(lines) + f"\n\nSeeds {args.seeds} (means); epochs: the best validation epoch of each seed."
    publish("caser-paper-ml1m", table, readme=not args.no_readme)


if __name__ == "__main__":
    main()
