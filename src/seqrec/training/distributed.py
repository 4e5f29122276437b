"""Many processes through PyTorch's own engine: `torchrun --nproc-per-node N -m seqrec train ...`.

torchrun sets RANK, WORLD_SIZE and the rendezvous; `join` starts the process group (gloo on CPU,
NCCL on CUDA). Each rank trains a disjoint shard of every epoch's examples (the same shuffle on
every rank, then every world-th example), DistributedDataParallel averages the gradients, and the
run's numbers are a function of (seed, world size). Evaluation is split across ranks and the
per-rank means are combined by their case counts; rank 0 alone writes checkpoints and outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


ONE_PROCESS = Ranks()


def launched_as_main() -> bool:
    """False in the processes torchrun started as ranks 1, 2, ...: they train but report nothing."""
    return os.environ.get("RANK", "0") == "0"


def join(device: torch.device) -> Ranks:
    """The process group torchrun describes in the environment (started once); one process without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 or not dist.is_available():
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size())


def device_for(name: str) -> str:
    """Under torchrun, `cuda` means this process's own GPU (LOCAL_RANK)."""
    if name in ("cuda", "auto") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return name


def shard(order: np.ndarray, ranks: Ranks) -> np.ndarray:
    """This rank's part of an epoch's shuffled example order: every world-th example from its rank on."""
    return order[ranks.rank::ranks.world]


def sum_over_ranks(values: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The element-wise sum of `values` over every rank (the values themselves in one process)."""
    if ranks.world > 1:
        values = values.clone()
        dist.all_reduce(values)
    return values


def barrier(ranks: Ranks) -> None:
    if ranks.world > 1:
        dist.barrier()
