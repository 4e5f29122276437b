"""How time and memory grow with the log: synthetic logs of 10^5, 10^6 and 10^7 events.

    python benchmarks/bench_scale.py [--sizes 1e5,1e6,1e7] [--limit SECONDS] [--add] [--out DIR] [--no-readme]

For each size, a synthetic log (`seqrec.data.synthetic`, users = events / 20, items = events / 100
capped at 10^5) is written as Parquet; then, each in a fresh process so peaks do not mix:
ingest (read the Parquet file into Interactions), examples (ingest + loo split + training windows),
and for Caser `d2l`, Caser `tuned` and SASRec one training epoch and the full `loo-full` evaluation of
every user (test and validation). SASRec runs with the settings the table was first measured with (L 50,
one head, full softmax: the `sasrec` preset before its validation search). Caser `tuned` and SASRec use the
full softmax; at 10^5 items they train with 1,000 popularity-drawn shared negatives (logQ-corrected sampled
softmax), said in the table. SASRec trains with train.batch_order=by-length (batches of similar lengths,
cut to their longest example). Peak memory is the process's peak RSS at the end of each phase (so it includes the
phases before). A run longer than --limit seconds is stopped and shown as not finished; --add keeps the
rows of other sizes from an earlier OUT/scale.json. Writes OUT/scale.json, OUT/scale.md and OUT/scale.png
(log-log) and the README section `scale`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from readme_section import replace_section  # noqa: E402

LARGE_CATALOGUE = 20_000          # from here on, softmax presets train with shared negatives
SHARED = {"train.loss": "sampled-softmax", "train.negatives": "popularity", "train.num_negatives": 1000}
# SASRec as the table was first measured (the sasrec preset before its validation search: L 50, one head,
# full softmax), so that rows measured on different days stay comparable
SASREC_L50 = {"model_params.L": 50, "model_params.num_heads": 1, "model_params.dropout": 0.2,
              "train.loss": "softmax", "train.lr": 2e-3, "train.weight_decay": 0.0}
# label -> (preset, settings); SASRec puts examples of similar lengths into a batch and cuts its padding
MODELS = {"caser d2l": ("d2l", {}), "caser tuned": ("tuned", {}),
          "sasrec": ("sasrec", SASREC_L50 | {"train.batch_order": "by-length"})}

PHASES = """
import json, resource, sys, time
from pathlib import Path
import numpy as np

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

path, preset, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = {}
started = time.perf_counter()
from seqrec.data.readers import read_log
log = read_log(Path(path))
out["ingest"] = (time.perf_counter() - started, peak_mb())
from seqrec import api
from seqrec.models.registry import MODELS
from seqrec.pipeline import split_for
from seqrec.training import make_regime
cfg = api.resolve_run_config(preset, None, {"data.path": path, "eval.protocols": ["loo-full"], "train.epochs": 1,
                                            "train.early_stopping_metric": None} | overrides)
started = time.perf_counter()
spec = MODELS[cfg.model]
_, split, _ = split_for(log, cfg)
regime = make_regime(spec.regime, cfg.train, log.num_items, np.bincount(split.train.items, minlength=log.num_items + 1))
examples = regime.examples(split.train, spec.history(cfg.model_params))
out["examples"] = (time.perf_counter() - started, peak_mb())
result = api.train(log, cfg, progress=False)
out["train_epoch"] = (result.timings["train_seconds"], peak_mb())
out["evaluate"] = (result.timings["eval_seconds"], peak_mb())
out["windows_per_second"] = result.timings["train_windows_per_second"]
out["hr@10"] = result.metrics["loo-full"]["hr@10"]
out["sizes"] = [len(log), log.num_users, log.num_items]
print(json.dumps(out))
"""


def measure(path: Path, preset: str, overrides: dict, limit: float | None) -> dict | None:
    """The phases' times and peaks, or None when the run took longer than `limit` seconds."""
    try:
        done = subprocess.run([sys.executable, "-c", PHASES, str(path), preset, json.dumps(overrides)],
                              capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode:
        sys.exit(f"{preset} on {path.name} failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cell(phase: list[float]) -> str:
    return f"{phase[0]:.1f} ({phase[1]:,.0f})"


def _row_line(r: dict) -> str:
    events, users, items = r["sizes"]
    if "ingest" not in r:
        return f"| {events:,} | {users:,} | {items:,} | {r['model']} | not finished in {r['limit']:.0f} s | | | | |"
    cells = [f"{events:,}", f"{users:,}", f"{items:,}", r["model"], _cell(r["ingest"]), _cell(r["examples"]),
             f"{r['train_epoch'][0]:.1f} ({r['windows_per_second']:,.0f})", _cell(r["evaluate"]), f"{r['hr@10']:.4f}"]
    return "| " + " | ".join(cells) + " |"


def markdown(rows: list[dict]) -> str:
    head = ("| events | users | items | model | ingest s (peak MB) | examples s (peak MB) | epoch s (windows/s) | "
            "evaluate s (peak MB) | HR@10 |")
    return "\n".join([head, "|" + "---|" * 9, *map(_row_line, rows)])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model and "ingest" in r]
        if not mine:
            continue
        events = [r["sizes"][0] for r in mine]
        for phase, style in (("train_epoch", "-o"), ("evaluate", "--s")):
            left.loglog(events, [r[phase][0] for r in mine], style, label=f"{model}: {phase.replace('_', ' ')}")
        right.loglog(events, [r["evaluate"][1] for r in mine], "-o", label=model)
    first = [r for r in rows if r["model"] == rows[0]["model"] and "ingest" in r]
    left.loglog([r["sizes"][0] for r in first], [r["ingest"][0] + r["examples"][0] for r in first], ":^",
                label="ingest + examples")
    left.set(xlabel="events", ylabel="seconds", title="time (2 CPU cores)")
    right.set(xlabel="events", ylabel="peak RSS, MB", title="peak memory of the whole run")
    left.legend(fontsize=7, loc="upper left")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6,1e7")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "scale")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--limit", type=float, default=None, help="seconds allowed per measured run (default: none)")
    parser.add_argument("--add", action="store_true", help="keep OUT/scale.json's rows of other sizes")
    args = parser.parse_args()
    from seqrec.data.synthetic import write_synthetic

    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    kept = json.loads((args.out / "scale.json").read_text()) if args.add else []
    rows = [r for r in kept if r["sizes"][0] not in sizes]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            users, items = size // 20, min(size // 100, 100_000)
            path = Path(tmp) / f"log-{size}.parquet"
            started = time.perf_counter()
            write_synthetic(path, size, users, items, seed=0)
            print(f"{size:,} events: generated in {time.perf_counter() - started:.1f} s", flush=True)
            for model, (preset, settings) in MODELS.items():
                shared = items >= LARGE_CATALOGUE and preset != "d2l"
                row = measure(path, preset, settings | (SHARED if shared else {}), args.limit)
                row = row or {"sizes": [size, users, items], "limit": args.limit}
                row["model"] = model + (" (shared negatives)" if shared else "")
                rows.append(row)
                print(markdown([row]).splitlines()[-1], flush=True)
    rows.sort(key=lambda r: r["sizes"][0])
    (args.out / "scale.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown(rows)
    (args.out / "scale.md").write_text(table + "\n")
    plot(rows, args.out / "scale.png")
    print(table)
    if not args.no_readme:
        chart = (args.out / "scale.png").relative_to(REPO)
        replace_section("scale", f"`python benchmarks/bench_scale.py` on 2 CPU cores (seconds, peak RSS of the "
                                 f"process in MB):\n\n{table}\n\n![scale]({chart})")


if __name__ == "__main__":
    main()
