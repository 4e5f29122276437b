"""fit(): a short, model-agnostic, seeded training loop; the regime says what a batch's loss is."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor, nn

from seqrec.config import TrainConfig
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import Windows
from seqrec.errors import SeqrecError
from seqrec.losses import FULL_LOSSES
from seqrec.training.checkpoint import TrainState, capture
from seqrec.training.regimes import Batch, Regime

EpochCallback = Callable[[int, nn.Module], "dict[str, float] | None"]


class DivergenceError(SeqrecError):
    """The training loss became NaN or infinite."""


STOP = "stop"   # a callback returning {STOP: True, ...} ends training after this epoch


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


def fit(model: nn.Module, regime: Regime, examples: Windows, sampler: NegativeSampler | None, cfg: TrainConfig,
        seed: int, on_epoch_end: EpochCallback | None = None, progress: bool | None = None,
        resume: TrainState | None = None, checkpoint: Callable[[TrainState], None] | None = None) -> History:
    """Adam with L2 weight decay; each epoch shuffles the examples and redraws their negatives.

    A sampled loss (bpr, hinge, bce, sampled-softmax) gets `regime.negatives_per_example` negatives
    per example from `sampler`, drawn for the whole epoch; a full loss (softmax) draws none (sampler
    None). `regime.batch_loss` turns each batch into the loss. A counting regime is fitted by one
    `fit_counts` pass over the examples instead of epochs. The same seed gives the same numbers.

    progress: a bar (True), nothing (False), or (None) a bar on a terminal and else one line per epoch.
    checkpoint(state) is called after each epoch; `resume` (such a state) continues after its epoch
    exactly as if training had not stopped. A NaN or infinite epoch loss raises DivergenceError.
    """
    device = resolve_device(cfg.device)
    # Subnormal floats (weights and gradients decaying towards 0) make CPU arithmetic many times slower
    # late in training (Caser with softmax: 2.3 s -> 14 s per epoch); flushing them to zero changes no
    # result we measured. This is process-wide and applies to the CPU only.
    torch.set_flush_denormal(True)
    model.to(device)
    users, inputs, targets = (torch.as_tensor(a, device=device)
                              for a in (examples.users, examples.inputs, examples.targets))
    if regime.counting:
        return _fit_counts(model, users, inputs, targets)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    rng, history = np.random.default_rng(seed), History()
    if resume is not None:
        model.load_state_dict(resume.model)
        opt.load_state_dict(resume.optimizer)
        rng.bit_generator.state = resume.rng
        torch.set_rng_state(resume.torch_rng)
        history.epochs = list(resume.history)
    first = 1 if resume is None else (cfg.epochs + 1 if resume.done else resume.epoch + 1)
    full = cfg.loss in FULL_LOSSES
    per_example = regime.negatives_per_example(examples)
    show = sys.stderr.isatty() if progress is None else progress
    lines, begun = progress is None and not show, time.perf_counter()
    with _progress(show) as bar:
        task = bar.add_task("train", total=cfg.epochs * len(examples), epoch=0, loss=float("nan"), rate=0.0)
        bar.update(task, completed=(first - 1) * len(examples))
        for epoch in range(first, cfg.epochs + 1):
            model.train()
            started = time.perf_counter()
            order = torch.as_tensor(rng.permutation(len(examples)), device=device)
            negatives = (None if full else
                         torch.as_tensor(sampler.sample(examples.users, per_example, rng), device=device))
            total, seen = torch.zeros((), device=device), 0
            for start in range(0, len(examples), cfg.batch_size):
                idx = order[start: start + cfg.batch_size]
                batch = Batch(users[idx], inputs[idx], targets[idx], None if negatives is None else negatives[idx])
                loss = regime.batch_loss(model, batch, rng)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * len(idx)
                seen += len(idx)
                rate = seen / (time.perf_counter() - started)
                bar.update(task, advance=len(idx), epoch=epoch, loss=loss.item() if show else 0.0, rate=rate)
            mean_loss = (total / max(seen, 1)).item()
            if not math.isfinite(mean_loss):
                raise DivergenceError(f"training diverged in epoch {epoch}: the mean loss is {mean_loss} (lower "
                                       f"train.lr, now {cfg.lr:g}, or check the data); nothing was written")
            record = {"epoch": epoch, "loss": mean_loss, "windows": seen,
                      "train_seconds": time.perf_counter() - started}
            if on_epoch_end is not None:
                record |= on_epoch_end(epoch, model) or {}
            stop = record.pop(STOP, False)
            history.epochs.append(record)
            if lines:
                print(_epoch_line(record, cfg.epochs, time.perf_counter() - begun), file=sys.stderr, flush=True)
            if checkpoint is not None:
                checkpoint(capture(epoch, history.epochs, model, opt, rng.bit_generator.state,
                                   done=stop or epoch == cfg.epochs))
            if stop:
                break
    return history


def _epoch_line(record: dict[str, float], epochs: int, elapsed: float) -> str:
    """'epoch 3/20: loss 0.1234, 250,000 windows/s, valid/loo-full/ndcg@10 0.1043, 12 s elapsed'."""
    rate = record["windows"] / record["train_seconds"] if record["train_seconds"] else 0.0
    metrics = [f"{k} {v:.4f}" for k, v in record.items() if "/" in k and k.endswith(("ndcg@10", "map", "mrr@10",
                                                                                       "hit@50"))]
    return ", ".join([f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}", f"{rate:,.0f} windows/s",
                      *metrics, f"{elapsed:.0f} s elapsed"])


def _fit_counts(model: nn.Module, users: Tensor, inputs: Tensor, targets: Tensor) -> History:
    started = time.perf_counter()
    model.fit_counts(users, inputs, targets)
    return History([{"epoch": 1, "windows": len(users), "train_seconds": time.perf_counter() - started}])
