"""Every model on every public dataset under `loo-full`: the presets, and settings tuned on each dataset.

    python scripts/benchmark_datasets.py [--datasets ml-100k,ml-1m,ml-latest-small,amazon-video-games]
        [--models pop,markov,...] [--tune caser:tuned,sasrec,...] [--trials 20] [--timeout 2h]
        [--seeds 0,1,2] [--out docs/results/datasets] [--no-readme] [--finished-only]

Per dataset: `seqrec tune` searches each --tune model's space on the validation cases only (seed 0; the preset
is the first trial, so a search never ends below it, and when the preset's seed-0 run has finished that run is
read as the trial instead of training it again), then every preset of --models and every tuned setting
that differs from its preset (to 4 significant digits, as presets keep a search's best; labelled
MODEL:tuned-here) trains with every seed and is tested once. Finished searches
(OUT/DATASET/tune/LABEL/best.toml) and finished runs (a run folder's metrics.json, else the record
OUT/DATASET/compare.json keeps of a run with the same settings) are read back, and an
interrupted run continues from its checkpoint, so an interrupted benchmark resumes where it stopped; with
--finished-only nothing is searched or trained, and the tables show the models whose every seed has finished
and name the rest (compare.json keeps their finished seeds' records as "waiting", so a fresh checkout that
lacks the run folders trains only the seeds left).
Writes OUT/DATASET/compare.{json,md,png} and the README section `datasets` (one table per dataset, with how long
each search took). Local copies of the datasets come from the usual variables ($SEQREC_DATA_DIR,
$SEQREC_ML1M_DIR, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from readme_section import publish

from seqrec import api, experiments
from seqrec.config import RunConfig
from seqrec.data.interactions import Interactions
from seqrec.settings import resolve_run_config
from seqrec.tuning import TuneOptions, base_trial, search_base, search_space, sittings_of, tune
from seqrec.tuning.outputs import duration

REPO = Path(__file__).resolve().parents[1]
DATASETS = "ml-100k,ml-1m,ml-latest-small,amazon-video-games"
MODELS = "pop,markov,bprmf,gru4rec,sasrec,bert4rec,caser:d2l,caser:paper,caser:tuned"
TUNED = "markov,bprmf,gru4rec,sasrec,bert4rec,caser:tuned"


def search_finished(out_dir: Path) -> bool:
    """Whether OUT holds a finished search (its summary and best settings)."""
    return (out_dir / "tune.json").is_file() and (out_dir / "best.toml").is_file()


def tuned_config(log: Interactions, base: RunConfig, out_dir: Path, options: TuneOptions,
                 from_runs: tuple[Path, ...] = ()) -> tuple[RunConfig, str]:
    """The best settings a search on the validation cases found (read back when OUT holds a finished search; else
    searched, reading `from_runs` as trials), and what the search did: trials, time, best validation value."""
    if not search_finished(out_dir):
        own, outside = base_trial(base, search_space(base.model))
        result = tune(log, base, out_dir, dataclasses.replace(options, enqueue=() if outside else (own,),
                                                              from_runs=from_runs))
        print(result.summary(), flush=True)
    summary = json.loads((out_dir / "tune.json").read_text())
    sittings = sittings_of(summary)
    trials, read = sum(sitting["trials"] for sitting in sittings), sum("run" in sitting for sitting in sittings)
    read_text = f", {read} of them read from {'a finished run' if read == 1 else 'finished runs'}" if read else ""
    search = (f"{trials} trial{'s' * (trials != 1)} in {duration(sum(sitting['seconds'] for sitting in sittings))}"
              f"{f' ({len(sittings)} sittings)' if len(sittings) > 1 else ''}{read_text}, best "
              f"{summary['metric']} {summary['best']['value']:.4f}")
    return resolve_run_config(None, out_dir / "best.toml"), search


def as_written(config: RunConfig) -> dict[str, Any]:
    """The config's settings with every float to 4 significant digits, as a preset holds a search's best."""
    def rounded(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: rounded(inner) for key, inner in value.items()}
        return float(f"{value:.4g}") if isinstance(value, float) else value
    return rounded(config.to_dict())


def benchmark(dataset: str, args: argparse.Namespace) -> str:
    """Tune, run the grid, write OUT/DATASET/compare.*; the dataset's README text."""
    overrides = {"data.dataset": dataset, "eval.protocols": ["loo-full"]}
    configs = experiments.parse_model_specs(args.models, overrides)
    log = api.load_dataset(next(iter(configs.values())).data)
    out_dir = args.out / f"{dataset}-loo-full"
    options = TuneOptions(trials=args.trials, timeout=args.timeout, final=False)
    searches, missing, seeds = [], [], experiments.parse_seeds(args.seeds)
    tuned = experiments.parse_model_specs(args.tune, overrides | {"seed": 0}) if args.tune.strip() else {}
    for label, base in tuned.items():
        search_dir = out_dir / "tune" / label.replace(":", "-")
        if args.finished_only and not search_finished(search_dir):
            missing.append(f"{label}'s search")
            continue
        preset_run = experiments.run_folder(out_dir, label, base.seed)
        reusable = label in configs and experiments.finished_record(preset_run, search_base(base), label)
        from_runs = (preset_run,) if reusable else ()
        config, search = tuned_config(log, base, search_dir, options, from_runs)
        if label in configs and as_written(dataclasses.replace(configs[label], seed=config.seed)) == as_written(config):
            search += "; its best is the preset"          # its row is the preset's: nothing more to train
        else:
            configs[f"{label.partition(':')[0]}:tuned-here"] = config
        searches.append(f"{label} ({search})")
    waiting: list[experiments.RunRecord] = []
    if args.finished_only:
        for label, config in list(configs.items()):
            finished = [record for seed in seeds if (record := experiments.recorded_run(
                out_dir, label, dataclasses.replace(config, seed=seed))) is not None]
            if len(finished) < len(seeds):
                del configs[label]
                waiting += finished
                done = f" (seed{'s' * (len(finished) > 1)} {', '.join(str(r.seed) for r in finished)} finished)"
                missing.append(label + (done if finished else ""))
        if not configs:
            return f"#### {dataset}\n\nNothing has finished yet: {', '.join(missing)}.\n"
    table = experiments.run_grid(configs, seeds, log, out_dir, reuse=True,
                                 on_run=lambda label, seed, r: print(f"{dataset} {label} seed {seed}: "
                                                                     f"{r.timings['train_seconds']:.1f} s", flush=True))
    table.waiting = waiting
    paths = experiments.write_comparison(table, out_dir)
    chart = paths[2].relative_to(REPO) if paths[2].is_relative_to(REPO) else paths[2]
    tuning = ("Searches on the validation cases (seed 0; trial 0 is the preset the search started from): "
              + "; ".join(searches) + ".") if searches else ""
    if missing:
        tuning = f"{tuning} Not finished yet, so not shown: {', '.join(missing)}.".lstrip()
    return f"#### {dataset}\n\n{experiments.markdown_table(table)}\n{tuning}\n\n![{dataset}]({chart})\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--models", default=MODELS, help=f"presets to run as they are (default: {MODELS})")
    parser.add_argument("--tune", default=TUNED, help=f"presets to tune per dataset (default: {TUNED}; '' for none)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds per search")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "datasets")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--finished-only", action="store_true",
                        help="search and train nothing: tables of what has finished, naming what has not")
    args = parser.parse_args()
    sections = [benchmark(dataset, args) for dataset in args.datasets.split(",")]
    text = "\n".join(sections) + (f"\nSeeds {args.seeds}. Searches and runs finished earlier are read back with the "
                                  "seconds measured when they ran (`train s`: one run's training).")
    publish("datasets", text, readme=not args.no_readme)


if __name__ == "__main__":
    main()
