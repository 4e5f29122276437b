"""The one protocol every model meets, and the spec by which a model declares itself.

Training, evaluation, recommendation and serving use `score` and `score_all` only; how a model
learns is its spec's `regime` (a name the training package resolves), never a type check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from seqrec.errors import ConfigError


class SequentialRecommender(Protocol):
    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:
        """users (B,), seqs (B, L) item indices (0 = padding), items (B, C) per row or (C,) shared -> (B, C)."""
        ...

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:
        """users (B,), seqs (B, L) -> scores of every item index (B, num_items + 1); column 0 is padding."""
        ...


class CountingRecommender(SequentialRecommender, Protocol):
    """Regime "counting": learns by one `fit_counts` pass over the training windows instead of epochs.

    users (W,), inputs (W, L) left-padded with 0, targets (W, T): one row per training window.
    """

    def fit_counts(self, users: Tensor, inputs: Tensor, targets: Tensor) -> None: ...


class PositionwiseRecommender(SequentialRecommender, Protocol):
    """Regimes "positions" and "masked": a state at every input position scores the item there.

    "positions" (SASRec, GRU4Rec) supervises every position t with the item after seqs[:, : t + 1];
    "masked" (BERT4Rec) supervises the masked positions of a sequence with the items they hide.
    """

    def score_positions(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:
        """users (B,), seqs (B, L), items (B, L, C), or (C,) shared -> (B, L, C): items[:, t] scored at position t."""
        ...

    def score_all_positions(self, users: Tensor, seqs: Tensor) -> Tensor:
        """users (B,), seqs (B, L) -> (B, L, num_items + 1)."""
        ...


class MaskedRecommender(PositionwiseRecommender, Protocol):
    """Regime "masked": its full softmax scores only the hidden positions, a share mask_prob of the real ones."""

    def score_all_positions(self, users: Tensor, seqs: Tensor, where: Tensor | None = None) -> Tensor:
        """As above; with where (B, L) bool, only the P positions it marks, in row order -> (P, num_items + 1)."""
        ...


class FactorisedRecommender(SequentialRecommender, Protocol):
    """A model whose scores are a product: score_all(users, seqs) = states @ weight.T + bias (ModelSpec.factorised).

    Evaluation then scores the catalogue block by block from the factors and never holds (B, num_items + 1).
    """

    def factors(self, users: Tensor, seqs: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """states (B, D), weight (num_items + 1, D), bias (num_items + 1,) or None."""
        ...


def dot_all(states: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """states (B, D) . weight (I, D)^T + bias (I,) -> (B, I) in one fused product (addmm)."""
    return states @ weight.T if bias is None else torch.addmm(bias, states, weight.T)


def history_of_L(config: Any) -> int:
    return config.L


@dataclass(frozen=True)
class ModelSpec:
    """What a model module declares about itself; the registry (seqrec.models.registry) lists them.

    config: frozen dataclass of the model's settings, built from `[model_params]`.
    module: the nn.Module, built as module(config, num_users, num_items).
    regime: how it learns: "windows" (L inputs -> T targets), "positions" (every position of a
      chunk), "masked" (masked items of a chunk) or "counting" (one counting pass).
    history: how many recent items it reads, a function of its config (0: none, e.g. BPR-MF).
    factorised: its scores are states @ weight.T + bias (`factors`), which evaluation exploits.
    cuts_padding: its scores do not change when leading padding is cut from a batch (padded keys are
      masked, positions count from the end), so train.batch_order=by-length may cut each batch.
    presets: named settings, {"model_params": ..., "train": ..., "eval": ...}, chosen as each says.
    search_space: what `seqrec tune` samples over a preset, dotted setting -> ("float", low, high[, log]),
      ("int", low, high[, log]) or ("categorical", (choice, ...)), e.g. {"train.lr": ("float", 1e-4, 1e-2, True)}.
    search_conditions: settings of search_space drawn only under a condition, dotted setting -> (the setting it
      depends on, declared before it or fixed, the values under which it is drawn, its value otherwise), e.g.
      {"train.label_smoothing": ("train.loss", ("softmax",), 0.0)}.
    """

    name: str
    config: type
    module: Callable[[Any, int, int], nn.Module]
    regime: str
    summary: str
    history: Callable[[Any], int] = history_of_L
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    search_space: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    search_conditions: Mapping[str, tuple[str, tuple[Any, ...], Any]] = field(default_factory=dict)
    factorised: bool = False            # the module is a FactorisedRecommender
    cuts_padding: bool = False

    def build(self, config: Any, num_users: int, num_items: int) -> nn.Module:
        return self.module(config, num_users, num_items)


def shared_scores(states: Tensor, weight: Tensor, items: Tensor, bias: Tensor | None = None) -> Tensor:
    """Scores of candidates shared by every row: states (..., k), items (C,) -> (..., C) = states . weight[items]
    (+ bias[items]), one matrix product instead of a gather per row."""
    scores = states @ weight[items].T
    return scores if bias is None else scores + bias[items]


# Search-space entries (seqrec tune) the gradient-trained sequence models share: Adam's step and L2 penalty.
ADAM_SPACE: dict[str, tuple[Any, ...]] = {"train.lr": ("float", 1e-4, 1e-2, True),
                                          "train.weight_decay": ("categorical", (0.0, 1e-6, 1e-5, 1e-4))}


def sequence_space(losses: tuple[str, ...], lengths: tuple[int, ...]) -> dict[str, tuple[Any, ...]]:
    """ADAM_SPACE plus what the position-trained sequence models share: the loss among `losses`, negatives
    for the sampled ones, L among `lengths`, the embedding size and dropout."""
    return ADAM_SPACE | {
        "train.loss": ("categorical", losses),
        "train.num_negatives": ("int", 1, 128, True),         # used by the sampled losses only
        "model_params.L": ("categorical", lengths),
        "model_params.embedding_dim": ("categorical", (32, 64, 128)),
        "model_params.dropout": ("float", 0.0, 0.5),
    }


def count_parameters(model: nn.Module) -> int:
    """Learned parameters: every element, less the constant zero padding rows of embeddings."""
    total = sum(p.numel() for p in model.parameters())
    padding = sum(m.embedding_dim for m in model.modules() if isinstance(m, nn.Embedding) and m.padding_idx is not None)
    return total - padding


def check_config(checks: list[tuple[bool, str]]) -> None:
    """Raise ConfigError with the message of the first failed (ok, message) check."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


# Bounds of settings that several models share, by name: (test, what the test asks).
SHARED_BOUNDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "L": (lambda v: v >= 1, ">= 1"),
    "embedding_dim": (lambda v: v >= 1, ">= 1"),
    "num_blocks": (lambda v: v >= 1, ">= 1"),
    "num_layers": (lambda v: v >= 1, ">= 1"),
    "num_h_filters": (lambda v: v >= 0, ">= 0"),
    "num_v_filters": (lambda v: v >= 0, ">= 0"),
    "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "init_std": (lambda v: v > 0, "> 0"),
}


def check_settings(config: Any, checks: list[tuple[bool, str]] | None = None) -> None:
    """Check the shared bounds of the settings `config` has (SHARED_BOUNDS), then its own (ok, message) checks."""
    shared = [(test(getattr(config, name)), f"model {name} must be {rule}, got {getattr(config, name)!r}")
              for name, (test, rule) in SHARED_BOUNDS.items() if hasattr(config, name)]
    check_config(shared + (checks or []))
