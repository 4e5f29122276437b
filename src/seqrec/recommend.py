"""Top-k next items from a bundle: for known users, explicit recent-item sequences, or both.

A known user's input is their stored history (the last L items of their log); an explicit
sequence replaces it. An unknown user is user index 0, whose embedding row is zero, so the
score falls back to the sequence term. Items the user has seen (stored history plus the given
sequence) are excluded unless `exclude_seen=False`; padding (item 0) is never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seqrec.bundle import Bundle
from seqrec.data.sequences import Sequences
from seqrec.errors import SeqrecError


class UnknownUserError(SeqrecError):
    """A user the bundle does not know, asked about without a sequence of recent items."""


@dataclass(frozen=True)
class Recommendation:
    user: Any                       # the external user id asked about (None for a sequence-only query)
    items: list[Any]                # external item ids, best first
    scores: list[float]
    titles: list[str] | None = None


def last_items(seqs: Sequence[np.ndarray], L: int) -> np.ndarray:
    """(B, L): the last L items of each variable-length sequence, left-padded with 0."""
    lengths = np.array([len(s) for s in seqs], np.int64)
    items = np.concatenate([np.asarray(s, np.int64) for s in seqs]) if len(seqs) else np.zeros(0, np.int64)
    indptr = np.zeros(len(seqs) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return Sequences(np.arange(len(seqs)), indptr, items).last(L)


def check_k(k: int, num_items: int) -> None:
    if not 1 <= k <= num_items:
        raise SeqrecError(f"k must be between 1 and the number of items ({num_items}), got {k}")


@torch.inference_mode()
def top_k(bundle: Bundle, users: np.ndarray, seqs: np.ndarray, exclude_rows: np.ndarray,
          exclude_items: np.ndarray, k: int, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Best k items per row. users (B,), seqs (B, L) indices; (exclude_rows, exclude_items) pairs are masked.

    Returns items (B, k) int64 and scores (B, k) float32; a row with fewer than k candidates
    ends in -inf scores (its items there are meaningless).
    """
    model, out_items, out_scores = bundle.model, [], []
    users_t, seqs_t = torch.as_tensor(users, dtype=torch.long), torch.as_tensor(seqs, dtype=torch.long)
    rows_t, items_t = torch.as_tensor(exclude_rows, dtype=torch.long), torch.as_tensor(exclude_items, dtype=torch.long)
    for start in range(0, len(users), batch_size):
        stop = min(start + batch_size, len(users))
        scores = model.score_all(users_t[start:stop], seqs_t[start:stop])          # (b, num_items + 1)
        scores[:, 0] = -torch.inf                                                   # padding is never an item
        if start == 0 and stop == len(users):                                       # one chunk: no filtering
            scores[rows_t, items_t] = -torch.inf
        else:
            chunk = (rows_t >= start) & (rows_t < stop)
            scores[rows_t[chunk] - start, items_t[chunk]] = -torch.inf
        values, indices = torch.topk(scores, k, dim=1)                              # (b, k)
        out_items.append(indices)
        out_scores.append(values)
    if not out_items:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return torch.cat(out_items).numpy(), torch.cat(out_scores).float().numpy()


def rank(bundle: Bundle, users: np.ndarray, seqs: np.ndarray, also_seen: Sequence[np.ndarray], k: int,
         exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """top_k for user indices (B,) and inputs (B, L); also_seen[b] are further item indices row b has seen."""
    check_k(k, bundle.num_items)
    if not exclude_seen:
        empty = np.zeros(0, np.int64)
        return top_k(bundle, users, seqs, empty, empty, k)
    rows, items = bundle.histories.seen_of(users)
    extra_rows = np.repeat(np.arange(len(also_seen)), [len(s) for s in also_seen])
    extra = np.concatenate([np.asarray(s, np.int64) for s in also_seen]) if len(also_seen) else np.zeros(0, np.int64)
    return top_k(bundle, users, seqs, np.concatenate([rows, extra_rows]), np.concatenate([items, extra]), k)


def decode(bundle: Bundle, user_ids: Sequence[Any], items: np.ndarray, scores: np.ndarray) -> list[Recommendation]:
    """Recommendations in external ids, dropping the -inf tail of rows with fewer than k candidates."""
    out = []
    for user, row_items, row_scores in zip(user_ids, items, scores, strict=True):
        keep = np.isfinite(row_scores)
        idx = row_items[keep]
        titles = None if bundle.titles is None else [str(t) for t in bundle.titles[idx]]
        out.append(Recommendation(user, bundle.item_map.external[idx - 1].tolist(), row_scores[keep].tolist(), titles))
    return out


def recommend(bundle: Bundle, users: Sequence[Any] | None = None,
              sequences: Sequence[Sequence[Any] | None] | None = None, k: int = 10,
              exclude_seen: bool = True) -> list[Recommendation]:
    """Top-k items for each query, in external ids; vectorised over queries.

    users: external user ids (B,), or None for sequence-only queries (user index 0).
    sequences: per query, recent external item ids (oldest first) or None to use the user's
    stored history; an unknown user needs one. Unknown item ids raise SeqrecError naming them.
    """
    if users is None and sequences is None:
        raise SeqrecError("recommend needs users, sequences of recent items, or both")
    if users is not None and sequences is not None and len(users) != len(sequences):
        raise SeqrecError(f"got {len(users)} users but {len(sequences)} sequences; pass one (or None) per user")
    labels = list(users) if users is not None else [None] * len(sequences)
    count = len(labels)
    user_idx = bundle.user_index(labels) if users is not None else np.zeros(count, np.int64)
    sequences = [None] * count if sequences is None else [s if s is not None and len(s) else None for s in sequences]
    stranded = [labels[i] for i in range(count) if sequences[i] is None and user_idx[i] == 0]
    if stranded:
        raise UnknownUserError(f"unknown user(s) {', '.join(map(repr, stranded[:10]))}: the bundle has no history for "
                               "them; pass a sequence of recent items")
    given = [i for i in range(count) if sequences[i] is not None]
    flat = [item for i in given for item in sequences[i]]
    flat_idx = bundle.item_index(flat)
    if (flat_idx == 0).any():
        unknown = list(dict.fromkeys(item for item, idx in zip(flat, flat_idx, strict=True) if idx == 0))
        raise SeqrecError(f"unknown item id(s) {', '.join(map(repr, unknown[:10]))}: not in the bundle's item map")
    given_seqs = np.split(flat_idx, np.cumsum([len(sequences[i]) for i in given])[:-1]) if given else []
    seqs = bundle.histories.last[user_idx]
    if given:
        seqs[given] = last_items(given_seqs, bundle.L)
    also_seen = [np.zeros(0, np.int64)] * count
    for i, seq in zip(given, given_seqs, strict=True):
        also_seen[i] = seq
    items, scores = rank(bundle, user_idx, seqs, also_seen, k, exclude_seen)
    return decode(bundle, labels, items, scores)
