"""Ranking losses on logits, pure functions of scores; none reaches into a model.

Two shapes of input:
- sampled losses take pos (B, T), the scores of the observed next items, and neg (B, N), the
  scores of sampled items (training calls `model.score(users, seqs, [targets, negatives])`);
- full losses take scores (B, num_items + 1) from `model.score_all` and targets (B, T) item
  indices; column 0 (padding) is never a class, and a target 0 is no target.

With T > 1 targets every loss averages over the targets. Each is written with logsigmoid /
softplus / relu / logsumexp so it stays finite for scores of any size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
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


def sampled_softmax_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Cross-entropy of each target against the sampled negatives, mean over the (B, T) targets:

        -log( exp(s+_t) / (exp(s+_t) + sum_n exp(s-_n)) )

    Negatives are drawn uniformly, so the logQ correction (subtracting log q(i) from each
    sampled logit) is a constant shift that cancels in the softmax and is left out.
    """
    logits = torch.cat([pos.unsqueeze(2), neg.unsqueeze(1).expand(-1, pos.size(1), -1)], 2)  # (B, T, 1 + N)
    return (torch.logsumexp(logits, 2) - pos).mean()


def softmax_loss(scores: Tensor, targets: Tensor, smoothing: float = 0.0) -> Tensor:
    """Full softmax cross-entropy over every real item, mean over the real targets:

        -log( exp(s_target) / sum_{i=1..num_items} exp(s_i) )

    With label smoothing e the target distribution is (1 - e) on the target plus e spread evenly over
    the I real items: log Z - (1 - e) s_target - e mean_i s_i.
    scores: (..., num_items + 1) with column 0 the padding index, excluded from the softmax;
    targets: (..., T) item indices, where 0 marks "no target here" and is left out of the mean
    (positions of a padded window). Any leading shape works, e.g. (B, L, num_items + 1) per position.
    """
    real_scores = scores[..., 1:]
    log_z = torch.logsumexp(real_scores, -1, keepdim=True)                      # (..., 1)
    real = targets != 0                                                          # (..., T)
    per_target = log_z - scores.gather(-1, targets)                              # (..., T)
    if smoothing:
        per_target = (1 - smoothing) * per_target + smoothing * (log_z - real_scores.mean(-1, keepdim=True))
    return (per_target * real).sum() / real.sum().clamp(min=1)


def corrected_softmax_loss(pos: Tensor, shared: Tensor, hit: Tensor, pos_log_count: Tensor,
                           shared_log_count: Tensor) -> Tensor:
    """Softmax cross-entropy of each positive against candidates shared by the batch, logQ-corrected
    (Bengio & Senecal 2008; Yi et al., RecSys 2019):

        -log( exp(s+ - log c+) / (exp(s+ - log c+) + sum_j exp(s_j - log c_j)) )

    pos (P,) scores of the positives; shared (P, C) scores of the C shared candidates; hit (P, C) True
    where a candidate is that row's positive (left out of the sum); log counts: log of the expected
    number of times an item is among the candidates (P,) and (C,). With candidates drawn in proportion
    to popularity, the correction makes the expected gradient that of the full softmax.
    """
    logits = (shared - shared_log_count).masked_fill(hit, -torch.inf)            # (P, C)
    positive = (pos - pos_log_count).unsqueeze(1)                                # (P, 1)
    return (torch.logsumexp(torch.cat([positive, logits], 1), 1) - positive.squeeze(1)).mean()


SAMPLED_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "bpr": bpr_loss, "hinge": hinge_loss, "bce": bce_loss, "sampled-softmax": sampled_softmax_loss}
# full losses take (scores, targets, label smoothing)
FULL_LOSSES: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {"softmax": softmax_loss}
LOSS_NAMES: tuple[str, ...] = (*SAMPLED_LOSSES, *FULL_LOSSES)
