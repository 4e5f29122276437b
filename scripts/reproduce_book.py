"""The book's experiment with five seeds: each seed and the median, written into README.md.

    python scripts/reproduce_book.py [--data-dir PATH] [--seeds 0,1,2,3,4] [--no-readme]
"""

from __future__ import annotations

import argparse
import statistics

from readme_section import replace_section

from seqrec import api
from seqrec.settings import resolve_run_config

COLUMNS = [("d2l", "hit@50"), ("d2l", "auc"), ("d2l-fixed", "hit@50"), ("d2l-fixed", "auc"),
           ("d2l-fixed", "hr@10"), ("d2l-fixed", "ndcg@10"), ("d2l-fixed", "mrr")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    base = resolve_run_config("d2l", overrides={"data.data_dir": args.data_dir})
    log = api.load_dataset(base.data)
    rows = []
    for seed in seeds:
        result = api.train(log, resolve_run_config("d2l", overrides={"data.data_dir": args.data_dir, "seed": seed}))
        values = [result.metrics[p][m] for p, m in COLUMNS]
        rows.append((str(seed), values, result.history[-1]["loss"]))
        print(f"seed {seed}: " + ", ".join(f"{p} {m} {v:.3f}" for (p, m), v in zip(COLUMNS, values, strict=True)))
    median = [statistics.median(r[1][i] for r in rows) for i in range(len(COLUMNS))]
    header = "| seed | " + " | ".join(f"`{p}` {m}" for p, m in COLUMNS) + " | mean loss (last epoch) |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for seed, values, loss in rows:
        lines.append(f"| {seed} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {loss:.4f} |")
    lines.append("| **median** | " + " | ".join(f"**{v:.3f}**" for v in median) + " | |")
    lines.append("| book (printed) | 0.397 | 0.753 |" + " |" * (len(COLUMNS) - 1))
    table = "\n".join(lines)
    print(table)
    if not args.no_readme:
        replace_section("book-results", table)


if __name__ == "__main__":
    main()
