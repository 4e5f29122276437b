"""Regenerate the README's comparison on MovieLens-100K: every baseline and three Caser settings,
several seeds, one protocol.

    python scripts/compare_ml100k.py [--protocol loo-full] [--seeds 0,1,2] [--epochs N] [--out docs/results]

Writes OUT/compare-ml100k-PROTOCOL/{compare.json, compare.md, compare.png} and replaces the table
between the README markers `<!-- compare:start -->` and `<!-- compare:end -->`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from readme_section import replace_section

from seqrec import api, experiments

REPO = Path(__file__).resolve().parents[1]


# Every baseline with its preset, then Caser: the book's settings, the paper's, and the tuned preset.
MODELS = "pop,markov,bprmf,gru4rec,sasrec,bert4rec,caser:d2l,caser:paper,caser:tuned"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="loo-full")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="override every preset's epochs")
    parser.add_argument("--models", default=MODELS, help=f"comma separated specs (default: {MODELS})")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    parser.add_argument("--data-dir", default=None, help="MovieLens-100K folder (else $SEQREC_DATA_DIR / cache)")
    parser.add_argument("--reuse", action="store_true", help="read finished runs of the same settings back")
    args = parser.parse_args()

    overrides = {"eval.protocols": [args.protocol], "train.epochs": args.epochs, "data.data_dir": args.data_dir}
    configs = experiments.parse_model_specs(args.models, overrides)
    log = api.load_dataset(next(iter(configs.values())).data)
    started = time.perf_counter()
    out_dir = args.out / f"compare-ml100k-{args.protocol}"
    table = experiments.run_grid(configs, experiments.parse_seeds(args.seeds), log, out_dir,
                                 on_run=lambda label, seed, r: print(f"{label} seed {seed}: "
                                                                     f"{r.timings['total_seconds']:.1f} s"),
                                 reuse=args.reuse)
    paths = experiments.write_comparison(table, out_dir)
    print(f"{len(table.records)} runs in {time.perf_counter() - started:.0f} s; wrote {', '.join(map(str, paths))}")
    chart = paths[2].relative_to(REPO) if paths[2].is_relative_to(REPO) else paths[2]
    replace_section("compare", f"{experiments.markdown_table(table)}\n![comparison]({chart})")
    print("updated README.md")


if __name__ == "__main__":
    main()
