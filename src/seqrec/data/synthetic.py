"""Synthetic interaction logs with planted sequential rules and a known best HR@10 for those rules.

Real logs may not be redistributed, so tests and scaling benchmarks generate their own. Each log has
Zipf item popularity, log-normal user activity (every user has at least 3 events), increasing
integer times per user (seconds, users start at random times, so their events interleave) and two
kinds of planted rules, mixed with popularity noise:

* point rules ``a -> b``: when the last item is a, the next one is b with probability ``point_prob``;
* union rules ``{a, b} -> c``: when the pair is among the last ``window`` items, the next item is c
  with probability ``union_prob``; a or b alone does nothing (D2L 17.7's "milk and butter lead to
  flour"). What "among" means is ``union_kind``:

  - ``"set"`` (default): a and b both occur in the window, in either order, not necessarily adjacent;
  - ``"adjacent"``: a is immediately followed by b somewhere in the window (the rule is ordered, so
    ``(a, b) -> c`` and ``(b, a) -> c'`` are different rules). The draw is made at every step while
    the pair is in the window, so with ``union_prob`` well below 1 the pair sits at any of the
    window - 1 positions when it fires, and pool items also meet non-adjacent or in the other order
    without firing: bag-of-items features (item-transition counts, a sum of embeddings) cannot tell
    these from the rule, position-specific ones (Caser's vertical filters) must learn each position
    separately, and a position-invariant detector of two adjacent items (Caser's horizontal filters
    of height 2, max-pooled) sees the rule wherever it is.

  When several rule pairs are present, the one with the largest c is proposed. The pairs are drawn
  among the ``union_pool`` most popular items (so that pairs meet often) with c outside the pool.
  With many rules per pool item, each item mostly occurs without the partner of any one of its
  rules, so item-transition counts spread over the targets of all its rules, while the pair itself
  predicts c. Each rule has its own c, unless ``union_groups`` is G: then the pool is split into G
  groups (the pool item of popularity rank r, from 0, is in group r mod G) and c depends on the
  groups of a and b only ("any dairy item, then any fat, lead to flour"): G x G targets for ordered
  pairs, G (G + 1) / 2 for sets. A few filters then describe every rule, so a model that detects
  the pattern at every position learns it from little data.

A rule never proposes an item that is already among the last ``window`` items; when a union and a
point rule both fire, the union wins. Every other event is drawn from the popularity distribution.

Each user's last event is the leave-one-out test target. An oracle that knows the rules computes the
point and the union proposal from the history and ranks these (at most two) items first, so it has
every rule-made test target in its top 10: the share of test targets made by a rule is the HR@10 the
planted rules allow (popularity-drawn targets can add chance hits on top).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from seqrec.data.interactions import IdMap, Interactions
from seqrec.data.readers import infer_format
from seqrec.errors import ConfigError

MIN_EVENTS = 3                      # per user, so that leave-one-out keeps a training, validation and test event
MIN_ITEMS = 10
NOISE, POINT, UNION = 0, 1, 2       # values of SyntheticLog.source
WRITABLE = ("csv", "tsv", "parquet")
UNION_KINDS = ("set", "adjacent")   # values of SynthConfig.union_kind


@dataclass(frozen=True)
class SynthConfig:
    """How a synthetic log is generated; the sizes and the seed are `synthesize` arguments."""

    zipf_exponent: float = 1.0      # popularity of the item of rank r (1 = most popular) is proportional to r^-a
    activity_sigma: float = 1.0     # events per user: 3 + a multinomial share with log-normal(0, sigma) weights
    point_fraction: float = 0.2     # share of items a that have a point rule a -> b
    point_prob: float = 0.5         # P(next = b | last item = a)
    union_pool: int | None = None   # union pairs are drawn among this many most popular items (None: min(50, I // 4))
    num_union_rules: int | None = None  # pairs {a, b} -> c (None: 2 x union_pool, at most every pair of the pool)
    union_prob: float = 0.5         # P(next = c | a and b among the last `window` items)
    union_kind: str = "set"         # "set": a and b anywhere in the window; "adjacent": a immediately followed by b
    union_groups: int | None = None  # c depends only on the groups (pool rank mod G) of a and b; None: one c per rule
    window: int = 5                 # how far back union rules look (the L a model needs)
    mean_gap: float = 3600.0        # mean seconds between a user's events (1 + exponential)
    start_span: int = 180 * 86_400  # users start uniformly within this many seconds

    def __post_init__(self) -> None:
        if self.union_kind not in UNION_KINDS:
            raise ConfigError(f"synthetic union_kind must be one of {', '.join(UNION_KINDS)}, got {self.union_kind!r}")
        for name in ("point_fraction", "point_prob", "union_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"synthetic {name} must be in [0, 1], got {getattr(self, name)}")
        for name, low in (("zipf_exponent", 0), ("activity_sigma", 0), ("mean_gap", 0), ("start_span", 1),
                          ("window", 2), ("union_pool", 2), ("num_union_rules", 0), ("union_groups", 1)):
            value = getattr(self, name)
            if value is not None and not value >= low:
                raise ConfigError(f"synthetic {name} must be >= {low}, got {value}")

    def union_sizes(self, num_items: int) -> tuple[int, int]:
        """(pool, rules) for a catalogue of `num_items`: the defaults scaled to it, given values checked."""
        pool = min(50, num_items // 4) if self.union_pool is None else self.union_pool
        pairs = pool * (pool - 1) // (2 if self.union_kind == "set" else 1)   # unordered or ordered pairs
        rules = min(2 * pool, pairs) if self.num_union_rules is None else self.num_union_rules
        if pool > num_items // 2:
            raise ConfigError(f"synthetic union_pool={pool} must be at most half the {num_items} items")
        if rules > pairs:
            raise ConfigError(f"synthetic num_union_rules={rules} exceeds the {pairs} pairs of a pool of {pool}")
        if self.union_groups is not None and self.union_groups > pool:
            raise ConfigError(f"synthetic union_groups={self.union_groups} exceeds the union pool of {pool}")
        return pool, rules


@dataclass(frozen=True)
class SyntheticLog:
    """A generated log, the rules planted in it and what they allow.

    Attributes
    ----------
    log : Interactions
        (N,) events in time order (ties by user); external ids are integers 1..num_users, 1..num_items.
    source : np.ndarray
        (N,) int8, aligned with the log's rows: what made each event (NOISE, POINT or UNION).
    point_rules : np.ndarray
        (P, 2) external item ids ``a -> b``.
    union_rules : np.ndarray
        (R, 3) external item ids ``{a, b} -> c``; under ``union_kind="adjacent"``, a comes before b.
    catalogue : int
        The items asked for (1..catalogue); those never drawn are absent from the log.
    oracle : dict[str, float]
        Over each user's last event: ``hr@10``, the share made by a rule, split into ``point`` and ``union``.
    seed : int
    config : SynthConfig
    """

    log: Interactions
    source: np.ndarray
    point_rules: np.ndarray
    union_rules: np.ndarray
    catalogue: int
    oracle: dict[str, float]
    seed: int
    config: SynthConfig

    def summary(self) -> dict[str, Any]:
        """Counts, rules, oracle figures, seed and settings, as JSON-ready values."""
        return {"events": len(self.log), "users": self.log.num_users, "items": self.log.num_items,
                "catalogue": self.catalogue,
                "point_rules": len(self.point_rules), "union_rules": len(self.union_rules),
                "rule_events": {name: float(np.mean(self.source == code))
                                for name, code in (("point", POINT), ("union", UNION))},
                "oracle": self.oracle, "seed": self.seed, "config": dataclasses.asdict(self.config)}

    def describe(self) -> str:
        """One line: counts, planted rules and the oracle HR@10."""
        o = self.oracle
        return (f"{len(self.log)} events, {self.log.num_users} users, {self.log.num_items} items; "
                f"{len(self.point_rules)} point rules, {len(self.union_rules)} union rules "
                f"({self.config.union_kind}, window {self.config.window}); oracle HR@10 {o['hr@10']:.4f} "
                f"(point {o['point']:.4f}, union {o['union']:.4f})")


@dataclass(frozen=True)
class _Popularity:
    by_rank: np.ndarray             # (I,) external item ids, most popular first
    cdf: np.ndarray                 # (I,) cumulative probability by rank

    @classmethod
    def zipf(cls, num_items: int, exponent: float, rng: np.random.Generator) -> _Popularity:
        weights = np.arange(1, num_items + 1, dtype=np.float64) ** -exponent
        return cls(rng.permutation(num_items).astype(np.int32) + 1, np.cumsum(weights) / weights.sum())

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        rank = np.searchsorted(self.cdf, rng.random(size), side="right")
        return self.by_rank[rank.clip(max=len(self.cdf) - 1)]          # (size,) external ids


@dataclass(frozen=True)
class _Rules:
    point: np.ndarray               # (I + 1,) int32: b for item a, 0 where a has no point rule
    pool_index: np.ndarray          # (I + 1,) position in the union pool, m for every other item (and padding)
    table: np.ndarray               # (m + 1, m + 1) int32: c for the pair (a, b), 0 where none; symmetric for sets
    adjacent: bool                  # pairs count only as window[i], window[i + 1] (else any two positions)

    def propose_point(self, window: np.ndarray) -> np.ndarray:
        return self.point[window[:, -1]]                                 # (k,)

    def propose_union(self, window: np.ndarray) -> np.ndarray:
        """The largest c over the rule pairs present in each row of window (k, L); 0 where none."""
        slots = self.pool_index[window]                                  # (k, L)
        rows, flat = slots * len(self.table), self.table.ravel()
        L = window.shape[1]
        first, second = (np.arange(L - 1), np.arange(1, L)) if self.adjacent else np.triu_indices(L, 1)
        best = np.zeros(len(window), dtype=np.int32)
        for i, j in zip(first, second, strict=True):                     # the position pairs (i before j)
            np.maximum(best, flat[rows[:, i] + slots[:, j]], out=best)   # 4x faster than one 2-D gather
        return best


def _plant(num_items: int, popularity: _Popularity, config: SynthConfig,
           rng: np.random.Generator) -> tuple[_Rules, np.ndarray, np.ndarray]:
    """Point rules a -> b (b uniform, b != a); union pairs among the pool with c uniform outside it.

    Set pairs are unordered (the table is symmetric); adjacent pairs are ordered (a before b). With
    union_groups, c is drawn per pair of groups (unordered for sets) instead of per rule.
    """
    triggers = rng.choice(num_items, round(config.point_fraction * num_items), replace=False).astype(np.int32) + 1
    targets = rng.integers(1, num_items, len(triggers), dtype=np.int32)
    targets += targets >= triggers                                       # skip a itself
    point = np.zeros(num_items + 1, dtype=np.int32)
    point[triggers] = targets
    pool_size, num_rules = config.union_sizes(num_items)
    adjacent = config.union_kind == "adjacent"
    first, second = np.nonzero(~np.eye(pool_size, dtype=bool)) if adjacent else np.triu_indices(pool_size, 1)
    pairs = rng.choice(len(first), num_rules, replace=False)
    a, b = first[pairs], second[pairs]
    groups = config.union_groups
    drawn = num_rules if groups is None else groups * groups            # one c per rule, or per pair of groups
    c = popularity.by_rank[pool_size + rng.integers(0, num_items - pool_size, drawn)]
    if groups is not None:
        group_a, group_b = a % groups, b % groups                       # a, b: popularity ranks within the pool
        if not adjacent:
            group_a, group_b = np.minimum(group_a, group_b), np.maximum(group_a, group_b)
        c = c.reshape(groups, groups)[group_a, group_b]
    table = np.zeros((pool_size + 1, pool_size + 1), dtype=np.int32)
    table[a, b] = c
    if not adjacent:
        table[b, a] = c
    pool_index = np.full(num_items + 1, pool_size, dtype=np.int32)
    pool = popularity.by_rank[:pool_size]
    pool_index[pool] = np.arange(pool_size)
    return (_Rules(point, pool_index, table, adjacent), np.stack([triggers, targets], 1),
            np.stack([pool[a], pool[b], c], 1))


def _walk(lengths: np.ndarray, rules: _Rules, popularity: _Popularity, config: SynthConfig,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items, sources and times in user-major order, one numpy step per position for all users at once.

    lengths (U,) must be sorted in decreasing order, so the users still active at position t are a prefix.
    """
    starts = np.cumsum(lengths) - lengths                                # (U,)
    active = len(lengths) - np.cumsum(np.bincount(lengths))              # (max length,) users with length > t
    items = np.empty(lengths.sum(), dtype=np.int32)
    source = np.empty(len(items), dtype=np.int8)
    times = np.empty(len(items), dtype=np.int64)
    recent = np.zeros((len(lengths), config.window), dtype=np.int32)     # last items, newest last; 0 = none yet
    clock = rng.integers(0, config.start_span, len(lengths))             # (U,) seconds
    for t in range(lengths[0]):
        k = active[t]
        window, at = recent[:k], starts[:k] + t                          # (k, L), (k,)
        nxt, src = popularity.draw(rng, k), np.full(k, NOISE, dtype=np.int8)
        for code, proposal, prob in ((POINT, rules.propose_point(window), config.point_prob),
                                     (UNION, rules.propose_union(window), config.union_prob)):
            fire = (proposal > 0) & (rng.random(k) < prob) & ~(window == proposal[:, None]).any(1)
            nxt[fire], src[fire] = proposal[fire], code
        items[at], source[at], times[at] = nxt, src, clock[:k]
        window[:, :-1] = window[:, 1:]
        window[:, -1] = nxt
        clock[:k] += 1 + rng.exponential(config.mean_gap, k).astype(np.int64)
    return items, source, times


def synthesize(num_events: int, num_users: int, num_items: int, seed: int = 0,
               config: SynthConfig = SynthConfig()) -> SyntheticLog:
    """A log of `num_events` events by `num_users` users over `num_items` items with planted rules.

    All randomness comes from ``np.random.default_rng(seed)``: the same arguments give the same log.
    Events per user are ``3 + Multinomial(num_events - 3 num_users, w / sum(w))``, w ~ LogNormal(0, sigma).
    Generation steps once per position (up to the longest history's length) over all users at once.
    The returned arrays take 25 bytes per event; the peak while generating is about 45.

    Parameters
    ----------
    num_events, num_users, num_items : int
        Sizes; ``num_events >= 3 * num_users`` and ``num_items >= 10``. Items that are never drawn are
        absent from the log (its num_items can be smaller).
    seed : int
    config : SynthConfig

    Returns
    -------
    SyntheticLog

    Raises
    ------
    ConfigError
        On sizes or settings out of range.
    """
    if num_users < 1:
        raise ConfigError(f"synthetic logs need at least 1 user, got {num_users}")
    if num_events < MIN_EVENTS * num_users:
        raise ConfigError(f"{num_events} events are too few for {num_users} users: every user needs "
                          f"{MIN_EVENTS}, so at least {MIN_EVENTS * num_users}")
    if num_items < MIN_ITEMS:
        raise ConfigError(f"synthetic logs need at least {MIN_ITEMS} items, got {num_items}")
    pool_size, num_rules = config.union_sizes(num_items)
    config = dataclasses.replace(config, union_pool=pool_size, num_union_rules=num_rules)   # as used, for the record
    rng = np.random.default_rng(seed)
    popularity = _Popularity.zipf(num_items, config.zipf_exponent, rng)
    rules, point_rules, union_rules = _plant(num_items, popularity, config, rng)
    weights = rng.lognormal(0.0, config.activity_sigma, num_users)
    lengths = MIN_EVENTS + rng.multinomial(num_events - MIN_EVENTS * num_users, weights / weights.sum())
    by_length = np.argsort(-lengths, kind="stable")                      # longest first; user id = index + 1
    lengths = lengths[by_length]
    items, source, times = _walk(lengths, rules, popularity, config, rng)
    last = source[np.cumsum(lengths) - 1]                                # (U,) what made each test target
    oracle = {"hr@10": float(np.mean(last != NOISE)), "point": float(np.mean(last == POINT)),
              "union": float(np.mean(last == UNION))}
    # Ids are fitted on the unique values only (the same maps as on the events, without sorting N values).
    user_map, user_index = IdMap.fit(by_length + 1)
    present = np.bincount(items, minlength=num_items + 1) > 0
    item_map, item_index = IdMap.fit(np.flatnonzero(present))
    dense = np.zeros(num_items + 1, dtype=np.int64)
    dense[present] = item_index
    order = np.argsort(times, kind="stable")                             # time order; ties stay user-major
    times, source = times[order], source[order]                          # reassigned: the user-major copies go
    items = dense[items[order]]
    log = Interactions(np.repeat(user_index, lengths)[order], items, times, user_map, item_map,
                       source={"synthetic": {"seed": seed, "events": num_events}})
    return SyntheticLog(log, source, point_rules, union_rules, num_items, oracle, seed, config)


def _writable_format(path: Path) -> str:
    fmt = infer_format(path, None)
    if fmt not in WRITABLE:
        raise ConfigError(f"{path}: logs are written as .csv, .tsv or .parquet, not {fmt}")
    return fmt


def write_log(log: Interactions, path: Path) -> Path:
    """Write `log` with columns user, item, time (external ids) to CSV, TSV or Parquet, by extension.

    Rows keep the log's order, so a log in time order reads back with the default columns (file
    order as time order) as well as with the time column.
    """
    path = Path(path)
    fmt = _writable_format(path)
    frame = pl.DataFrame({"user": log.user_map.to_external(log.users), "item": log.item_map.to_external(log.items),
                          "time": log.times})
    if fmt == "parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path, separator="," if fmt == "csv" else "\t")
    return path


def write_synthetic(path: Path, num_events: int, num_users: int, num_items: int, seed: int = 0,
                    config: SynthConfig = SynthConfig()) -> SyntheticLog:
    """`synthesize`, then write the log to `path` (see `write_log`) and its summary to `path` with suffix .json."""
    path = Path(path)
    _writable_format(path)                                               # fail before generating
    synthetic = synthesize(num_events, num_users, num_items, seed, config)
    write_log(synthetic.log, path)
    path.with_suffix(".json").write_text(json.dumps(synthetic.summary(), indent=2) + "\n")
    return synthetic
