"""Training throughput against OpenMP's spin before sleeping, on a quiet machine and beside another job.

    python benchmarks/bench_threads.py [--data-dir PATH] [--no-readme]

Each measurement is a fresh process training the book's Caser for 3 epochs on 2 threads with one
GOMP_SPINCOUNT; "beside another job" runs a second such training (PyTorch's default spin) at the same
time. Prints a Markdown table and writes it into the README section `threads`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from readme_section import replace_section

SPINS = {"300000 (PyTorch's default)": "300000", "3000 (seqrec's default)": "3000", "0 (sleep at once)": "0"}
CODE = """
import json, torch
torch.set_num_threads(2)
from seqrec import api
from seqrec.settings import resolve_run_config
cfg = resolve_run_config("d2l", overrides={{"data.data_dir": {data!r}, "train.epochs": 3, "eval.protocols": ["d2l"]}})
print(json.dumps(api.train(api.load_dataset(cfg.data), cfg, progress=False).timings["train_windows_per_second"]))
"""


def throughput(data: str | None, spin: str) -> float:
    env = os.environ | {"GOMP_SPINCOUNT": spin}
    done = subprocess.run([sys.executable, "-c", CODE.format(data=data)], env=env, capture_output=True, text=True,
                          check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    rows = []
    for label, spin in SPINS.items():
        quiet = throughput(args.data_dir, spin)
        other = subprocess.Popen([sys.executable, "-c", "while True:\n" + "\n".join(
            "    " + line for line in CODE.format(data=args.data_dir).strip().splitlines())],
            env=os.environ | {"GOMP_SPINCOUNT": "300000"}, stdout=subprocess.DEVNULL)
        time.sleep(5)                                           # the other job is training
        shared = throughput(args.data_dir, spin)
        other.kill()
        other.wait()
        rows.append(f"| {label} | {quiet:,.0f} | {shared:,.0f} |")
        print(rows[-1], flush=True)
    table = "\n".join(["| GOMP_SPINCOUNT | windows/s, quiet machine | windows/s, beside another training job |",
                       "|---|---|---|", *rows])
    print(table)
    if not args.no_readme:
        replace_section("threads", table)


if __name__ == "__main__":
    main()
