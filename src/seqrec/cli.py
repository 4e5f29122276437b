"""The `seqrec` command: a thin typed layer over seqrec.api. Errors print as one line, exit code 2."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from seqrec import api, exercises, experiments
from seqrec.bundle import BUNDLE_SUBDIR
from seqrec.config import RunConfig, parse_assignment, resolve_run_config
from seqrec.data.interactions import Interactions
from seqrec.errors import SeqrecError
from seqrec.report import results_table

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Sequence-aware (next-item) recommendation.")
console = Console()


@app.callback()
def _root() -> None:
    """Sequence-aware (next-item) recommendation: train, evaluate, compare, recommend, serve."""


Data = Annotated[str | None, typer.Option(help="An interaction log file (see --format) or a known dataset "
                                                 "name (ml-100k, the default).")]
Format = Annotated[str | None, typer.Option("--format", help="csv | tsv | parquet | sequences (default: from "
                                                                  "the file extension).")]
UserCol = Annotated[str | None, typer.Option(help="User column (default: user).")]
ItemCol = Annotated[str | None, typer.Option(help="Item column (default: item).")]
TimeCol = Annotated[str | None, typer.Option(help="Time column (default: none, file order is time order).")]
RatingCol = Annotated[str | None, typer.Option(help="Rating column (needed by --min-rating).")]
MinRating = Annotated[float | None, typer.Option(help="Keep events with rating >= this.")]
KCore = Annotated[int | None, typer.Option(help="Iterative k-core: every user and item keeps >= K events.")]
Protocol = Annotated[str | None, typer.Option(help="Evaluation protocol(s), comma separated: d2l, d2l-fixed, "
                                                      "loo-full (default), loo-sampled, caser-paper.")]
DataDir = Annotated[Path | None, typer.Option(help="Local copy of the dataset (else $SEQREC_DATA_DIR, else "
                                                      "download to the cache).")]
Epochs = Annotated[int | None, typer.Option()]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Any setting: KEY=VALUE, e.g. "
                                                   "train.weight_decay=0 or model_params.dropout=0.1.")]
Progress = Annotated[bool | None, typer.Option(help="Progress bar (default: when on a terminal).")]


def data_overrides(data: str | None, fmt: str | None, user_col: str | None, item_col: str | None,
                   time_col: str | None, rating_col: str | None, min_rating: float | None, k_core: int | None,
                   data_dir: Path | None, protocol: str | None) -> dict[str, object]:
    """The data and protocol flags shared by train and compare, as setting overrides."""
    overrides: dict[str, object] = api.data_source(data) if data is not None else {}
    return overrides | {"data.format": fmt, "data.user_col": user_col, "data.item_col": item_col,
                        "data.time_col": time_col, "data.rating_col": rating_col, "data.min_rating": min_rating,
                        "data.k_core": k_core, "data.data_dir": None if data_dir is None else str(data_dir),
                        "eval.protocols": None if protocol is None else [p.strip() for p in protocol.split(",")]}


@app.command()
def train(
    preset: Annotated[str | None, typer.Option(help="Named settings: d2l (the book), paper (the Caser paper), "
                                                    "sasrec, gru4rec, bprmf, markov, pop.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file of settings (applied over the preset).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (default: the preset's, else caser).")] = None,
    data: Data = None, format_: Format = None, user_col: UserCol = None, item_col: ItemCol = None,
    time_col: TimeCol = None, rating_col: RatingCol = None, min_rating: MinRating = None, k_core: KCore = None,
    data_dir: DataDir = None, protocol: Protocol = None,
    seed: Annotated[int | None, typer.Option(help="The one seed for everything.")] = None,
    epochs: Epochs = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    loss: Annotated[str | None, typer.Option(help="bpr | hinge | bce | sampled-softmax | softmax.")] = None,
    L: Annotated[int | None, typer.Option("--L", "-L", help="Window length (model setting L).")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda.")] = None,
    early_stopping_metric: Annotated[str | None, typer.Option(help="Validation metric to stop on, e.g. "
                                                                      "ndcg@10 (keeps the best epoch).")] = None,
    patience: Annotated[int | None, typer.Option(help="Epochs without improvement before stopping.")] = None,
    set_: Sets = None,
    out: Annotated[Path, typer.Option(help="Output folder for metrics.json and the model bundle (OUT/bundle).")
                   ] = Path("runs/latest"),
    progress: Progress = None,
) -> None:
    """Train a model, evaluate it under each protocol, print a table, write OUT/metrics.json and OUT/bundle."""
    overrides = data_overrides(data, format_, user_col, item_col, time_col, rating_col, min_rating, k_core, data_dir,
                               protocol)
    overrides |= {"model": model, "seed": seed, "train.epochs": epochs, "train.lr": lr,
                  "train.batch_size": batch_size, "train.loss": loss, "model_params.L": L, "train.device": device,
                  "train.early_stopping_metric": early_stopping_metric, "train.patience": patience}
    overrides |= dict(parse_assignment(item) for item in set_ or [])
    run = resolve_run_config(preset, config, overrides)
    log = api.load_dataset(run.data)
    result = api.train(log, run, progress=progress)
    path = result.write(out)
    bundle = api.save_bundle(result, out / BUNDLE_SUBDIR)
    console.print(results_table(result))
    if result.dataset.get("dropped_users"):
        console.print(f"dropped {result.dataset['dropped_users']} users with too few events for the protocol")
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {path} and the bundle {bundle}")


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


@app.command()
def serve(
    bundle: BundleOption,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    events: Annotated[Path | None, typer.Option(help="SQLite event store (default: events.sqlite next to "
                                                        "the bundle folder).")] = None,
    token: Annotated[str | None, typer.Option(envvar="SEQREC_TOKEN", show_default=False,
                                                 help="Require 'Authorization: Bearer TOKEN' on POST /events.")] = None,
    threads: Annotated[int, typer.Option(help="PyTorch threads per request (1 suits many small requests).")] = 1,
) -> None:
    """Serve recommendations over HTTP (POST /recommend, POST /events, GET /health; docs at /docs)."""
    import torch
    import uvicorn

    from seqrec.service import create_app

    api.load_bundle(bundle)                 # fail here with one line, not inside the server's start-up
    torch.set_num_threads(threads)
    uvicorn.run(create_app(bundle, events, token), host=host, port=port, log_level="warning", access_log=False)


@app.command()
def export(
    bundle: BundleOption,
    out: Annotated[Path, typer.Option(help="File to write.")],
    format_: Annotated[str, typer.Option("--format", help="torchscript | onnx.")] = "torchscript",
) -> None:
    """Write the scoring function (users, seqs) -> scores to TorchScript or ONNX, to serve without seqrec."""
    from seqrec.export import export as export_model

    console.print(f"wrote {export_model(api.load_bundle(bundle), out, format_)}")


@app.command()
def compare(
    models: Annotated[str, typer.Option(help="Comma separated: MODEL, MODEL:PRESET or a TOML config file, e.g. "
                                             "caser:d2l,caser:paper,sasrec.")],
    data: Data = None, format_: Format = None, user_col: UserCol = None, item_col: ItemCol = None,
    time_col: TimeCol = None, rating_col: RatingCol = None, min_rating: MinRating = None, k_core: KCore = None,
    data_dir: DataDir = None, protocol: Protocol = "loo-full",
    seeds: Annotated[str, typer.Option(help="Comma separated seeds, e.g. 0,1,2.")] = "0,1,2",
    epochs: Epochs = None, set_: Sets = None,
    out: Annotated[Path, typer.Option(help="Output folder for compare.json, compare.md, compare.png.")] = Path(
        "runs/compare"),
    progress: Progress = None,
) -> None:
    """Train and evaluate each model with each seed on one dataset and protocol; write tables and a chart."""
    overrides = data_overrides(data, format_, user_col, item_col, time_col, rating_col, min_rating, k_core, data_dir,
                               protocol)
    overrides |= {"train.epochs": epochs} | dict(parse_assignment(item) for item in set_ or [])
    configs = experiments.parse_model_specs(models, overrides)
    seed_list = experiments.parse_seeds(seeds)
    log = api.load_dataset(next(iter(configs.values())).data)
    table = experiments.run_grid(configs, seed_list, log, progress=progress,
                                 on_run=lambda label, seed, r: console.print(
                                     f"{label} seed {seed}: {r.timings['train_seconds']:.1f} s"))
    paths = experiments.write_comparison(table, out)
    typer.echo(experiments.markdown_table(table))
    console.print(f"wrote {', '.join(map(str, paths))}")


Seeds = Annotated[str, typer.Option(help="Comma separated seeds, e.g. 0,1,2.")]
PresetOption = Annotated[str | None, typer.Option(help="Named settings for the base model.")]
ConfigOption = Annotated[Path | None, typer.Option(help="TOML file of settings (applied over the preset).")]


def _grid_report(configs: dict[str, RunConfig], seeds: str, log: Interactions, out_dir: Path, stem: str,
                 progress: bool | None,
                 plot: Callable[[experiments.GridTable, Path], Path] = experiments.plot_comparison,
                 note: Callable[[experiments.GridTable], str] | None = None) -> None:
    """Run a grid of (config, seed), write STEM.json / .md / .png into out_dir, print the table (and note)."""
    table = experiments.run_grid(configs, experiments.parse_seeds(seeds), log, progress=progress,
                                 on_run=lambda label, seed, r: console.print(
                                     f"{label} seed {seed}: {r.timings['train_seconds']:.1f} s"))
    text = note(table) if note else ""
    paths = experiments.write_comparison(table, out_dir, stem, plot, text)
    typer.echo(experiments.markdown_table(table) + (f"\n{text}\n" if text else ""))
    console.print(f"wrote {', '.join(map(str, paths))}")


@app.command()
def ablation(
    preset: PresetOption = "d2l", config: ConfigOption = None,
    data: Data = None, format_: Format = None, user_col: UserCol = None, item_col: ItemCol = None,
    time_col: TimeCol = None, rating_col: RatingCol = None, min_rating: MinRating = None, k_core: KCore = None,
    data_dir: DataDir = None, protocol: Protocol = "d2l-fixed,loo-full", seeds: Seeds = "0,1,2",
    epochs: Epochs = None, set_: Sets = None,
    out: Annotated[Path, typer.Option(help="Output folder: OUT/PROTOCOL/ablation.{json,md,png}.")] = Path(
        "runs/ablation"),
    progress: Progress = None,
) -> None:
    """Caser with each part removed (horizontal, vertical, both convolutions, user embedding), per protocol."""
    log = None
    for name in [p.strip() for p in (protocol or "").split(",") if p.strip()]:
        overrides = data_overrides(data, format_, user_col, item_col, time_col, rating_col, min_rating, k_core,
                                   data_dir, name)
        overrides |= {"train.epochs": epochs} | dict(parse_assignment(item) for item in set_ or [])
        base = resolve_run_config(preset, config, overrides)
        log = log or api.load_dataset(base.data)
        _grid_report(exercises.ablation_configs(base), seeds, log, out / name, "ablation", progress,
                     note=exercises.importance_sentence)


@app.command()
def sweep(
    param: Annotated[str, typer.Option(help="The setting to vary: a name (L, lr, embedding_dim) or a dotted path "
                                            "(train.batch_size).")],
    values: Annotated[str, typer.Option(help="1..10 (an integer range) or a comma separated list.")],
    model: Annotated[str | None, typer.Option(help="Model name (default: the preset's).")] = None,
    preset: PresetOption = "d2l", config: ConfigOption = None,
    data: Data = None, format_: Format = None, user_col: UserCol = None, item_col: ItemCol = None,
    time_col: TimeCol = None, rating_col: RatingCol = None, min_rating: MinRating = None, k_core: KCore = None,
    data_dir: DataDir = None, protocol: Protocol = "loo-full", seeds: Seeds = "0,1,2",
    epochs: Epochs = None, set_: Sets = None,
    out: Annotated[Path, typer.Option(help="Output folder for sweep.json, sweep.md, sweep.png.")] = Path(
        "runs/sweep"),
    progress: Progress = None,
) -> None:
    """Train with each value of one setting over several seeds; metric and training time against the value."""
    overrides = data_overrides(data, format_, user_col, item_col, time_col, rating_col, min_rating, k_core, data_dir,
                               protocol)
    overrides |= {"model": model, "train.epochs": epochs} | dict(parse_assignment(item) for item in set_ or [])
    base = resolve_run_config(preset, config, overrides)
    value_list = exercises.parse_values(values)
    configs = exercises.sweep_configs(base, param, value_list)
    _grid_report(configs, seeds, api.load_dataset(base.data), out, "sweep", progress,
                 plot=lambda table, path: exercises.plot_sweep(table, param, value_list, path))


@app.command()
def sessions(
    models: Annotated[str, typer.Option(help="Comma separated MODEL or MODEL:PRESET (see compare).")] = (
        "caser:caser-session,pop,markov,gru4rec"),
    session_gap: Annotated[str | None, typer.Option(help="Cut each user's log into sessions after this much "
                                                         "inactivity: 1800, 30m, 2h (default: users are sessions)."
                                                    )] = None,
    data: Data = None, format_: Format = None, user_col: UserCol = None, item_col: ItemCol = None,
    time_col: TimeCol = None, rating_col: RatingCol = None, min_rating: MinRating = None, k_core: KCore = None,
    data_dir: DataDir = None, seeds: Seeds = "0,1,2", epochs: Epochs = None, set_: Sets = None,
    out: Annotated[Path, typer.Option(help="Output folder for sessions.json, sessions.md, sessions.png.")] = Path(
        "runs/sessions"),
    progress: Progress = None,
) -> None:
    """Session-based recommendation: models trained on sessions and evaluated with the `session` protocol.

    Sessions come from the user column (e.g. --user-col session_id) or are cut by --session-gap.
    """
    overrides = data_overrides(data, format_, user_col, item_col, time_col, rating_col, min_rating, k_core, data_dir,
                               "session")
    gap = None if session_gap is None else exercises.parse_duration(session_gap)
    overrides |= {"data.session_gap": gap, "train.epochs": epochs} | dict(parse_assignment(s) for s in set_ or [])
    configs = experiments.parse_model_specs(models, overrides)
    _grid_report(configs, seeds, api.load_dataset(next(iter(configs.values())).data), out, "sessions", progress)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        app()
    except SeqrecError as err:
        print(f"seqrec: error: {err}", file=sys.stderr)
        sys.exit(2)
