"""Resolve a run's settings: preset, then TOML file, then flags, checked once against the registries.

`seqrec.config` holds the plain dataclasses; this module is the one place that knows which
models, presets, losses, protocols, formats and datasets exist, and builds the typed model
config that `RunConfig` carries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from seqrec.config import RunConfig, build_sections, load_toml, merge_settings, nest_settings
from seqrec.data.catalog import DATASETS
from seqrec.data.filters import DEDUPE, SHORT_USERS, TIES
from seqrec.data.readers import FORMATS
from seqrec.errors import ConfigError
from seqrec.evaluation.protocols import (
    PROTOCOLS,
    VALIDATED_SPLITS,
    metric_key,
    metric_names,
    split_family,
    validated_protocols,
)
from seqrec.losses import LOSS_NAMES
from seqrec.models.registry import MODELS, PRESETS, model_config
from seqrec.training import resolve_device

DEFAULT_MODEL = "caser"


def _one_of(value: Any, known: Any, what: str) -> None:
    if value not in known:
        raise ConfigError(f"{what} must be one of {', '.join(known)}, got {value!r}")


def _check_names(cfg: RunConfig, where: str) -> None:
    data, train, evaluation = cfg.data, cfg.train, cfg.eval
    if data.path is None:
        _one_of(data.dataset, tuple(DATASETS), "data.dataset")
    if data.format is not None:
        _one_of(data.format, FORMATS, "data.format")
    _one_of(data.dedupe, DEDUPE, "data.dedupe")
    _one_of(data.short_users, SHORT_USERS, "data.short_users")
    _one_of(data.ties, TIES, "data.ties")
    _one_of(train.loss, LOSS_NAMES, "train.loss")
    unknown = [p for p in evaluation.protocols if p not in PROTOCOLS]
    if unknown:
        raise ConfigError(f"unknown protocol {unknown[0]!r}; known: {', '.join(PROTOCOLS)}")
    split_family(evaluation.protocols)
    _check_device(train.device)
    if train.refit and PROTOCOLS[evaluation.protocols[0]].split not in VALIDATED_SPLITS:
        usable = validated_protocols()
        raise ConfigError(f"train.refit needs a protocol with a validation split ({usable}), "
                          f"not {evaluation.protocols[0]}")
    if train.batch_order == "by-length" and not MODELS[cfg.model].cuts_padding:
        cutting = ", ".join(name for name, spec in sorted(MODELS.items()) if spec.cuts_padding)
        raise ConfigError(f"train.batch_order=by-length needs a model whose batches can be cut to their longest "
                          f"example ({cutting}), not {cfg.model}")
    windowed_regimes = ("windows", "counting")
    if train.windows == "padded" and MODELS[cfg.model].regime not in windowed_regimes:
        windowed = ", ".join(name for name, spec in sorted(MODELS.items()) if spec.regime in windowed_regimes)
        raise ConfigError(f"train.windows=padded applies to models trained on windows ({windowed}), not {cfg.model}")
    _check_precision(train.precision, train.device)
    metric = train.early_stopping_metric
    if metric is not None:
        primary = evaluation.protocols[0]
        names = metric_names(primary, evaluation.ks, evaluation.num_sampled)
        if metric_key(primary, metric, evaluation.num_sampled) not in names:
            shown = ", ".join(n for n in names if not n.startswith("hit@"))
            raise ConfigError(f"{where}: train.early_stopping_metric {metric!r} is not a metric of protocol "
                              f"{primary}; known: {shown}")


def _check_device(name: str) -> None:
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but this machine has no CUDA device; use auto or cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"train.device={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")


def _check_precision(precision: str, device: str) -> None:
    if precision == "fp16" and resolve_device(device).type != "cuda":
        raise ConfigError("train.precision=fp16 needs a CUDA device (on the CPU use bf16 or fp32)")


def build_run_config(raw: Mapping[str, Any], where: str = "config") -> RunConfig:
    """A validated RunConfig from a nested mapping; unknown names and keys are errors, not defaults.

    train.early_stopping_metric "auto" becomes the first protocol's selection metric (ndcg@10 for the
    leave-one-out protocols, map for caser-paper, mrr@10 for session).
    """
    seed, data, train, evaluation = build_sections(raw, where)
    if train.early_stopping_metric == "auto":
        primary = evaluation.protocols[0] if evaluation.protocols else None
        train = dataclasses.replace(train, early_stopping_metric=PROTOCOLS[primary].selection
                                    if primary in PROTOCOLS else None)
    model = str(raw.get("model", DEFAULT_MODEL))
    if model not in MODELS:
        raise ConfigError(f"{where}: unknown model {model!r}; known: {', '.join(sorted(MODELS))}")
    params = model_config(model, dict(raw.get("model_params", {})))
    cfg = RunConfig(model=model, model_params=params, seed=seed, data=data, train=train, eval=evaluation)
    _check_names(cfg, where)
    return cfg


def with_settings(cfg: RunConfig, overrides: Mapping[str, Any], where: str = "settings") -> RunConfig:
    """A copy of `cfg` with dotted settings changed ('model_params.L' -> 3), validated like any config."""
    return build_run_config(merge_settings(cfg.to_dict(), nest_settings(overrides), where), where)


def resolve_run_config(preset: str | None = None, config_file: Path | None = None,
                       overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Preset, then TOML file, then flags ('train.lr' -> value; None values are ignored)."""
    raw: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
        raw = merge_settings(raw, PRESETS[preset], f"preset {preset}")
    if config_file is not None:
        raw = merge_settings(raw, load_toml(config_file), str(config_file))
    flags = nest_settings(overrides or {})
    if preset is not None and flags.get("model", PRESETS[preset]["model"]) != PRESETS[preset]["model"]:
        raise ConfigError(f"preset {preset!r} is for model {PRESETS[preset]['model']!r}, not {flags['model']!r}")
    return build_run_config(merge_settings(raw, flags, "flags"))


def preset_for(model: str) -> str | None:
    """The preset named after `model` (e.g. sasrec), if the model declares one."""
    return model if PRESETS.get(model, {}).get("model") == model else None
