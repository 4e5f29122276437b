"""Model selection: early stopping on a validation metric (higher is better), keeping the best weights."""

from __future__ import annotations

import math

from torch import Tensor, nn


class EarlyStopping:
    """Call `step(epoch, value, model)` after each validated epoch; it returns True when training should stop.

    Stops once `patience` epochs have passed without a strictly better value (NaN never improves);
    `restore(model)` loads the weights of the best epoch (copied, so later updates do not touch them).
    """

    def __init__(self, metric: str, patience: int) -> None:
        self.metric, self.patience = metric, patience
        self.best_epoch, self.best_value = 0, -math.inf
        self._best_state: dict[str, Tensor] | None = None

    def step(self, epoch: int, value: float, model: nn.Module) -> bool:
        if not math.isnan(value) and value > self.best_value:
            self.best_epoch, self.best_value = epoch, value
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self._best_state is not None:
            model.load_state_dict(self._best_state)

    def state(self) -> tuple[dict[str, float | int | None], dict[str, Tensor]]:
        """(JSON-able numbers, the best weights) for a checkpoint; `load_state` takes them back."""
        value = self.best_value if math.isfinite(self.best_value) else None
        return {"best_epoch": self.best_epoch, "best_value": value}, self._best_state or {}

    def load_state(self, numbers: dict[str, float | int | None], weights: dict[str, Tensor]) -> None:
        self.best_epoch = int(numbers["best_epoch"])
        self.best_value = -math.inf if numbers["best_value"] is None else float(numbers["best_value"])
        self._best_state = dict(weights) or None
