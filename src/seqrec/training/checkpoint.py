"""Training checkpoints: everything needed to continue after an epoch, as JSON plus safetensors (no pickle).

    checkpoint/state.json        epoch, history, numpy RNG state, optimizer hyper-parameters, and
                                 the caller's own JSON (run settings, early-stopping state)
    checkpoint/tensors.safetensors  model.*, optimizer.<param>.<name>, torch_rng, and the caller's tensors

A checkpoint folder is written atomically (seqrec.atomic), so a crash mid-write leaves the previous one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from seqrec.atomic import write_folder
from seqrec.errors import SeqrecError

STATE, TENSORS = "state.json", "tensors.safetensors"


@dataclass
class TrainState:
    """fit()'s state after `epoch` epochs; `extra` and `extra_tensors` belong to the caller (early stopping)."""

    epoch: int
    history: list[dict[str, float]]
    model: dict[str, Tensor]
    optimizer: dict[str, Any]                      # torch optimizer state_dict
    rng: dict[str, Any]                            # numpy Generator.bit_generator.state
    torch_rng: Tensor                              # torch.get_rng_state()
    done: bool = False                             # training ended after `epoch` (early stopping or last epoch)
    extra: dict[str, Any] = field(default_factory=dict)
    extra_tensors: dict[str, Tensor] = field(default_factory=dict)


def save_checkpoint(state: TrainState, path: Path) -> Path:
    tensors = {f"model.{k}": v for k, v in state.model.items()}
    for param, slots in state.optimizer["state"].items():
        tensors |= {f"optimizer.{param}.{name}": value for name, value in slots.items()}
    tensors |= {"torch_rng": state.torch_rng} | {f"extra.{k}": v for k, v in state.extra_tensors.items()}
    meta = {"epoch": state.epoch, "done": state.done, "history": state.history, "rng": state.rng,
            "optimizer_groups": state.optimizer["param_groups"], "extra": state.extra}

    def fill(folder: Path) -> None:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, folder / TENSORS)
        (folder / STATE).write_text(json.dumps(meta, allow_nan=False) + "\n")

    return write_folder(path, fill)


def load_checkpoint(path: Path) -> TrainState:
    try:
        meta = json.loads((path / STATE).read_text())
        tensors = load_file(path / TENSORS)
    except FileNotFoundError:
        raise SeqrecError(f"{path}: no checkpoint here (a run writes one after each epoch; it is removed when the "
                          "run finishes)") from None
    except (json.JSONDecodeError, SafetensorError, OSError) as err:
        raise SeqrecError(f"{path}: the checkpoint cannot be read ({err})") from None
    model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    slots: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, param, name = key.split(".", 2)
            slots.setdefault(int(param), {})[name] = value
    extra_tensors = {k.removeprefix("extra."): v for k, v in tensors.items() if k.startswith("extra.")}
    return TrainState(meta["epoch"], meta["history"], model,
                      {"state": slots, "param_groups": meta["optimizer_groups"]}, meta["rng"],
                      tensors["torch_rng"], meta["done"], meta["extra"], extra_tensors)


def capture(epoch: int, history: list[dict[str, float]], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            rng_state: dict[str, Any], done: bool) -> TrainState:
    """The state after `epoch`; its tensors are the live ones, so save it before training goes on."""
    opt = optimizer.state_dict()
    opt_state = {param: {name: torch.as_tensor(value) for name, value in slots.items()}
                 for param, slots in opt["state"].items()}
    return TrainState(epoch, history, model.state_dict(), {"state": opt_state, "param_groups": opt["param_groups"]},
                      rng_state, torch.get_rng_state(), done)
