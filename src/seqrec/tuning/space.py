"""The search space: a model's declared settings as Optuna distributions, and the base every trial starts from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import Trial

from seqrec.config import RunConfig
from seqrec.errors import ConfigError
from seqrec.evaluation.protocols import PROTOCOLS, VALIDATED_SPLITS, validated_protocols
from seqrec.models.registry import model_spec
from seqrec.settings import with_settings


def distribution(name: str, description: Sequence[Any]) -> BaseDistribution:
    """The Optuna distribution of one ModelSpec.search_space entry.

    ("float", low, high[, log]) -> FloatDistribution; ("int", low, high[, log]) -> IntDistribution;
    ("categorical", (choice, ...)) -> CategoricalDistribution.
    """
    kind, *args = description
    try:
        if kind in ("float", "int") and len(args) in (2, 3):
            cls = FloatDistribution if kind == "float" else IntDistribution
            return cls(args[0], args[1], log=bool(args[2]) if len(args) == 3 else False)
        if kind == "categorical" and len(args) == 1:
            return CategoricalDistribution(tuple(args[0]))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"search space entry {name}: {description!r} is not valid ({err})") from None
    raise ConfigError(f"search space entry {name}: {description!r} is not ('float', low, high[, log]), "
                      "('int', low, high[, log]) or ('categorical', (choices))")


def search_space(model: str, params: Sequence[str] = (), fixed: Sequence[str] = ()) -> dict[str, BaseDistribution]:
    """The distributions `seqrec tune` samples for `model`: the `params` part of its declared space (empty: all
    of it but the `fixed` settings)."""
    declared = model_spec(model).search_space
    if not declared:
        raise ConfigError(f"model {model} declares no search space (ModelSpec.search_space): nothing to tune")
    unknown = [p for p in params if p not in declared]
    if unknown:
        raise ConfigError(f"--params: {unknown[0]} is not in model {model}'s search space; known: "
                          f"{', '.join(declared)}")
    names = list(params) or [name for name in declared if name not in fixed]
    if not names:
        raise ConfigError(f"flags fix every setting of model {model}'s search space; nothing is left to tune")
    return {name: distribution(name, declared[name]) for name in names}


def flat_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted names: {'train': {'lr': 0.1}} -> {'train.lr': 0.1}."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            out |= flat_settings(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def own_values(cfg: RunConfig) -> dict[str, Any]:
    """cfg's value of every entry of its model's search space: enqueued, it makes cfg a search's first trial."""
    flat = flat_settings(cfg.to_dict())
    return {name: flat[name] for name in model_spec(cfg.model).search_space}


def base_trial(cfg: RunConfig, space: Mapping[str, BaseDistribution]) -> tuple[dict[str, Any], list[str]]:
    """cfg's values of the settings `space` samples (enqueued, cfg is a search's first trial), and those of them
    their distribution cannot draw ('model_params.L = 12'), which make cfg no point of the space."""
    def holds(dist: BaseDistribution, value: Any) -> bool:
        if isinstance(dist, CategoricalDistribution):
            return value in dist.choices
        return isinstance(dist, (FloatDistribution, IntDistribution)) and dist.low <= value <= dist.high

    values = {name: value for name, value in own_values(cfg).items() if name in space}
    return values, [f"{name} = {value!r}" for name, value in values.items() if not holds(space[name], value)]


def search_base(cfg: RunConfig, metric: str | None = None) -> RunConfig:
    """`cfg` with early stopping on the tuned metric (None: cfg's own, else the protocol's); a protocol without
    validation cases, or a metric that is not the protocol's, is a ConfigError."""
    primary = cfg.eval.protocols[0]
    if PROTOCOLS[primary].split not in VALIDATED_SPLITS:
        usable = validated_protocols()
        raise ConfigError(f"protocol {primary} has no validation split, and a search must never select on test "
                          f"data; tune under {usable}")
    metric = metric or cfg.train.early_stopping_metric or "auto"
    return with_settings(cfg, {"train.early_stopping_metric": metric}, "--metric")


def unmet_conditions(base: RunConfig, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The value otherwise of each conditional setting of base's model (ModelSpec.search_conditions) whose
    condition fails on `settings` laid over base: {'train.label_smoothing': 0.0} when the loss drawn is bpr."""
    current = flat_settings(base.to_dict()) | dict(settings)
    return {name: otherwise for name, (on, values, otherwise) in model_spec(base.model).search_conditions.items()
            if current[on] not in values}


def check_conditions(base: RunConfig, space: Mapping[str, BaseDistribution]) -> None:
    """A ConfigError when a setting of `space` can never be drawn: its condition's setting is not searched and
    base's value of it fails the condition (--params train.label_smoothing with train.loss fixed at bpr)."""
    conditions = model_spec(base.model).search_conditions
    for name in unmet_conditions(base, {}):
        on, values, _ = conditions[name]
        if name in space and on not in space:
            raise ConfigError(f"{name} is searched only when {on} is one of {list(values)}, and {on} is "
                              f"{flat_settings(base.to_dict())[on]!r} here: search {on} too or set it")


def suggest(trial: Trial, space: Mapping[str, BaseDistribution], base: RunConfig) -> dict[str, Any]:
    """The settings trial samples from `space` over `base`: {dotted setting: value}, to lay over base with
    with_settings. A conditional setting whose condition fails on what was drawn before it is not drawn and takes
    its value otherwise."""
    def one(name: str, dist: BaseDistribution) -> Any:
        if isinstance(dist, FloatDistribution):
            return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        if isinstance(dist, IntDistribution):
            return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        return trial.suggest_categorical(name, dist.choices)

    settings: dict[str, Any] = {}
    for name, dist in space.items():
        skipped = unmet_conditions(base, settings)
        settings[name] = skipped[name] if name in skipped else one(name, dist)
    return settings
