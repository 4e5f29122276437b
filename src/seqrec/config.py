"""Run settings as frozen dataclasses, named presets, and merging of TOML files and flags.

Settings flow down: `RunConfig` is resolved once (preset -> TOML file -> flags) and each
component receives only its own part (`TrainConfig` to `fit`, model params to the model).
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqrec.data.filters import DEDUPE, SHORT_USERS
from seqrec.data.readers import FORMATS
from seqrec.errors import ConfigError
from seqrec.evaluation.protocols import PROTOCOLS
from seqrec.losses import LOSS_NAMES
from seqrec.models import model_config

PROTOCOL_NAMES = tuple(PROTOCOLS)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


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

    def __post_init__(self) -> None:
        _require(self.format is None or self.format in FORMATS,
                 f"data.format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        _require(self.dedupe in DEDUPE, f"data.dedupe must be one of {', '.join(DEDUPE)}, got {self.dedupe!r}")
        _require(self.short_users in SHORT_USERS,
                 f"data.short_users must be one of {', '.join(SHORT_USERS)}, got {self.short_users!r}")
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
    early_stopping_metric: str | None = None  # e.g. "ndcg@10": validate every epoch, keep the best weights
    patience: int = 5                   # stop after this many epochs without a better validation value

    def __post_init__(self) -> None:
        _require(self.loss in LOSS_NAMES, f"train.loss must be one of {', '.join(LOSS_NAMES)}, got {self.loss!r}")
        _require(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        _require(self.weight_decay >= 0, f"train.weight_decay must be >= 0, got {self.weight_decay}")
        _require(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        _require(self.epochs >= 0, f"train.epochs must be >= 0, got {self.epochs}")
        _require(self.T >= 1, f"train.T must be >= 1, got {self.T}")
        _require(self.num_negatives >= 1, f"train.num_negatives must be >= 1, got {self.num_negatives}")
        _require(self.eval_every >= 0, f"train.eval_every must be >= 0, got {self.eval_every}")
        _require(self.patience >= 1, f"train.patience must be >= 1, got {self.patience}")


@dataclass(frozen=True)
class EvalConfig:
    protocols: tuple[str, ...] = ("loo-full",)  # all on one split (see seqrec.evaluation.protocols)
    ks: tuple[int, ...] = ()            # cut-offs for @k metrics (empty: each protocol's own)
    batch_size: int = 1024              # users scored per step
    num_sampled: int = 100              # loo-sampled: negatives per case, drawn with the run's seed
    allow_repeats: bool = False         # rank items already in the history (repeat-consumption data)

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocols", tuple(self.protocols))
        object.__setattr__(self, "ks", tuple(sorted(self.ks)))
        unknown = [p for p in self.protocols if p not in PROTOCOL_NAMES]
        _require(not unknown, f"unknown protocol {unknown[0] if unknown else ''!r}; known: {', '.join(PROTOCOL_NAMES)}")
        _require(bool(self.protocols), "eval.protocols must name at least one protocol")
        _require(all(k >= 1 for k in self.ks), f"eval.ks must be positive, got {self.ks}")
        _require(self.batch_size >= 1, f"eval.batch_size must be >= 1, got {self.batch_size}")
        _require(self.num_sampled >= 1, f"eval.num_sampled must be >= 1, got {self.num_sampled}")


@dataclass(frozen=True)
class RunConfig:
    model: str = "caser"
    model_params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0                       # the one seed: initialisation, dropout, shuffling, negatives
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["model_params"] = dict(self.model_params)
        out["eval"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["eval"].items()}
        return out


PRESETS: dict[str, dict[str, Any]] = {
    # The book's experiment (D2L 17.7): k=10, L=5, 16/4 filters, dropout 0.05, BPR, Adam 0.04.
    "d2l": {
        "model": "caser",
        "model_params": {"embedding_dim": 10, "L": 5, "num_h_filters": 16, "num_v_filters": 4, "dropout": 0.05},
        "train": {"loss": "bpr", "lr": 0.04, "weight_decay": 1e-5, "batch_size": 4096, "epochs": 8, "T": 1,
                  "num_negatives": 1},
        "eval": {"protocols": ["d2l", "d2l-fixed"]},   # each reports hit@10, hit@50 (the protocol's ks)
    },
    # The Caser paper's defaults (Tang & Wang 2018 and the authors' code): d=50, L=5, T=3, 16/4 filters,
    # dropout 0.5, BCE with 3 negatives per window, Adam 1e-3, L2 1e-6, batch 512, at most 50 epochs,
    # early-stopped on validation NDCG@10 (patience 5) where the protocol has a validation split.
    "paper": {
        "model": "caser",
        "model_params": {"embedding_dim": 50, "L": 5, "num_h_filters": 16, "num_v_filters": 4, "dropout": 0.5},
        "train": {"loss": "bce", "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 512, "epochs": 50, "T": 3,
                  "num_negatives": 3, "early_stopping_metric": "ndcg@10", "patience": 5},
    },
    # The best Caser found on ML-100K under loo-full, chosen by validation NDCG@10 (README, "Comparing
    # models"): the paper's network trained with full softmax cross-entropy on the next item, early
    # stopping on validation. Needs a protocol with a validation split (loo-full, loo-sampled, caser-paper).
    "tuned": {
        "model": "caser",
        "model_params": {"embedding_dim": 50, "L": 5, "num_h_filters": 16, "num_v_filters": 4, "dropout": 0.5},
        "train": {"loss": "softmax", "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 512, "epochs": 40, "T": 1,
                  "early_stopping_metric": "ndcg@10", "patience": 4},
        "eval": {"protocols": ["loo-full"]},
    },
    # Session-based Caser: no user embedding (a session has no long-term identity), the sequence only.
    "caser-session": {
        "model": "caser",
        "model_params": {"embedding_dim": 50, "L": 5, "num_h_filters": 16, "num_v_filters": 4, "dropout": 0.3,
                         "use_user": False},
        "train": {"loss": "softmax", "lr": 1e-2, "weight_decay": 0.0, "batch_size": 256, "epochs": 30, "T": 1},
        "eval": {"protocols": ["session"]},
    },
    # Baselines, with settings chosen on ML-100K under d2l-fixed (benchmarks/RESULTS-models.md). SASRec and
    # GRU4Rec train at every position of chunks of L + 1 items, with full softmax cross-entropy.
    "pop": {"model": "pop", "train": {"epochs": 1}},
    "markov": {"model": "markov", "model_params": {"L": 5}, "train": {"epochs": 1}},
    "bprmf": {
        "model": "bprmf",
        "model_params": {"embedding_dim": 64},
        "train": {"loss": "bpr", "lr": 5e-3, "weight_decay": 0.0, "batch_size": 1024, "epochs": 20},
    },
    "gru4rec": {
        "model": "gru4rec",
        "model_params": {"L": 20, "embedding_dim": 64, "dropout": 0.2},
        "train": {"loss": "softmax", "lr": 2e-3, "batch_size": 64, "epochs": 20},
    },
    "sasrec": {
        "model": "sasrec",
        "model_params": {"L": 50, "embedding_dim": 64, "num_blocks": 2, "num_heads": 1, "dropout": 0.2},
        "train": {"loss": "softmax", "lr": 2e-3, "batch_size": 64, "epochs": 20},
    },
}

_SECTIONS = {"data": DataConfig, "train": TrainConfig, "eval": EvalConfig}
_TOP_LEVEL = {"model", "model_params", "seed"}


def _merge(base: dict[str, Any], update: Mapping[str, Any], where: str) -> dict[str, Any]:
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


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
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


def build_run_config(raw: Mapping[str, Any], where: str = "config") -> RunConfig:
    """Turn a nested mapping into a validated RunConfig; unknown keys are errors, not defaults."""
    sections = {}
    for name, cls in _SECTIONS.items():
        try:
            sections[name] = cls(**raw.get(name, {}))
        except TypeError as err:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"{where}: bad [{name}] setting ({err}); known: {known}") from None
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{where}: seed must be a non-negative integer, got {seed!r}")
    model, model_params = str(raw.get("model", "caser")), dict(raw.get("model_params", {}))
    model_config(model, model_params)                  # validate the model's settings now, not after loading data
    return RunConfig(model=model, model_params=model_params, seed=seed, **sections)


def with_settings(cfg: RunConfig, overrides: Mapping[str, Any], where: str = "settings") -> RunConfig:
    """A copy of `cfg` with dotted settings changed ('model_params.L' -> 3), validated like any config."""
    return build_run_config(_merge(cfg.to_dict(), _nest(overrides), where), where)


def resolve_run_config(preset: str | None = None, config_file: Path | None = None,
                       overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Preset, then TOML file, then flags ('train.lr' -> value; None values are ignored)."""
    raw: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
        raw = _merge(raw, PRESETS[preset], f"preset {preset}")
    if config_file is not None:
        raw = _merge(raw, load_toml(config_file), str(config_file))
    flags = _nest(overrides or {})
    if preset is not None and "model" in flags and flags["model"] != PRESETS[preset].get("model", flags["model"]):
        raise ConfigError(f"preset {preset!r} is for model {PRESETS[preset]['model']!r}, not {flags['model']!r}")
    raw = _merge(raw, flags, "flags")
    return build_run_config(raw)
