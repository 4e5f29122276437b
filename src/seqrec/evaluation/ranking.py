"""Ranks of targets among candidates, one chunk of cases at a time, without sorting any catalogue.

A chunk's scores (rows, num_items + 1) are the only dense array: non-candidates are written into it
sparsely as -inf (padding, excluded items, items past a protocol's cap), and a target's 0-based rank
is the number of entries scoring at least as high as it, less itself (ties count against the target):
one comparison pass per chunk, written into the scores themselves. Candidate counts come from the
sparse exclusions, never from a mask.
A non-finite score (NaN, +-inf: a diverged model) counts as -inf: it never ranks above anything, and
a target with one ranks last (rank = number of candidates - 1).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from seqrec.data.keys import contains, distinct
from seqrec.data.sequences import Sequences
from seqrec.models.base import dot_all

SCORE_BUDGET = 2**22        # floats in one chunk's score matrix (16 MiB of float32: faster than 64 here)
BLOCK = 2**19               # floats in one cache-sized block of a product model's scores (2 MiB)


def chunk_rows(num_items: int, batch_size: int) -> int:
    """Rows per chunk: at most batch_size, and rows x (num_items + 1) within SCORE_BUDGET (at least 1).

    1,682 items, batch_size 1024 -> 1024; 100,000 items -> 41.
    """
    return max(1, min(batch_size, SCORE_BUDGET // (num_items + 1)))


def chunks(indptr: np.ndarray, rows: int) -> Iterator[tuple[int, int]]:
    """Consecutive ranges [start, stop) of sequences (indptr (n + 1,)) holding at most `rows` sequences and
    at most `rows` items, but at least one sequence each. indptr [0, 1, 2, 3], rows 2 -> (0, 2), (2, 3)."""
    start, n = 0, len(indptr) - 1
    while start < n:
        fits = int(np.searchsorted(indptr, indptr[start] + rows, "right")) - 1     # last stop within `rows` items
        stop = min(start + rows, max(fits, start + 1))
        yield start, stop
        start = stop


def take_rows(seqs: Sequences, start: int, stop: int) -> Sequences:
    """Sequences start..stop-1 as a view: their indptr still points into the whole `items` array."""
    return Sequences(seqs.users[start:stop], seqs.indptr[start: stop + 1], seqs.items)


def writable(scores: Tensor) -> Tensor:
    """`scores` itself when it owns its memory (score_all returns a copy callers may write to), else a copy."""
    return scores if scores._base is None and scores.is_contiguous() else scores.clone()


def finite_or_neg_inf_(scores: Tensor) -> Tensor:
    """NaN and +-inf replaced by -inf, in place; all-finite scores (the usual case) cost one reduction."""
    top = scores.amax()                               # NaN if any score is NaN
    if torch.isnan(top) or torch.isposinf(top):
        scores.nan_to_num_(nan=-torch.inf, posinf=-torch.inf, neginf=-torch.inf)
    return scores


def count_at_or_above_(scores: Tensor, target_scores: Tensor, rows: Tensor | None = None) -> Tensor:
    """(n,) entries of row rows[j] scoring >= target_scores[j]; rows None: row j (one target per row), and
    `scores` is overwritten (the comparison is written into it: no new matrix).

    The comparison is written as 0.0 / 1.0 floats and summed as floats, several times faster than
    summing a bool matrix; the sums are exact integers (float64 past 2^24 entries per row).
    """
    rowwise = scores if rows is None else scores.index_select(0, rows)             # (n, I)
    dtype = torch.float64 if rowwise.size(1) > 2**24 else None
    return rowwise.ge_(target_scores[:, None]).sum(1, dtype=dtype).long()


def count_others_above(states: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, top: int,
                       excluded_rows: Tensor, excluded_items: Tensor) -> tuple[Tensor, Tensor]:
    """From a product model's factors, without ever holding the (B, num_items + 1) scores: for each row b,
    the target's score t_b and how many candidates other than the target score >= t_b.

    states (B, D), weight (I, D), bias (I,) or None; targets (B,); candidates are items 1..top less the
    pairs (excluded_rows, excluded_items). The catalogue is scored in column blocks small enough to stay
    in cache, each compared and counted at once; a block's values are bitwise those of the whole product
    (the same addmm), and the target's own column is left out of the count rather than compared with itself.
    Non-finite scores are looked for only when `_surely_finite` cannot rule them out.
    """
    rows = torch.arange(len(targets), device=targets.device)
    t_bias = None if bias is None else bias[targets][:, None].expand(-1, len(targets))
    target_scores = dot_all(states, weight[targets], t_bias).diagonal()                    # (B,)
    width = max(BLOCK // max(len(targets), 1), 256)
    starts = torch.arange(1, top + 1, width, device=targets.device)                       # column 0: padding
    left_rows = torch.cat([excluded_rows, rows])                  # excluded pairs, then each row's own target
    left_items = torch.cat([excluded_items, targets])
    order = torch.argsort(left_items)
    left_rows, left_items = left_rows[order], left_items[order]
    bounds = torch.searchsorted(left_items, torch.cat([starts, starts.new_tensor([top + 1])])).tolist()
    check = not _surely_finite(states, weight[1: top + 1], bias)
    counts = torch.zeros(len(targets), dtype=torch.float32, device=targets.device)
    for k, lo in enumerate(starts.tolist()):
        hi = min(lo + width, top + 1)
        block = dot_all(states, weight[lo:hi], None if bias is None else bias[lo:hi])     # (B, w)
        if check:
            finite_or_neg_inf_(block)
        a, b = bounds[k], bounds[k + 1]
        block.view(-1)[left_rows[a:b] * (hi - lo) + left_items[a:b] - lo] = -torch.inf
        counts += block.ge_(target_scores[:, None]).sum(1)
    return counts.long() + 1, target_scores


def _surely_finite(states: Tensor, weight: Tensor, bias: Tensor | None) -> bool:
    """True when every score states . weight_i + bias_i is finite: by Cauchy-Schwarz |score| <=
    max ||state|| max ||weight_i|| + max |bias_i|, and that bound (NaN or inf for non-finite factors) is far
    below float32's largest value. False says nothing: the scores must then be checked."""
    if len(states) == 0 or len(weight) == 0:
        return True
    bound = states.norm(dim=1).max() * weight.norm(dim=1).max()
    if bias is not None:
        bound = bound + bias.abs().max()
    return bool(bound < 1e37)


def ranks_from_counts(at_or_above: Tensor, target_scores: Tensor, num_candidates: Tensor,
                      is_candidate: Tensor) -> Tensor:
    """0-based ranks (n,) float: at_or_above - 1 for a finite target score (it counts itself), the last rank
    (num_candidates - 1) for a non-finite one, inf for a target that is not a candidate."""
    ahead = torch.where(torch.isfinite(target_scores), at_or_above - 1, num_candidates - 1)
    return torch.where(is_candidate, ahead.float(), torch.inf)


def candidate_counts(exclude: Sequences, targets: Sequences, top: int,
                     keep_targets: bool) -> tuple[np.ndarray, np.ndarray]:
    """Candidates per case (C,) and whether each target is one (n,), from the sparse exclusions alone.

    The candidates of case c are the items 1..top, less the distinct items of exclude row c, plus (with
    keep_targets) the case's targets among them. exclude and targets: C rows each (items may repeat).
    top 5, exclude row [2, 2, 7], target [2], keep_targets -> 5 - 1 + 1 = 5 candidates, the target one.
    """
    stride = top + 1
    ex_rows, ex_items = exclude.row_of_each_item(), exclude.items
    in_range = (ex_items >= 1) & (ex_items <= top)
    excluded = distinct(ex_rows[in_range] * stride + ex_items[in_range])           # (case, item) keys
    t_rows, t_items = targets.row_of_each_item(), targets.items
    t_range = (t_items >= 1) & (t_items <= top)
    t_keys = t_rows * stride + t_items
    t_excluded = t_range & contains(excluded, t_keys)
    counts = top - np.bincount(excluded // stride, minlength=len(exclude))
    if keep_targets:
        counts += np.bincount(distinct(t_keys[t_excluded]) // stride, minlength=len(exclude))
        return counts, t_range
    return counts, t_range & ~t_excluded
