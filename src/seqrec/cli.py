"""The `seqrec` command: a thin typed layer over seqrec.api. Errors print as one line, exit code 2.

Options that set a run setting are declared once (`SettingOption`) and shared by every command
that trains; their help texts list what the registries hold, so they cannot drift.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from seqrec import api, exercises, experiments
from seqrec.config import RunConfig, parse_assignment
from seqrec.data.catalog import DATASETS
from seqrec.data.interactions import Interactions
from seqrec.data.readers import FORMATS
from seqrec.errors import SeqrecError
from seqrec.evaluation.protocols import PROTOCOLS
from seqrec.export import FORMATS as EXPORT_FORMATS
from seqrec.export import export as export_model
from seqrec.losses import LOSS_NAMES
from seqrec.models.registry import MODELS, PRESETS
from seqrec.report import results_table
from seqrec.runs import check_run_folder
from seqrec.training.distributed import launched_as_main

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Sequence-aware (next-item) recommendation.")
console = Console()


@app.callback()
def _root() -> None:
    """Sequence-aware (next-item) recommendation: train, evaluate, compare, recommend, serve."""


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


PRESET_HELP = "Named settings: " + _names([f"{name} ({preset['model']})" for name, preset in PRESETS.items()]) + "."
PROTOCOL_HELP = f"Evaluation protocol(s), comma separated: {_names(list(PROTOCOLS))}."
MODEL_HELP = f"Model: {_names(list(MODELS))} (default: the preset's, else caser)."


@dataclasses.dataclass(frozen=True)
class SettingOption:
    """A command-line option that sets run settings: `to_settings(value)` -> {dotted setting: value}."""

    name: str                           # the command's parameter name
    kind: Any                           # Annotated[type | None, typer.Option(...)]
    to_settings: Callable[[Any], dict[str, Any]]
    default: Any = None

    def parameter(self) -> inspect.Parameter:
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=self.default,
                                 annotation=self.kind)


def _setting(name: str, path: str, kind: type, help_text: str, *flags: str, default: Any = None) -> SettingOption:
    return SettingOption(name, Annotated[kind | None, typer.Option(*flags, help=help_text)],
                         lambda value: {path: value}, default)


def _protocol(default: str | None) -> SettingOption:
    return SettingOption("protocol", Annotated[str | None, typer.Option(help=PROTOCOL_HELP)],
                         lambda value: {"eval.protocols": None if value is None else
                                        [p.strip() for p in value.split(",") if p.strip()]}, default)


DATA_OPTIONS = (
    SettingOption("data", Annotated[str | None, typer.Option(
        help=f"An interaction log file (see --format) or a known dataset: {_names(list(DATASETS))} "
             "(default: ml-100k).")], lambda value: {} if value is None else api.data_source(value)),
    _setting("format_", "data.format", str, f"{' | '.join(FORMATS)} (default: from the file extension).", "--format"),
    _setting("user_col", "data.user_col", str, "User column (default: user)."),
    _setting("item_col", "data.item_col", str, "Item column (default: item)."),
    _setting("time_col", "data.time_col", str, "Time column (default: none, file order is time order)."),
    _setting("rating_col", "data.rating_col", str, "Rating column (needed by --min-rating)."),
    _setting("min_rating", "data.min_rating", float, "Keep events with rating >= this."),
    _setting("k_core", "data.k_core", int, "Iterative k-core: every user and item keeps >= K events."),
    SettingOption("data_dir", Annotated[Path | None, typer.Option(
        help="Local copy of the dataset (else $SEQREC_DATA_DIR, else download to the cache).")],
                  lambda value: {"data.data_dir": None if value is None else str(value)}),
)
EPOCHS = _setting("epochs", "train.epochs", int, "Training epochs.")
SETS = SettingOption("set_", Annotated[list[str] | None, typer.Option(
    "--set", help="Any setting: KEY=VALUE, e.g. train.weight_decay=0 or model_params.dropout=0.1.")],
                     lambda values: dict(parse_assignment(item) for item in values or []))
TRAIN_OPTIONS = (
    _setting("model", "model", str, MODEL_HELP),
    _setting("seed", "seed", int, "The one seed for everything."),
    EPOCHS,
    _setting("lr", "train.lr", float, "Learning rate."),
    _setting("batch_size", "train.batch_size", int, "Training batch size."),
    _setting("loss", "train.loss", str, f"{' | '.join(LOSS_NAMES)}."),
    _setting("L", "model_params.L", int, "History length (model setting L).", "--L", "-L"),
    _setting("device", "train.device", str, "auto | cpu | cuda."),
    _setting("early_stopping_metric", "train.early_stopping_metric", str,
             "Validation metric to stop on, e.g. ndcg@10 (keeps the best epoch)."),
    _setting("patience", "train.patience", int, "Epochs without improvement before stopping."),
)


def with_settings(*options: SettingOption) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add `options` to a command; it receives their values merged as `overrides` ({dotted setting: value}).

    The options come after the command's own, in the order given; `--set` should come last so that
    it wins over the named options.
    """
    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "overrides"]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            overrides: dict[str, Any] = {}
            for option in options:
                overrides |= option.to_settings(kwargs.pop(option.name))
            command(overrides=overrides, **kwargs)

        parameters = own + [option.parameter() for option in options]
        wrapper.__signature__ = inspect.Signature(parameters)              # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper
    return decorate


Progress = Annotated[bool | None, typer.Option(help="Progress bar (default: on a terminal; else a line per epoch).")]
Threads = Annotated[int | None, typer.Option(help="PyTorch threads (default: PyTorch's, one per core). Results "
                                                  "depend on it in the last digits.", show_default=False)]


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise SeqrecError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
PresetOption = Annotated[str | None, typer.Option(help=PRESET_HELP)]
ConfigOption = Annotated[Path | None, typer.Option(help="TOML file of settings (applied over the preset).")]
Seeds = Annotated[str, typer.Option(help="Comma separated seeds, e.g. 0,1,2.")]
ModelSpecs = Annotated[str, typer.Option(help="Comma separated: MODEL, MODEL:PRESET or a TOML config file; models: "
                                              f"{_names(list(MODELS))}; presets: {_names(list(PRESETS))}.")]


@app.command()
@with_settings(*DATA_OPTIONS, _protocol(None), *TRAIN_OPTIONS, SETS)
def train(
    overrides: dict[str, Any],
    preset: PresetOption = None,
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Output folder for metrics.json and the model bundle (OUT/bundle); "
                                           "OUT/checkpoint holds the last finished epoch while training.")
                   ] = Path("runs/latest"),
    resume: Annotated[Path | None, typer.Option(help="Continue the interrupted run in this folder from its last "
                                                     "checkpoint, with its own settings (other options are "
                                                     "ignored).")] = None,
    threads: Threads = None,
    progress: Progress = None,
) -> None:
    """Train a model, evaluate it under each protocol, print a table, write OUT/metrics.json and OUT/bundle."""
    set_threads(threads)
    if resume is not None:
        cfg, state = api.interrupted(resume)
        out = resume
    else:
        cfg, state = api.resolve_run_config(preset, config, overrides), None
        check_run_folder(out)                      # before the data is read, not after training
    result = api.run(api.load_dataset(cfg.data), cfg, out, progress, state)
    if not launched_as_main():
        return
    console.print(results_table(result))
    if result.dataset.get("dropped_users"):
        console.print(f"dropped {result.dataset['dropped_users']} users with too few events for the protocol")
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {out / 'metrics.json'} and the bundle {out / 'bundle'}")


BundleOption = Annotated[Path, typer.Option("--bundle", help="A bundle folder, or a run folder holding bundle/.")]


@app.command()
def recommend(
    bundle: BundleOption,
    user: Annotated[list[str] | None, typer.Option(help="External user id (repeat for several users).")] = None,
    items: Annotated[str | None, typer.Option(help="Recent item ids, comma separated, oldest first; they replace "
                                                      "the users' stored histories.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many items per user.")] = 10,
    include_seen: Annotated[bool, typer.Option(help="Allow items the user has already interacted with.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of tables.")] = False,
) -> None:
    """Top-k next items for known users (their stored history), recent items, or both."""
    loaded = api.load_bundle(bundle)
    sequence = [i.strip() for i in items.split(",") if i.strip()] if items else None
    users = user or None
    sequences = None if sequence is None else [sequence] * (len(users) if users else 1)
    for rec in api.recommend(loaded, users, sequences, k=k, exclude_seen=not include_seen):
        if as_json:
            typer.echo(json.dumps(dataclasses.asdict(rec)))
            continue
        table = Table(title=f"user {rec.user}" if rec.user is not None else "recent items " + ", ".join(sequence or []))
        for column in ("rank", "item", "score", "title"):
            table.add_column(column)
        titles = rec.titles or [""] * len(rec.items)
        for rank, (item, score, title) in enumerate(zip(rec.items, rec.scores, titles, strict=True), start=1):
            table.add_row(str(rank), str(item), f"{score:.4f}", title)
        console.print(table)
        if rec.unknown_items:
            console.print(f"left out unknown item(s): {', '.join(map(str, rec.unknown_items))}")


@app.command()
def serve(
    bundle: BundleOption,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    events: Annotated[Path | None, typer.Option(help="SQLite event store (default: events.sqlite next to "
                                                        "the bundle folder).")] = None,
    token: Annotated[str | None, typer.Option(envvar="SEQREC_TOKEN", show_default=False,
                                                 help="Require 'Authorization: Bearer TOKEN' on POST /events.")] = None,
    protect_recommend: Annotated[bool, typer.Option(help="Require the token on POST /recommend too (it reveals "
                                                         "a user's history).")] = False,
    max_body_bytes: Annotated[int | None, typer.Option(help="Largest request body; larger ones get 413 "
                                                            "(default: 2 MiB).", show_default=False)] = None,
    threads: Annotated[int, typer.Option(help="PyTorch threads per request (1 suits many small requests).")] = 1,
) -> None:
    """Serve recommendations over HTTP (POST /recommend, POST /events, GET /health; docs at /docs)."""
    import os

    import torch
    import uvicorn

    from seqrec.service.app import create_app, open_store

    if not 1 <= port <= 65535:
        raise SeqrecError(f"--port must be between 1 and 65535, got {port}")
    if threads < 1:
        raise SeqrecError(f"--threads must be at least 1, got {threads}")
    if token is None:                       # click reads SEQREC_TOKEN="" as unset; an empty token must fail instead
        token = os.environ.get("SEQREC_TOKEN")
    service = create_app(bundle, events, token, protect_recommend=protect_recommend, max_body_bytes=max_body_bytes)
    api.load_bundle(bundle)                 # fail here with one line, not inside the server's start-up
    open_store(bundle, events).close()      # likewise for a read-only store or one of another bundle
    torch.set_num_threads(threads)
    uvicorn.run(service, host=host, port=port, log_level="warning", access_log=False)


@app.command()
def export(
    bundle: BundleOption,
    out: Annotated[Path, typer.Option(help="File to write.")],
    format_: Annotated[str, typer.Option("--format", help=f"{' | '.join(EXPORT_FORMATS)}.")] = "torchscript",
) -> None:
    """Write the scoring function (users, seqs) -> scores to TorchScript or ONNX, to serve without seqrec."""
    console.print(f"wrote {export_model(api.load_bundle(bundle), out, format_)}")


def _grid_report(configs: dict[str, RunConfig], seeds: str, log: Interactions, out_dir: Path, stem: str,
                 progress: bool | None,
                 plot: Callable[[experiments.GridTable, Path], Path] = experiments.plot_comparison,
                 note: Callable[[experiments.GridTable], str] | None = None, reuse: bool = False) -> None:
    """Run a grid of (config, seed), write STEM.json / .md / .png into out_dir (and each run's folder under
    out_dir/runs), print the table (and note)."""
    table = experiments.run_grid(configs, experiments.parse_seeds(seeds), log, out_dir, progress=progress,
                                 on_run=lambda label, seed, r: console.print(
                                     f"{label} seed {seed}: {r.timings['train_seconds']:.1f} s"),
                                 reuse=reuse, stem=stem)
    text = note(table) if note else ""
    paths = experiments.write_comparison(table, out_dir, stem, plot, text)
    typer.echo(experiments.markdown_table(table) + (f"\n{text}\n" if text else ""))
    console.print(f"wrote {', '.join(map(str, paths))}")


def _data_of(configs: dict[str, RunConfig]) -> Interactions:
    return api.load_dataset(next(iter(configs.values())).data)


@app.command()
@with_settings(*DATA_OPTIONS, _protocol("loo-full"), EPOCHS, SETS)
def compare(
    overrides: dict[str, Any],
    models: ModelSpecs,
    seeds: Seeds = "0,1,2",
    out: Annotated[Path, typer.Option(help="Output folder for compare.json, compare.md, compare.png.")] = Path(
        "runs/compare"),
    progress: Progress = None,
    reuse: Annotated[bool, typer.Option(help="Read the runs OUT already holds with the same settings (seed "
                                             "included) instead of training them again.")] = False,
) -> None:
    """Train and evaluate each model with each seed on one dataset and protocol; write tables and a chart."""
    configs = experiments.parse_model_specs(models, overrides)
    _grid_report(configs, seeds, _data_of(configs), out, "compare", progress, reuse=reuse)


@app.command()
@with_settings(*DATA_OPTIONS, EPOCHS, SETS)
def ablation(
    overrides: dict[str, Any],
    preset: PresetOption = "d2l", config: ConfigOption = None,
    protocol: Annotated[str, typer.Option(help=PROTOCOL_HELP + " One ablation per protocol.")] = "d2l-fixed,loo-full",
    seeds: Seeds = "0,1,2",
    out: Annotated[Path, typer.Option(help="Output folder: OUT/PROTOCOL/ablation.{json,md,png}.")] = Path(
        "runs/ablation"),
    progress: Progress = None,
) -> None:
    """Caser with each part removed (horizontal, vertical, both convolutions, user embedding), per protocol."""
    log = None
    for name in [p.strip() for p in protocol.split(",") if p.strip()]:
        base = api.resolve_run_config(preset, config, overrides | {"eval.protocols": [name]})
        log = log or api.load_dataset(base.data)
        _grid_report(exercises.ablation_configs(base), seeds, log, out / name, "ablation", progress,
                     note=exercises.importance_sentence)


@app.command()
@with_settings(*DATA_OPTIONS, _protocol("loo-full"), _setting("model", "model", str, MODEL_HELP), EPOCHS, SETS)
def sweep(
    overrides: dict[str, Any],
    param: Annotated[str, typer.Option(help="The setting to vary: a name (L, lr, embedding_dim) or a dotted path "
                                            "(train.batch_size).")],
    values: Annotated[str, typer.Option(help="1..10 (an integer range) or a comma separated list.")],
    preset: PresetOption = "d2l", config: ConfigOption = None, seeds: Seeds = "0,1,2",
    out: Annotated[Path, typer.Option(help="Output folder for sweep.json, sweep.md, sweep.png.")] = Path(
        "runs/sweep"),
    progress: Progress = None,
) -> None:
    """Train with each value of one setting over several seeds; metric and training time against the value."""
    base = api.resolve_run_config(preset, config, overrides)
    value_list = exercises.parse_values(values)
    configs = exercises.sweep_configs(base, param, value_list)
    _grid_report(configs, seeds, api.load_dataset(base.data), out, "sweep", progress,
                 plot=lambda table, path: exercises.plot_sweep(table, param, value_list, path))


@app.command()
@with_settings(*DATA_OPTIONS, EPOCHS, SETS)
def sessions(
    overrides: dict[str, Any],
    models: ModelSpecs = "caser:caser-session,pop,markov,gru4rec",
    session_gap: Annotated[str | None, typer.Option(help="Cut each user's log into sessions after this much "
                                                         "inactivity: 1800, 30m, 2h (default: users are sessions)."
                                                    )] = None,
    seeds: Seeds = "0,1,2",
    out: Annotated[Path, typer.Option(help="Output folder for sessions.json, sessions.md, sessions.png.")] = Path(
        "runs/sessions"),
    progress: Progress = None,
) -> None:
    """Session-based recommendation: models trained on sessions and evaluated with the `session` protocol.

    Sessions come from the user column (e.g. --user-col session_id) or are cut by --session-gap.
    """
    gap = None if session_gap is None else exercises.parse_duration(session_gap)
    configs = experiments.parse_model_specs(models, {"eval.protocols": ["session"], "data.session_gap": gap}
                                            | overrides)
    _grid_report(configs, seeds, _data_of(configs), out, "sessions", progress)


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Log file to write: .parquet, .csv or .tsv (columns user, item, time, "
                                           "in time order); the report goes to OUT with suffix .json.")],
    events: Annotated[int, typer.Option(help="Number of events (at least 3 per user).")] = 100_000,
    users: Annotated[int, typer.Option(help="Number of users.")] = 5_000,
    items: Annotated[int, typer.Option(help="Number of items (at least 10).")] = 1_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same arguments write the same log.")] = 0,
) -> None:
    """Write a synthetic log with planted point and union rules, and the best HR@10 those rules allow."""
    from seqrec.data.synthetic import write_synthetic

    typer.echo(f"{write_synthetic(out, events, users, items, seed).describe()}; wrote {out} and "
               f"{out.with_suffix('.json')}")


@app.command()
@with_settings(*DATA_OPTIONS, _protocol(None), *(o for o in TRAIN_OPTIONS if o.name != "early_stopping_metric"), SETS)
def tune(
    overrides: dict[str, Any],
    preset: Annotated[str | None, typer.Option(help=PRESET_HELP + " The search's base (default: the preset named "
                                                                  "after the model, if any).")] = None,
    config: ConfigOption = None,
    trials: Annotated[int | None, typer.Option(help="Trials this process runs (each process joining the study "
                                                    "runs its own; 0: write the stored study's report "
                                                    "only).")] = None,
    timeout: Annotated[str | None, typer.Option(help="Search this long: 1800, 30m, 2h (a trial still training then "
                                                     "is cut at the end of its epoch).")] = None,
    metric: Annotated[str | None, typer.Option(help="Validation metric to maximise, e.g. ndcg@10 (default: "
                                                    "train.early_stopping_metric, else the protocol's).")] = None,
    params: Annotated[str | None, typer.Option(help="Sample only these settings, comma separated, e.g. "
                                                    "train.lr,model_params.L (default: the model's search space "
                                                    "less the settings given as flags, which stay fixed).")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL that every process tuning the study "
                                                     "shares (default: sqlite:///OUT/study.sqlite).")] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: the model's).")] = None,
    prune: Annotated[bool, typer.Option(help="Stop a trial whose validation value is below the median of "
                                             "earlier trials at the same epoch.")] = True,
    prune_after: Annotated[int, typer.Option(help="Finished trials before pruning starts.")] = 5,
    prune_warmup: Annotated[int, typer.Option(help="Epochs every trial trains before it may be pruned.")] = 1,
    base_first: Annotated[bool, typer.Option(help="Try the base settings (preset, config, flags) as the first "
                                                  "trial, so the search never ends below them.")] = True,
    from_run: Annotated[list[Path] | None, typer.Option(metavar="DIR",
                                                        help="Folder of a finished run (`seqrec train --out`) of "
                                                             "one point of the search space, with the same seed "
                                                             "and data: it becomes that point's trial, read, not "
                                                             "trained again. Repeatable.")] = None,
    final: Annotated[bool, typer.Option(help="Train the best settings once more into OUT/best and evaluate "
                                             "them on the test cases (the only time test data are read).")] = True,
    out: Annotated[Path, typer.Option(help="Output folder: best.toml, trials.csv/.md, history.png, "
                                           "importance.png, tune.json, best/ (and study.sqlite by default).")
                   ] = Path("runs/tune"),
    threads: Threads = None,
    progress: Progress = None,
) -> None:
    """Search a model's settings on validation data (Optuna TPE, median pruning); the best is trained into OUT/best."""
    from seqrec import tuning
    from seqrec.settings import preset_for

    set_threads(threads)
    options = tuning.TuneOptions(trials, None if timeout is None else exercises.parse_duration(timeout), storage,
                                 study, tuple(p.strip() for p in (params or "").split(",") if p.strip()),
                                 tuple(k for k, v in overrides.items() if v is not None), prune, prune_after,
                                 prune_warmup, from_runs=tuple(from_run or ()), final=final)
    if preset is None and overrides.get("model") is not None:
        preset = preset_for(overrides["model"])
    base = tuning.search_base(api.resolve_run_config(preset, config, overrides), metric)
    space = tuning.search_space(base.model, options.params, options.fixed)
    tuning.check_conditions(base, space)
    for folder in options.from_runs:
        tuning.read_run(folder, base, space, tuning.searched_metric(base))
    if base_first:
        own, outside = tuning.base_trial(base, space)
        if outside:
            typer.echo(f"the base settings are not a point of the search space ({outside[0]}): the search starts "
                       "from sampled trials", err=True)
        else:
            options = dataclasses.replace(options, enqueue=(own,))
    tuning.check_out(out, final)                   # all before the data is read
    result = tuning.tune(api.load_dataset(base.data), base, out, options, progress)
    typer.echo(result.summary())


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        app()
    except SeqrecError as err:
        print(f"seqrec: error: {err}", file=sys.stderr)
        sys.exit(2)
