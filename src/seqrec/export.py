"""Export a bundle's scoring function, (users (B,), seqs (B, L)) -> scores (B, num_items + 1), for serving
without seqrec: TorchScript (`torch.jit.load(path)(users, seqs)`) needs only PyTorch.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from seqrec.bundle import Bundle
from seqrec.errors import SeqrecError

FORMATS = ("torchscript",)


class Scorer(nn.Module):
    """The model's score_all as forward; column 0 (padding) is left to the caller to mask."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, users: Tensor, seqs: Tensor) -> Tensor:      # (B,), (B, L) int64 -> (B, num_items + 1)
        return self.model.score_all(users, seqs)


def export(bundle: Bundle, path: Path, fmt: str = "torchscript") -> Path:
    """Write the scoring part of `bundle` to `path` in format `fmt` (one of FORMATS)."""
    if fmt not in FORMATS:
        raise SeqrecError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    scorer = Scorer(bundle.model).eval()
    example = (torch.ones(2, dtype=torch.long), torch.ones(2, bundle.L, dtype=torch.long))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)         # TorchScript is deprecated, still loadable
        traced = torch.jit.trace(scorer, example)
        traced.save(str(path))
    return path
