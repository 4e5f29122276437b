"""The `seqrec` command: a thin typed layer over seqrec.api. Errors print as one line, exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from seqrec import api
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
    preset: Annotated[Optional[str], typer.Option(help="Named settings: d2l (the book), paper (the Caser "
                                                       "paper), sasrec, gru4rec, bprmf, markov, pop.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML file of settings (applied over the preset).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Local copy of the dataset (else $SEQREC_DATA_DIR, "
                                                          "else download to the cache).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="The one seed for everything.")] = None,
    epochs: Annotated[Optional[int], typer.Option()] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[Optional[int], typer.Option()] = None,
    loss: Annotated[Optional[str], typer.Option(help="bpr | hinge | bce | sampled-softmax | softmax.")] = None,
    L: Annotated[Optional[int], typer.Option("--L", "-L", help="Window length (model setting L).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto | cpu | cuda.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any setting: KEY=VALUE, e.g. "
                                                      "train.weight_decay=0 or model_params.dropout=0.1.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder for metrics.json.")] = Path("runs/latest"),
    progress: Annotated[Optional[bool], typer.Option(help="Progress bar (default: when on a terminal).")] = None,
) -> None:
    """Train a model, evaluate it under each protocol, print a table and write OUT/metrics.json."""
    overrides = {"data.data_dir": None if data_dir is None else str(data_dir), "seed": seed, "train.epochs": epochs,
                 "train.lr": lr, "train.batch_size": batch_size, "train.loss": loss, "model_params.L": L,
                 "train.device": device}
    overrides |= dict(parse_assignment(item) for item in set_ or [])
    run = resolve_run_config(preset, config, overrides)
    result = api.train(api.load_dataset(run.data), run, progress=progress)
    path = result.write(out)
    console.print(results_table(result))
    console.print(f"wrote {path}")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        app()
    except SeqrecError as err:
        print(f"seqrec: error: {err}", file=sys.stderr)
        sys.exit(2)
