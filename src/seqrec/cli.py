"""The `seqrec` command: a thin typed layer over seqrec.api. Errors print as one line, exit code 2."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from seqrec import api
from seqrec.bundle import BUNDLE_SUBDIR
from seqrec.config import parse_assignment, resolve_run_config
from seqrec.errors import SeqrecError
from seqrec.report import results_table

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Sequence-aware (next-item) recommendation.")
console = Console()


@app.callback()
def _root() -> None:
    """Sequence-aware (next-item) recommendation: train, evaluate, compare, recommend, serve."""


@app.command()
def train(
    preset: Annotated[Optional[str], typer.Option(help="Named settings, e.g. d2l (the book's experiment).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML file of settings (applied over the preset).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Local copy of the dataset (else $SEQREC_DATA_DIR, "
                                                          "else download to the cache).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="The one seed for everything.")] = None,
    epochs: Annotated[Optional[int], typer.Option()] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[Optional[int], typer.Option()] = None,
    loss: Annotated[Optional[str], typer.Option(help="bpr | hinge | bce.")] = None,
    L: Annotated[Optional[int], typer.Option("--L", "-L", help="Window length (model setting L).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto | cpu | cuda.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any setting: KEY=VALUE, e.g. "
                                                      "train.weight_decay=0 or model_params.dropout=0.1.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder for metrics.json and the model bundle (OUT/bundle).")
                   ] = Path("runs/latest"),
    progress: Annotated[Optional[bool], typer.Option(help="Progress bar (default: when on a terminal).")] = None,
) -> None:
    """Train a model, evaluate it under each protocol, print a table, write OUT/metrics.json and OUT/bundle."""
    overrides = {"data.data_dir": None if data_dir is None else str(data_dir), "seed": seed, "train.epochs": epochs,
                 "train.lr": lr, "train.batch_size": batch_size, "train.loss": loss, "model_params.L": L,
                 "train.device": device}
    overrides |= dict(parse_assignment(item) for item in set_ or [])
    run = resolve_run_config(preset, config, overrides)
    result = api.train(api.load_dataset(run.data), run, progress=progress)
    path = result.write(out)
    bundle = api.save_bundle(result, out / BUNDLE_SUBDIR)
    console.print(results_table(result))
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


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        app()
    except SeqrecError as err:
        print(f"seqrec: error: {err}", file=sys.stderr)
        sys.exit(2)
