"""The one protocol every model meets; training, evaluation and serving use nothing else."""

from __future__ import annotations

from typing import Protocol

from torch import Tensor, nn


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
