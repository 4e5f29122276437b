"""Human-readable tables of a run's results; every metric row names its protocol."""

from __future__ import annotations

from rich.table import Table

from seqrec.runs import TrainResult

# What the book printed for its run (D2L 17.7, `d2l` protocol): hit rate is Hit@50.
BOOK_FIGURES = {("d2l", "hit@50"): 0.397, ("d2l", "auc"): 0.753}
SHOWN = {"d2l": ("hit@50", "auc"), "d2l-fixed": ("hit@50", "auc", "hr@10", "ndcg@10", "mrr")}


def results_table(result: TrainResult) -> Table:
    dataset = result.dataset.get("name", "?")
    table = Table(title=f"seqrec: {result.config.model} on {dataset} (seed {result.config.seed})")
    for column in ("protocol", "metric", "seqrec", "book"):
        table.add_column(column, justify="left" if column in ("protocol", "metric") else "right")
    for protocol, metrics in result.metrics.items():
        shown = [n for n in SHOWN.get(protocol, ()) if n in metrics] or [n for n in metrics if not n.startswith("hit@")]
        for name in shown:
            book = BOOK_FIGURES.get((protocol, name))
            table.add_row(protocol, name, f"{metrics[name]:.3f}", "" if book is None else f"{book:.3f}")
    t, losses = result.timings, [e["loss"] for e in result.history if "loss" in e]
    table.add_section()
    if losses:
        table.add_row("train", "mean loss, last epoch", f"{losses[-1]:.4f}", "")
    table.add_row("train", "windows/s", f"{t['train_windows_per_second']:,.0f}", "")
    for name in ("prepare", "train", "eval", "total"):
        table.add_row("time", f"{name} seconds", f"{t[f'{name}_seconds']:.2f}", "")
    return table
