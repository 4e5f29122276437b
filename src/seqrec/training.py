"""fit(): a short, model-agnostic, seeded training loop over windows with sampled negatives."""

from __future__ import annotations

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
from seqrec.losses import FULL_LOSSES, SAMPLED_LOSSES
from seqrec.models.base import CountingRecommender, PositionwiseRecommender

EpochCallback = Callable[[int, nn.Module], "dict[str, float] | None"]
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


def fit(model: nn.Module, windows: Windows, sampler: NegativeSampler, cfg: TrainConfig, seed: int,
        on_epoch_end: EpochCallback | None = None, progress: bool | None = None) -> History:
    """Adam with L2 weight decay; each epoch shuffles the windows and redraws their negatives.

    Per batch, a sampled loss (bpr, hinge, bce, sampled-softmax) scores targets and negatives in
    one call, scores = model.score(users, inputs, [targets, negatives]) -> (B, T + N), and takes
    loss(scores[:, :T], scores[:, T:]); a full loss (softmax) takes loss(model.score_all(users,
    inputs), targets) and draws no negatives. A PositionwiseRecommender is scored at every
    position of its windows (`targets[:, t]` follows `inputs[:, t]`; 0 means no target there) and
    gets num_negatives per position. A CountingRecommender is fitted by one `fit_counts` pass
    over the windows instead of epochs. The same seed gives the same numbers.
    """
    device = resolve_device(cfg.device)
    # Subnormal floats (weights and gradients decaying towards 0) make CPU arithmetic many times slower
    # late in training (Caser with softmax: 2.3 s -> 14 s per epoch); flushing them to zero changes no
    # result we measured. This is process-wide and applies to the CPU only.
    torch.set_flush_denormal(True)
    model.to(device)
    users, inputs, targets = (torch.as_tensor(a, device=device)
                              for a in (windows.users, windows.inputs, windows.targets))
    if isinstance(model, CountingRecommender):
        return _fit_counts(model, users, inputs, targets)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    rng, history = np.random.default_rng(seed), History()
    full = cfg.loss in FULL_LOSSES
    per_window = cfg.num_negatives * (targets.size(1) if isinstance(model, PositionwiseRecommender) else 1)
    show = sys.stderr.isatty() if progress is None else progress
    with _progress(show) as bar:
        task = bar.add_task("train", total=cfg.epochs * len(windows), epoch=0, loss=float("nan"), rate=0.0)
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            started = time.perf_counter()
            order = torch.as_tensor(rng.permutation(len(windows)), device=device)
            negatives = None if full else torch.as_tensor(sampler.sample(windows.users, per_window, rng), device=device)
            total, seen = torch.zeros((), device=device), 0
            for start in range(0, len(windows), cfg.batch_size):
                idx = order[start: start + cfg.batch_size]
                loss = _batch_loss(model, cfg.loss, users[idx], inputs[idx], targets[idx],
                                   None if negatives is None else negatives[idx])
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
            stop = record.pop(STOP, False)
            history.epochs.append(record)
            if stop:
                break
    return history


def _batch_loss(model: nn.Module, loss: str, users: Tensor, inputs: Tensor, targets: Tensor,
                negatives: Tensor | None) -> Tensor:
    """The loss of one batch; a PositionwiseRecommender's P supervised positions become P rows."""
    if isinstance(model, PositionwiseRecommender):
        if negatives is None:                                                          # target 0 is ignored
            return FULL_LOSSES[loss](model.score_all_positions(users, inputs), targets.unsqueeze(2))
        valid = targets != 0                                                           # (B, L)
        items = torch.cat([targets.unsqueeze(2), negatives.view(*targets.shape, -1)], 2)   # (B, L, 1 + N)
        scores = model.score_positions(users, inputs, items)[valid]                    # (P, 1 + N)
        return SAMPLED_LOSSES[loss](scores[:, :1], scores[:, 1:])
    if negatives is None:
        return FULL_LOSSES[loss](model.score_all(users, inputs), targets)
    scores = model.score(users, inputs, torch.cat([targets, negatives], 1))            # (B, T + N)
    return SAMPLED_LOSSES[loss](scores[:, : targets.size(1)], scores[:, targets.size(1):])


def _fit_counts(model: CountingRecommender, users: Tensor, inputs: Tensor, targets: Tensor) -> History:
    started = time.perf_counter()
    model.fit_counts(users, inputs, targets)
    return History([{"epoch": 1, "windows": len(users), "train_seconds": time.perf_counter() - started}])
