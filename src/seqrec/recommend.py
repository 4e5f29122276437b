"""Top-k next items from a bundle, for known users, explicit recent-item sequences, or both: the one
recommendation path that the library, the CLI and the service share.

A known user's input is their history (the bundle's last L items of their log, and in the service
their live events after it); given items replace it. An unknown user is user index 0, whose
embedding row is zero, so the score falls back to the sequence term. Items the user has seen
(history plus given items) are excluded unless `exclude_seen=False`; padding (item 0) is never
returned. Given item ids the bundle does not know are left out and reported, never silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from seqrec.bundle import Bundle
from seqrec.data.sequences import Sequences
from seqrec.errors import SeqrecError
from seqrec.evaluation.ranking import chunk_rows, writable


class UnknownUserError(SeqrecError):
    """A user the bundle does not know, asked about without recent items it knows."""


@dataclass(frozen=True)
class Recommendation:
    user: Any                       # the external user id asked about (None for a sequence-only query)
    items: list[Any]                # external item ids, best first
    scores: list[float]
    titles: list[str] | None = None
    unknown_items: list[Any] = field(default_factory=list)  # given item ids the bundle does not know (left out)


@dataclass(frozen=True)
class UserState:
    """What is known of B queried users: index (B,) (0: unknown to the bundle), recent (B, L) item
    indices left-padded with 0, seen items as (row, item) pairs, and known (B,): there is a history."""

    index: np.ndarray
    recent: np.ndarray
    seen_rows: np.ndarray
    seen_items: np.ndarray
    known: np.ndarray


class UserHistories(Protocol):
    def state(self, users: Sequence[Any]) -> UserState: ...


@dataclass(frozen=True)
class BundleHistories:
    """Users as the bundle stored them: each user's last L items and distinct items of the whole log."""

    bundle: Bundle

    def state(self, users: Sequence[Any]) -> UserState:
        index = self.bundle.user_index(list(users))
        rows, items = self.bundle.histories.seen_of(index)
        return UserState(index, self.bundle.histories.last[index], rows, items, index > 0)


def empty_state(count: int, L: int) -> UserState:
    """`count` sequence-only queries: no user, no history."""
    none = np.zeros(0, np.int64)
    return UserState(np.zeros(count, np.int64), np.zeros((count, L), np.int64), none, none, np.zeros(count, bool))


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
    ends in -inf scores (its items there are meaningless). Rows are scored in chunks of at most
    batch_size whose scores hold at most SCORE_BUDGET floats (`chunk_rows`), whatever the catalogue.
    """
    model, out_items, out_scores = bundle.model, [], []
    users_t, seqs_t = torch.as_tensor(users, dtype=torch.long), torch.as_tensor(seqs, dtype=torch.long)
    order = np.argsort(exclude_rows, kind="stable")                                 # each chunk's pairs: one slice
    rows, items = np.asarray(exclude_rows, np.int64)[order], np.asarray(exclude_items, np.int64)[order]
    step = chunk_rows(bundle.num_items, batch_size)
    for start in range(0, len(users), step):
        stop = min(start + step, len(users))
        scores = writable(model.score_all(users_t[start:stop], seqs_t[start:stop]))  # (b, num_items + 1)
        scores[:, 0] = -torch.inf                                                   # padding is never an item
        lo, hi = np.searchsorted(rows, [start, stop])
        flat = (rows[lo:hi] - start) * scores.size(1) + items[lo:hi]                # flat index_put: fast on CPU
        scores.view(-1)[torch.as_tensor(flat, device=scores.device)] = -torch.inf
        values, indices = torch.topk(scores, k, dim=1)                              # (b, k)
        out_items.append(indices)
        out_scores.append(values)
    if not out_items:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return torch.cat(out_items).numpy(), torch.cat(out_scores).float().numpy()


def decode(bundle: Bundle, user_ids: Sequence[Any], items: np.ndarray, scores: np.ndarray,
           unknown: Sequence[list[Any]]) -> list[Recommendation]:
    """Recommendations in external ids, dropping the -inf tail of rows with fewer than k candidates."""
    out = []
    for user, row_items, row_scores, missing in zip(user_ids, items, scores, unknown, strict=True):
        keep = np.isfinite(row_scores)
        idx = row_items[keep]
        titles = None if bundle.titles is None else [str(t) for t in bundle.titles[idx]]
        out.append(Recommendation(user, bundle.item_map.external[idx - 1].tolist(), row_scores[keep].tolist(), titles,
                                  missing))
    return out


def _given(bundle: Bundle, sequences: Sequence[Sequence[Any] | None]) -> tuple[list[np.ndarray], list[list[Any]]]:
    """Per query: the indices of the given items the bundle knows, and the given ids it does not (each once)."""
    bounds = np.cumsum([0 if s is None else len(s) for s in sequences])[:-1]
    flat = [item for s in sequences if s is not None for item in s]
    parts = np.split(bundle.item_index(flat), bounds)
    ids = np.split(np.asarray(flat, dtype=object), bounds)
    return ([part[part > 0] for part in parts],
            [list(dict.fromkeys(i[part == 0].tolist())) for part, i in zip(parts, ids, strict=True)])


def recommend(bundle: Bundle, users: Sequence[Any] | None = None,
              sequences: Sequence[Sequence[Any] | None] | None = None, k: int = 10,
              exclude_seen: bool = True, histories: UserHistories | None = None) -> list[Recommendation]:
    """Top-k items for each query, in external ids; vectorised over queries. The CLI and the service call this.

    users: external user ids (B,), or None for sequence-only queries (user index 0).
    sequences: per query, recent external item ids (oldest first), or None to use the user's history;
    given items the bundle knows replace that history. Unknown item ids are left out and reported in
    `Recommendation.unknown_items`; a query with neither a history nor a known item is an error
    (UnknownUserError when it names a user). histories: where user histories come from (default:
    the bundle's; the service passes the bundle's plus live events).
    """
    if users is None and sequences is None:
        raise SeqrecError("recommend needs users, sequences of recent items, or both")
    if users is not None and sequences is not None and len(users) != len(sequences):
        raise SeqrecError(f"got {len(users)} users but {len(sequences)} sequences; pass one (or None) per user")
    check_k(k, bundle.num_items)
    count = len(users) if users is not None else len(sequences)
    labels = list(users) if users is not None else [None] * count
    state = (histories or BundleHistories(bundle)).state(labels) if users is not None else empty_state(count, bundle.L)
    known, unknown = _given(bundle, sequences if sequences is not None else [None] * count)
    has_items = np.array([len(g) > 0 for g in known], bool)
    stranded = np.flatnonzero(~state.known & ~has_items)
    if stranded.size:
        named = [labels[b] for b in stranded if labels[b] is not None]
        missing = list(dict.fromkeys(item for b in stranded for item in unknown[b]))
        what = (f"unknown user{'s' if len(named) > 1 else ''} {', '.join(map(repr, named[:10]))}" if named
                else "no item the model knows")
        raise (UnknownUserError if named else SeqrecError)(
            f"{what}: nothing to recommend from; send recent item ids the model knows"
            + (f" (unknown: {', '.join(map(repr, missing[:10]))})" if missing else ""))
    seqs = state.recent.copy()
    given = np.flatnonzero(has_items)
    if given.size:
        seqs[given] = last_items([known[b] for b in given], bundle.L)
    rows = np.concatenate([state.seen_rows, np.repeat(given, [len(known[b]) for b in given])])
    items = np.concatenate([state.seen_items, *[known[b] for b in given]])
    if not exclude_seen:
        rows, items = rows[:0], items[:0]
    top, scores = top_k(bundle, state.index, seqs, rows, items, k)
    return decode(bundle, labels, top, scores, unknown)
