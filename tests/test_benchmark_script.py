"""scripts/benchmark_datasets.py: searches, runs, tables, and a second invocation that reads everything back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_datasets.py"


def run_benchmark(out: Path, *more: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), "--datasets", "synthetic-sessions", "--models",
                           "pop,markov,bprmf", "--tune", "markov,bprmf", "--trials", "1", "--seeds", "0,1",
                           "--no-readme", "--out", str(out), *more],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_benchmark_tunes_runs_resumes_without_training_again_and_publishes_what_has_finished(tmp_path):
    nothing = run_benchmark(tmp_path, "--finished-only")
    assert "Nothing has finished yet: markov's search, bprmf's search, pop, markov, bprmf." in nothing
    first = run_benchmark(tmp_path)
    assert "trial 0 [1 of 1 here" in first and "synthetic-sessions markov:tuned-here seed 1" in first
    table = (tmp_path / "synthetic-sessions-loo-full" / "compare.md").read_text()
    assert all(f"| {label} |" in table for label in ("pop", "markov", "bprmf", "markov:tuned-here"))
    # one trial: the preset itself. BPR-MF's search base is its preset, so its row is not trained twice; the
    # counter's base adds early stopping on validation, so its best differs from the preset by that setting
    assert "| bprmf:tuned-here |" not in table
    second = run_benchmark(tmp_path)                  # every search and run is read back
    assert "of 1 here" not in second and "seed 0:" not in second
    assert "markov (1 trial in " in second and "best valid/loo-full/ndcg@10 0." in second
    assert "; its best is the preset)" in second.partition("bprmf (")[2]
    assert (tmp_path / "synthetic-sessions-loo-full" / "compare.md").read_text() == table
    summary_path = tmp_path / "synthetic-sessions-loo-full" / "tune" / "markov" / "tune.json"
    summary = json.loads(summary_path.read_text())          # as a second sitting of 2 trials would leave it
    summary_path.write_text(json.dumps(summary | {"sittings": [*summary["sittings"], {"trials": 2, "seconds": 60.0}]}))
    resumed = run_benchmark(tmp_path).partition("markov (")[2]
    assert resumed.startswith("3 trials in 1m ") and "s (2 sittings), best valid" in resumed.partition(";")[0]
    dataset = tmp_path / "synthetic-sessions-loo-full"
    for label in ("bprmf", "markov"):                                # both runs' folders are gone ...
        (dataset / "runs" / label / "seed-1" / "metrics.json").unlink()
    kept_table = json.loads((dataset / "compare.json").read_text())  # ... and the table keeps bprmf's record only
    kept_table["runs"] = [run for run in kept_table["runs"] if (run["label"], run["seed"]) != ("markov", 1)]
    (dataset / "compare.json").write_text(json.dumps(kept_table))
    partial = run_benchmark(tmp_path, "--finished-only")            # nothing trains
    assert "seed 1:" not in partial and "Not finished yet, so not shown: markov (seed 0 finished)." in partial
    shown = (dataset / "compare.md").read_text()
    assert "| markov |" not in shown and "| bprmf |" in shown and "| markov:tuned-here |" in shown
    (dataset / "runs" / "markov" / "seed-0" / "metrics.json").unlink()  # the finished seed outlives its folder
    assert [(run["label"], run["seed"]) for run in json.loads((dataset / "compare.json").read_text())["waiting"]] \
        == [("markov", 0)]
    assert "Not finished yet, so not shown: markov (seed 0 finished)." in run_benchmark(tmp_path, "--finished-only")
    retrained = run_benchmark(tmp_path, "--tune", "")                # only the seed left trains
    assert "synthetic-sessions markov seed 1:" in retrained and "markov seed 0:" not in retrained
    assert "waiting" not in json.loads((dataset / "compare.json").read_text())


def test_a_search_reads_the_finished_seed_0_run_of_its_preset_as_its_first_trial(tmp_path):
    run_benchmark(tmp_path, "--tune", "")                       # the presets' runs, no search
    searched = run_benchmark(tmp_path, "--tune", "bprmf")
    run = tmp_path / "synthetic-sessions-loo-full" / "runs" / "bprmf" / "seed-0"
    assert f"trial 0: read from the finished run {run}: valid/loo-full/ndcg@10 0." in searched
    assert "trial 1 [1 of 1 here" in searched and "bprmf (2 trials in " in searched
    assert "(2 sittings), 1 of them read from a finished run, best valid" in searched
