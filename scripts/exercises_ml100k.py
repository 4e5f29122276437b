"""Regenerate the README's exercise results on MovieLens-100K (3 seeds each) and time them together:

1. ablation of Caser's parts (book settings) under `d2l-fixed` and `loo-full`;
2. the effect of L (1..10) under `loo-full`;
3. session-based recommendation: sessions cut from ML-100K by a 30-minute gap, and the synthetic
   planted-pattern sessions, under the `session` protocol.

    python scripts/exercises_ml100k.py [--data-dir PATH] [--seeds 0,1,2] [--out docs/results]

Each part runs the same command a user would (`seqrec ablation`, `seqrec sweep`, `seqrec sessions`),
writes its tables and charts under OUT, and replaces its README section.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from readme_section import replace_section

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> float:
    started = time.perf_counter()
    print("$ seqrec " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "seqrec", *args], check=True)
    return time.perf_counter() - started


def section(folder: Path, stem: str, title: str) -> str:
    chart = (folder / f"{stem}.png").relative_to(REPO)
    return f"{title}\n\n{(folder / f'{stem}.md').read_text().strip()}\n\n![{stem}]({chart})\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    args = parser.parse_args()
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    common = [*data, "--seeds", args.seeds, "--no-progress"]
    seconds = {}
    seconds["ablation"] = run(["ablation", "--preset", "d2l", "--protocol", "d2l-fixed,loo-full", *common,
                               "--out", str(args.out / "ablation")])
    seconds["sweep"] = run(["sweep", "--param", "L", "--values", "1..10", "--preset", "d2l", "--protocol", "loo-full",
                            *common, "--out", str(args.out / "sweep-L")])
    seconds["sessions"] = run(["sessions", "--session-gap", "30m", *common, "--out", str(args.out / "sessions")])
    seconds["synthetic"] = run(["sessions", "--data", "synthetic-sessions", "--seeds", args.seeds, "--no-progress",
                                "--out", str(args.out / "sessions-synthetic")])
    total = sum(seconds.values())
    timing = ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
    print(f"all exercises: {total:.0f} s ({timing})")
    replace_section("ablation", "\n".join(section(args.out / "ablation" / p, "ablation", f"Protocol `{p}`:")
                                          for p in ("d2l-fixed", "loo-full")))
    replace_section("sweep", section(args.out / "sweep-L", "sweep", "Protocol `loo-full`, book settings otherwise:"))
    replace_section("sessions", section(args.out / "sessions", "sessions", "MovieLens-100K, sessions cut by a "
                                        "30-minute gap:") + "\n" + section(args.out / "sessions-synthetic", "sessions",
                                                                           "Synthetic planted-pattern sessions:"))
    replace_section("exercise-timing", f"The three commands together took {total:.0f} s ({timing}), "
                                       f"seeds {args.seeds}, on 2 CPU cores.")


if __name__ == "__main__":
    main()
