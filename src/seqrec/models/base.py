"""The one protocol every model meets; training, evaluation and serving use nothing else."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from seqrec.errors import ConfigError


class SequentialRecommender(Protocol):
    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:
        """users (B,), seqs (B, L) item indices (0 = padding), items (B, C) -> scores (B, C)."""
        ...

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:
        """users (B,), seqs (B, L) -> scores of every item index (B, num_items + 1); column 0 is padding."""
        ...


def count_parameters(model: nn.Module) -> int:
    """Learned parameters: every element, less the constant zero padding rows of embeddings."""
    total = sum(p.numel() for p in model.parameters())
    padding = sum(m.embedding_dim for m in model.modules() if isinstance(m, nn.Embedding) and m.padding_idx is not None)
    return total - padding


@runtime_checkable
class CountingRecommender(Protocol):
    """A model that learns by counting, not by gradients: training calls `fit_counts` once, instead of epochs.

    users (W,), inputs (W, L) left-padded with 0, targets (W, T): one row per training window.
    """

    def fit_counts(self, users: Tensor, inputs: Tensor, targets: Tensor) -> None: ...


def check_config(checks: list[tuple[bool, str]]) -> None:
    """Raise ConfigError with the message of the first failed (ok, message) check."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
