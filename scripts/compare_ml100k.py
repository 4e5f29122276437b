"""Regenerate the README's comparison on MovieLens-100K: every registered model (with each of its
presets, or its defaults when it has none), several seeds, one protocol.

    python scripts/compare_ml100k.py [--protocol loo-full] [--seeds 0,1,2] [--epochs N] [--out docs/results]

Writes OUT/compare-ml100k-PROTOCOL/{compare.json, compare.md, compare.png} and replaces the table
between the README markers `<!-- compare:start -->` and `<!-- compare:end -->`.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from seqrec import api, experiments
from seqrec.config import PRESETS
from seqrec.models import MODELS

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- compare:start -->", "<!-- compare:end -->"


def model_specs() -> list[str]:
    """'model:preset' for each preset of a registered model, plain 'model' for a model without one."""
    specs = []
    for name in MODELS:
        presets = [p for p, raw in PRESETS.items() if raw.get("model", "caser") == name]
        specs += [f"{name}:{p}" for p in presets] if presets else [name]
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="loo-full")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="override every preset's epochs")
    parser.add_argument("--models", default=None, help="comma separated specs (default: every model and preset)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    parser.add_argument("--data-dir", default=None, help="MovieLens-100K folder (else $SEQREC_DATA_DIR / cache)")
    args = parser.parse_args()

    overrides = {"eval.protocols": [args.protocol], "train.epochs": args.epochs, "data.data_dir": args.data_dir}
    configs = experiments.parse_model_specs(args.models or ",".join(model_specs()), overrides)
    log = api.load_dataset(next(iter(configs.values())).data)
    started = time.perf_counter()
    table = experiments.run_grid(configs, experiments.parse_seeds(args.seeds), log,
                                 on_run=lambda label, seed, r: print(f"{label} seed {seed}: "
                                                                     f"{r.timings['total_seconds']:.1f} s"))
    out_dir = args.out / f"compare-ml100k-{args.protocol}"
    paths = experiments.write_comparison(table, out_dir)
    print(f"{len(table.records)} runs in {time.perf_counter() - started:.0f} s; wrote {', '.join(map(str, paths))}")
    readme = REPO / "README.md"
    text = readme.read_text()
    if START in text and END in text:
        chart = paths[2].relative_to(REPO) if paths[2].is_relative_to(REPO) else paths[2]
        block = f"{START}\n{experiments.markdown_table(table)}\n![comparison]({chart})\n{END}"
        readme.write_text(re.sub(f"{re.escape(START)}.*?{re.escape(END)}", lambda _: block, text, flags=re.S))
        print(f"updated {readme}")


if __name__ == "__main__":
    main()
