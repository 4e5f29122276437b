"""A run's memory plan, checked before anything large is allocated: a setting that cannot fit (say
L = 100000) is a one-line error naming what needs the memory, not a process killed by the OS."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from seqrec.errors import ConfigError

ADAM_COPIES = 4          # weights, gradients and Adam's two moments


def available_bytes() -> int:
    """Memory the run may use: MemAvailable from /proc/meminfo, else the machine's physical memory."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def model_bytes(model: nn.Module) -> int:
    """Bytes to train `model` (built on the meta device: nothing allocated): parameters x ADAM_COPIES + buffers."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return params * ADAM_COPIES + sum(b.numel() * b.element_size() for b in model.buffers())


def check_fits(needs: dict[str, int], hint: str) -> None:
    """Raise ConfigError when the parts of `needs` ({what: bytes}) add up to more than the available memory."""
    total, free = sum(needs.values()), available_bytes()
    if total > free:
        parts = ", ".join(f"{what} {size / 2**30:,.1f} GB" for what, size in needs.items())
        raise ConfigError(f"this run needs about {total / 2**30:,.1f} GB ({parts}) but {free / 2**30:,.1f} GB of "
                          f"memory is available; {hint}")


def on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """The module `build()` makes, on the meta device: shapes without memory or random numbers."""
    with torch.device("meta"):
        return build()
