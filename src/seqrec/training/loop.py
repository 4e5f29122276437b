"""fit(): a short, model-agnostic, seeded training loop; the regime says what a batch's loss is."""

from __future__ import annotations

import contextlib
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
from seqrec.training.checkpoint import TrainState, capture
from seqrec.training.distributed import ONE_PROCESS, Ranks, device_for, shard, sum_over_ranks
from seqrec.training.regimes import Batch, DeviceExamples, Regime

EpochCallback = Callable[[int, nn.Module], "dict[str, float] | None"]


class DivergenceError(SeqrecError):
    """The training loss became NaN or infinite."""


STOP = "stop"   # a callback returning {STOP: True, ...} ends training after this epoch
SORTED_TOGETHER = 50   # train.batch_order=by-length sorts runs of this many batches by example size


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
    """auto: the GPU when there is one (this process's own under torchrun), else the CPU."""
    name = device_for(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                    TextColumn("{task.fields[rate]:,.0f} windows/s"), TimeElapsedColumn(),
                    disable=not enabled, transient=False)


class _Step(nn.Module):
    """One batch's loss as `forward`, so DistributedDataParallel sees the model used and syncs its gradients."""

    def __init__(self, model: nn.Module, regime: Regime) -> None:
        super().__init__()
        self.model, self.regime = model, regime

    def forward(self, batch: Batch, rng: np.random.Generator) -> Tensor:
        return self.regime.batch_loss(self.model, batch, rng)


def _autocast(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16)


def fit(model: nn.Module, regime: Regime, examples: Windows, sampler: NegativeSampler | None, cfg: TrainConfig,
        seed: int, on_epoch_end: EpochCallback | None = None, progress: bool | None = None,
        resume: TrainState | None = None, checkpoint: Callable[[TrainState], None] | None = None,
        ranks: Ranks = ONE_PROCESS) -> History:
    """Adam with L2 weight decay; each epoch shuffles the examples and draws negatives batch by batch.

    A sampled loss (bpr, hinge, bce, sampled-softmax) gets `regime.negatives_per_example` negatives
    per example from `sampler`; a full loss (softmax) draws none (sampler None). `regime.batch_loss`
    turns each batch into the loss. A counting regime is fitted by one `fit_counts` pass over the
    examples instead of epochs. The same seed gives the same numbers.

    Examples stay on the device as offsets (seqrec.data.sequences.Windows) and are gathered per batch;
    the only host-device traffic per step is the batch's sampled negatives. train.precision bf16/fp16
    runs the forward pass under autocast (fp16 with gradient scaling). Under torchrun (`ranks`), each
    rank trains every world-th example of the shared shuffle with batch_size / world examples per step.
    train.batch_order=by-length groups examples of similar sizes into batches (`by_length`) and cuts each
    batch to its longest example, for models whose scores ignore leading padding (spec.cuts_padding); a
    batch's mean loss is then weighted by its supervised positions per example over the epoch's mean, so
    each position weighs what it weighs in shuffled batches (unweighted, batches of short examples would
    count as much as batches of long ones: HR@10 0.079 against 0.099 on Amazon Video Games).
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
    if regime.counting:
        return _fit_counts(model, examples, device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    shuffle, history = np.random.default_rng(seed), History()
    if resume is not None:
        model.load_state_dict(resume.model)
        opt.load_state_dict(resume.optimizer)
        shuffle.bit_generator.state = resume.rng
        torch.set_rng_state(resume.torch_rng)
        history.epochs = list(resume.history)
    step = _Step(model, regime)
    if ranks.world > 1:
        step = nn.parallel.DistributedDataParallel(step, device_ids=[device] if device.type == "cuda" else None)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    data = DeviceExamples(examples, device)
    first = 1 if resume is None else (cfg.epochs + 1 if resume.done else resume.epoch + 1)
    per_example = regime.negatives_per_example(examples) if sampler is not None else 0
    batch_size = max(cfg.batch_size // ranks.world, 1)
    sizes = examples.sizes if cfg.batch_order == "by-length" else None
    supervised = None if sizes is None else regime.supervised(sizes)           # (W,) positions with a loss
    mean = None if supervised is None else float(supervised.mean())
    show = (sys.stderr.isatty() if progress is None else progress) and ranks.main
    lines, begun = progress is None and not show and ranks.main, time.perf_counter()
    with _progress(show) as bar:
        task = bar.add_task("train", total=cfg.epochs * len(examples), epoch=0, loss=float("nan"), rate=0.0)
        bar.update(task, completed=(first - 1) * len(examples))
        for epoch in range(first, cfg.epochs + 1):
            model.train()
            started = time.perf_counter()
            order = shuffle.permutation(len(examples))
            if sizes is not None:
                order = by_length(order, sizes, cfg.batch_size, shuffle)
            order = shard(order, ranks)
            # one process draws everything from the seed's generator; ranks draw from their own
            rng = shuffle if ranks.world == 1 else np.random.default_rng((seed, ranks.rank, epoch))
            order_on_device = torch.as_tensor(order, device=device)
            total, seen = torch.zeros((), device=device), 0
            for start in range(0, len(order), batch_size):
                rows, host_rows = order_on_device[start: start + batch_size], order[start: start + batch_size]
                negatives = None if sampler is None else _to(
                    sampler.sample(examples.users[host_rows], per_example, rng), device)
                width = None if sizes is None else int(sizes[host_rows].max())
                with _autocast(cfg, device):
                    loss = step(data.batch(rows, negatives, width), rng)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss if supervised is None else loss * (supervised[host_rows].mean() / mean)).backward()
                scaler.step(opt)
                scaler.update()
                total += loss.detach().float() * len(rows)
                seen += len(rows)
                rate = seen / (time.perf_counter() - started)
                bar.update(task, advance=len(rows) * ranks.world, epoch=epoch, rate=rate * ranks.world,
                           loss=loss.item() if show else 0.0)
            total, count = sum_over_ranks(torch.stack([total, torch.tensor(float(seen), device=device)]), ranks)
            mean_loss = (total / count.clamp(min=1)).item()
            if not math.isfinite(mean_loss):
                raise DivergenceError(f"training diverged in epoch {epoch}: the mean loss is {mean_loss} (lower "
                                      f"train.lr, now {cfg.lr:g}, or check the data); nothing was written")
            record = {"epoch": epoch, "loss": mean_loss, "windows": int(count.item()),
                      "train_seconds": time.perf_counter() - started}
            if on_epoch_end is not None:
                record |= on_epoch_end(epoch, model) or {}
            stop = record.pop(STOP, False)
            history.epochs.append(record)
            if lines:
                print(_epoch_line(record, cfg.epochs, time.perf_counter() - begun), file=sys.stderr, flush=True)
            if checkpoint is not None and ranks.main:
                checkpoint(capture(epoch, history.epochs, model, opt, shuffle.bit_generator.state,
                                   done=stop or epoch == cfg.epochs))
            if stop:
                break
    return history


def by_length(order: np.ndarray, sizes: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """A shuffled example order (W,) -> the same examples in batches of similar sizes (W,): each run of
    SORTED_TOGETHER batches is sorted by example size (stable), then the full batches are shuffled (a last
    partial batch stays last, so every batch still starts at a multiple of batch_size)."""
    position = np.arange(len(order))
    grouped = order[np.lexsort((sizes[order], position // (batch_size * SORTED_TOGETHER)))]
    full = len(order) // batch_size
    slot = np.r_[rng.permutation(full), full]                                       # each batch's new place
    return grouped[np.argsort(slot[position // batch_size], kind="stable")]


def _to(array: np.ndarray, device: torch.device) -> Tensor:
    """A host array on the device; through pinned memory and without waiting when the device is a GPU."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def _epoch_line(record: dict[str, float], epochs: int, elapsed: float) -> str:
    """'epoch 3/20: loss 0.1234, 250,000 windows/s, valid/loo-full/ndcg@10 0.1043, 12 s elapsed'."""
    rate = record["windows"] / record["train_seconds"] if record["train_seconds"] else 0.0
    metrics = [f"{k} {v:.4f}" for k, v in record.items() if "/" in k and k.endswith(("ndcg@10", "map", "mrr@10",
                                                                                       "hit@50"))]
    return ", ".join([f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}", f"{rate:,.0f} windows/s",
                      *metrics, f"{elapsed:.0f} s elapsed"])


def _fit_counts(model: nn.Module, examples: Windows, device: torch.device) -> History:
    started = time.perf_counter()
    inputs, targets = examples.split(examples.take(np.arange(len(examples))))
    model.fit_counts(*(torch.as_tensor(a, device=device) for a in (examples.users, inputs, targets)))
    return History([{"epoch": 1, "windows": len(examples), "train_seconds": time.perf_counter() - started}])
