"""Run settings as frozen dataclasses, and merging of TOML files and flags into one nested mapping.

Settings are plain data: they check numbers and ranges, and know no model, loss, protocol or
format. `seqrec.settings` resolves a preset, a TOML file and flags into a `RunConfig`, checking
names against the registries once; each component then receives only its own part
(`TrainConfig` to `fit`, the typed model config to the model).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqrec.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")
NEGATIVES = ("uniform", "popularity", "in-batch")
BATCH_ORDERS = ("shuffled", "by-length")
WINDOW_KINDS = ("complete", "padded")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _fits(value: Any, kind: Any) -> bool:
    """Whether `value` is of the annotated `kind`: an int is not a bool, a float is finite, None only if allowed."""
    if typing.get_origin(kind) in (types.UnionType, typing.Union):
        return any(_fits(value, k) for k in typing.get_args(kind))
    if typing.get_origin(kind) is tuple:
        return isinstance(value, tuple | list) and all(_fits(v, typing.get_args(kind)[0]) for v in value)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(None) if kind is None else kind)


_KIND_NAMES = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string",
               type(None): "unset"}


def _check_types(settings: Any, section: str) -> None:
    """Raise ConfigError naming the first setting whose value is not of its annotated type."""
    for name, kind in typing.get_type_hints(type(settings)).items():
        value = getattr(settings, name)
        if not _fits(value, kind):
            kinds = typing.get_args(kind) if typing.get_origin(kind) in (types.UnionType, typing.Union) else (kind,)
            wanted = " or ".join(_KIND_NAMES.get(k, "a list") for k in kinds)
            raise ConfigError(f"{section}.{name} must be {wanted}, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "ml-100k"            # a known public dataset (see seqrec.datasets)
    data_dir: str | None = None         # local copy; else $SEQREC_DATA_DIR, else the download cache
    verify_checksum: bool = True        # refuse a copy whose u.data is not the published file
    path: str | None = None             # an interaction log file instead of a known dataset
    format: str | None = None           # csv | tsv | parquet | sequences (None: from the file extension)
    user_col: str = "user"              # column mapping for csv / tsv / parquet
    item_col: str = "item"
    time_col: str | None = None         # None: file order is time order
    rating_col: str | None = None
    has_header: bool = True             # csv / tsv; without a header columns are column_1, column_2, ...
    numeric_ids: bool = False           # require integer user and item ids (else strings are kept)
    min_rating: float | None = None     # keep events with rating >= min_rating (needs rating_col)
    dedupe: str = "exact"               # none | exact (same user, item, time) | user-item (first event kept)
    k_core: int = 0                     # iterative k-core on users and items (0: off)
    short_users: str = "drop"           # users with too few events for the protocol: drop (counted) | error
    session_gap: float | None = None    # seconds of inactivity that end a session (None: users are sessions)
    ties: str = "file"                  # a user's events at the same time: file (in file order) | shuffle (in an
                                        #   order drawn from the run's seed)

    def __post_init__(self) -> None:
        _check_types(self, "data")
        _require(self.k_core >= 0, f"data.k_core must be >= 0, got {self.k_core}")
        _require(self.session_gap is None or self.session_gap > 0,
                 f"data.session_gap must be > 0 seconds, got {self.session_gap}")


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "bpr"                   # bpr | hinge | bce | sampled-softmax | softmax (full)
    lr: float = 1e-3
    weight_decay: float = 0.0           # L2 penalty added to the gradient (Adam's weight_decay)
    batch_size: int = 512
    epochs: int = 10
    T: int = 1                          # targets per training window
    num_negatives: int = 1              # sampled negatives per window, redrawn every epoch
    device: str = "auto"                # auto (GPU when present) | cpu | cuda | cuda:N
    eval_every: int = 0                 # evaluate every N epochs (validation cases when the split has them)
    early_stopping_metric: str | None = None  # e.g. "ndcg@10" ("auto": the protocol's): validate every epoch
    patience: int = 5                   # stop after this many epochs without a better validation value
    refit: bool = False                 # test with a fresh model trained on training + validation items for the
                                        #   selected number of epochs (the best epoch, else train.epochs)
    mask_prob: float = 0.2              # regime "masked" (BERT4Rec): share of positions hidden per sequence
    precision: str = "fp32"             # fp32 | bf16 | fp16 (CUDA): the forward pass under autocast
    negatives: str = "uniform"          # uniform (per example, unseen items) | popularity | in-batch (shared by
                                        #   the batch, logQ-corrected; loss sampled-softmax only)
    batch_order: str = "shuffled"       # shuffled | by-length (batches of similar lengths, each cut to its
                                        #   longest example and weighted by its supervised positions; for
                                        #   models whose spec says cuts_padding)
    windows: str = "complete"           # regimes "windows" and "counting": complete (every run of L + T items,
                                        #   and one left-padded window for a shorter sequence: the book's and
                                        #   the paper's) | padded (one window per target position, left-padded
                                        #   where fewer than L items precede it: every item a target)
    label_smoothing: float = 0.0        # loss softmax: share of the target's probability spread evenly over items

    def __post_init__(self) -> None:
        _check_types(self, "train")
        _require(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        _require(self.weight_decay >= 0, f"train.weight_decay must be >= 0, got {self.weight_decay}")
        _require(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        _require(self.epochs >= 0, f"train.epochs must be >= 0, got {self.epochs}")
        _require(self.T >= 1, f"train.T must be >= 1, got {self.T}")
        _require(self.num_negatives >= 1, f"train.num_negatives must be >= 1, got {self.num_negatives}")
        _require(self.eval_every >= 0, f"train.eval_every must be >= 0, got {self.eval_every}")
        _require(self.patience >= 1, f"train.patience must be >= 1, got {self.patience}")
        _require(0 < self.mask_prob < 1, f"train.mask_prob must be in (0, 1), got {self.mask_prob}")
        _require(self.negatives in NEGATIVES, f"train.negatives must be one of {', '.join(NEGATIVES)}, "
                                              f"got {self.negatives!r}")
        _require(self.negatives == "uniform" or self.loss == "sampled-softmax",
                 f"train.negatives={self.negatives} needs train.loss=sampled-softmax, got {self.loss!r}")
        _require(self.batch_order in BATCH_ORDERS, f"train.batch_order must be one of {', '.join(BATCH_ORDERS)}, "
                                                   f"got {self.batch_order!r}")
        _require(self.windows in WINDOW_KINDS, f"train.windows must be one of {', '.join(WINDOW_KINDS)}, "
                                               f"got {self.windows!r}")
        _require(0 <= self.label_smoothing < 1, f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _require(self.label_smoothing == 0 or self.loss == "softmax",
                 f"train.label_smoothing needs train.loss=softmax, got {self.loss!r}")
        _require(self.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}, "
                                               f"got {self.precision!r}")


@dataclass(frozen=True)
class EvalConfig:
    protocols: tuple[str, ...] = ("loo-full",)  # all on one split (see seqrec.evaluation.protocols)
    ks: tuple[int, ...] = ()            # cut-offs for @k metrics (empty: each protocol's own)
    batch_size: int = 1024              # users scored per step
    num_sampled: int = 100              # loo-sampled: negatives per case, drawn with the run's seed
    allow_repeats: bool = False         # rank items already in the history (repeat-consumption data)
    max_users: int | None = None        # evaluate a seeded sample of at most this many cases (None: all)

    def __post_init__(self) -> None:
        _check_types(self, "eval")
        object.__setattr__(self, "protocols", tuple(self.protocols))
        object.__setattr__(self, "ks", tuple(sorted(self.ks)))
        _require(bool(self.protocols), "eval.protocols must name at least one protocol")
        _require(all(k >= 1 for k in self.ks), f"eval.ks must be positive, got {self.ks}")
        _require(self.batch_size >= 1, f"eval.batch_size must be >= 1, got {self.batch_size}")
        _require(self.num_sampled >= 1, f"eval.num_sampled must be >= 1, got {self.num_sampled}")
        _require(self.max_users is None or self.max_users >= 1, f"eval.max_users must be >= 1, got {self.max_users}")


@dataclass(frozen=True)
class RunConfig:
    """One run's settings; built by seqrec.settings, which checks every name and builds `model_params`."""

    model: str
    model_params: Any                   # the model's typed, frozen config (e.g. CaserConfig)
    seed: int = 0                       # the one seed: initialisation, dropout, shuffling, negatives
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["eval"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["eval"].items()}
        return out


_SECTIONS = {"data": DataConfig, "train": TrainConfig, "eval": EvalConfig}
_TOP_LEVEL = {"model", "model_params", "seed"}


def merge_settings(base: dict[str, Any], update: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`base` with the tables and values of `update` laid over it; unknown top-level names are errors."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key in _SECTIONS or key == "model_params":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table, got {value!r}")
            out[key] = {**out.get(key, {}), **value}
        elif key in _TOP_LEVEL:
            out[key] = value
        else:
            known = ", ".join(sorted(_TOP_LEVEL | set(_SECTIONS)))
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {known}")
    return out


def parse_assignment(text: str) -> tuple[str, Any]:
    """'train.lr=0.01' -> ('train.lr', 0.01); the value is read as TOML, else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.lr=0.01), got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def nest_settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """{'train.lr': 0.01, 'seed': 1} -> {'train': {'lr': 0.01}, 'seed': 1}; None values are left out."""
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        head, _, tail = dotted.partition(".")
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            nested[head] = value
    return nested


def load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def build_sections(raw: Mapping[str, Any], where: str = "config") -> tuple[int, DataConfig, TrainConfig, EvalConfig]:
    """The seed and the data, train and eval sections of a nested mapping; unknown keys are errors, not defaults."""
    sections = []
    for name, cls in _SECTIONS.items():
        try:
            sections.append(cls(**raw.get(name, {})))
        except TypeError as err:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"{where}: bad [{name}] setting ({err}); known: {known}") from None
    seed = raw.get("seed", 0)
    if not _fits(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"{where}: seed must be an integer in 0 .. 2^63 - 1, got {seed!r}")
    return seed, *sections
