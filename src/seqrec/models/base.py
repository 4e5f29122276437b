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


@runtime_checkable
class PositionwiseRecommender(Protocol):
    """A sequence model whose state at every input position predicts the item after it.

    Training then supervises all L positions of a window at once (as SASRec and GRU4Rec are
    trained in their papers) instead of the last one only; position L - 1 is what `score` uses.
    """

    def score_positions(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:
        """users (B,), seqs (B, L), items (B, L, C) -> (B, L, C): items[:, t] scored after seqs[:, : t + 1]."""
        ...

    def score_all_positions(self, users: Tensor, seqs: Tensor) -> Tensor:
        """users (B,), seqs (B, L) -> (B, L, num_items + 1)."""
        ...
