"""fit(): a short, model-agnostic, seeded training loop over windows with sampled negatives."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from seqrec.config import TrainConfig
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import Windows
from seqrec.losses import LOSSES

EpochCallback = Callable[[int, nn.Module], "dict[str, float] | None"]


@dataclass
class History:
    """Per epoch: mean training loss, seconds spent training, and whatever the callback returned."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    @property
    def train_seconds(self) -> float:
        return sum(e["train_seconds"] for e in self.epochs)

    @property
    def windows_seen(self) -> int:
        return int(sum(e["windows"] for e in self.epochs))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                    TextColumn("{task.fields[rate]:,.0f} windows/s"), TimeElapsedColumn(),
                    disable=not enabled, transient=False)


def fit(model: nn.Module, windows: Windows, sampler: NegativeSampler, cfg: TrainConfig, seed: int,
        on_epoch_end: EpochCallback | None = None, progress: bool | None = None) -> History:
    """Adam with L2 weight decay; each epoch shuffles the windows and redraws their negatives.

    Per batch: scores = model.score(users, inputs, [targets, negatives]) -> (B, T + N), and
    loss = LOSSES[cfg.loss](scores[:, :T], scores[:, T:]). The same seed gives the same numbers.
    """
    device = resolve_device(cfg.device)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    rng, loss_fn, history = np.random.default_rng(seed), LOSSES[cfg.loss], History()
    users, inputs, targets = (torch.as_tensor(a, device=device)
                              for a in (windows.users, windows.inputs, windows.targets))
    show = sys.stderr.isatty() if progress is None else progress
    with _progress(show) as bar:
        task = bar.add_task("train", total=cfg.epochs * len(windows), epoch=0, loss=float("nan"), rate=0.0)
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            started = time.perf_counter()
            order = torch.as_tensor(rng.permutation(len(windows)), device=device)
            negatives = torch.as_tensor(sampler.sample(windows.users, cfg.num_negatives, rng), device=device)
            total, seen = torch.zeros((), device=device), 0
            for start in range(0, len(windows), cfg.batch_size):
                idx = order[start: start + cfg.batch_size]
                scores = model.score(users[idx], inputs[idx], torch.cat([targets[idx], negatives[idx]], 1))
                loss = loss_fn(scores[:, : cfg.T], scores[:, cfg.T:])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * len(idx)
                seen += len(idx)
                rate = seen / (time.perf_counter() - started)
                bar.update(task, advance=len(idx), epoch=epoch, loss=loss.item() if show else 0.0, rate=rate)
            record = {"epoch": epoch, "loss": (total / max(seen, 1)).item(), "windows": seen,
                      "train_seconds": time.perf_counter() - started}
            if on_epoch_end is not None:
                record |= on_epoch_end(epoch, model) or {}
            history.epochs.append(record)
    return history
