"""Model registry: a plain dict from name to (config class, model class)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from seqrec.errors import ConfigError
from seqrec.models.base import SequentialRecommender, count_parameters
from seqrec.models.caser import Caser, CaserConfig

MODELS: dict[str, tuple[type, type[nn.Module]]] = {"caser": (CaserConfig, Caser)}


def model_config(name: str, params: Mapping[str, Any]) -> Any:
    """The model's frozen config from a mapping; unknown names and keys are errors."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    config_cls = MODELS[name][0]
    try:
        return config_cls(**params)
    except TypeError as err:
        raise ConfigError(f"bad setting for model {name!r}: {err}") from None


def build_model(name: str, params: Mapping[str, Any], num_users: int, num_items: int) -> nn.Module:
    return MODELS[name][1](model_config(name, params), num_users, num_items)


__all__ = ["MODELS", "SequentialRecommender", "build_model", "count_parameters", "model_config"]
