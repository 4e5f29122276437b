"""Ranking losses on logits. pos: (B, T) scores of observed next items; neg: (B, N) of sampled items.

Each is written with logsigmoid / softplus / relu so it stays finite for scores of any size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """BPR (Rendle et al., 2009): mean over (positive, negative) pairs of -log sigma(s+ - s-)."""
    return -F.logsigmoid(pos.unsqueeze(2) - neg.unsqueeze(1)).mean()


def hinge_loss(pos: Tensor, neg: Tensor, margin: float = 1.0) -> Tensor:
    """Pairwise hinge (D2L's HingeLossbRec): mean over pairs of max(0, margin - (s+ - s-))."""
    return F.relu(margin - (pos.unsqueeze(2) - neg.unsqueeze(1))).mean()


def bce_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Caser's objective: mean -log sigma(s+) plus mean -log(1 - sigma(s-)), as softplus."""
    return F.softplus(-pos).mean() + F.softplus(neg).mean()


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"bpr": bpr_loss, "hinge": hinge_loss, "bce": bce_loss}
