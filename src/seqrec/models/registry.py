"""The model registry: every model's spec by name, and the presets they declare."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from seqrec.errors import ConfigError
from seqrec.models import bert4rec, bprmf, caser, gru4rec, markov, popularity, sasrec
from seqrec.models.base import ModelSpec

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    caser.SPEC,
    sasrec.SPEC,
    gru4rec.SPEC,
    bprmf.SPEC,
    markov.SPEC,
    popularity.SPEC,
    bert4rec.SPEC,
)}

# Every preset by name, with the model it configures: {"model": name, "model_params": ..., "train": ..., ...}.
PRESETS: dict[str, dict[str, Any]] = {name: {"model": spec.name, **preset}
                                      for spec in MODELS.values() for name, preset in spec.presets.items()}


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def model_config(name: str, params: Mapping[str, Any]) -> Any:
    """The model's frozen config from a mapping; unknown names and keys are errors."""
    try:
        return model_spec(name).config(**params)
    except TypeError as err:
        raise ConfigError(f"bad setting for model {name!r}: {err}") from None


def build_model(name: str, config: Any, num_users: int, num_items: int) -> nn.Module:
    """Model `name` from its typed config (or a mapping of its settings)."""
    if isinstance(config, Mapping):
        config = model_config(name, config)
    return model_spec(name).build(config, num_users, num_items)
