"""Small models of every registered model, their inputs and bundles, for the contract and export tests."""

from __future__ import annotations

import torch

from seqrec.bundle import Bundle, make_bundle
from seqrec.models.registry import MODELS, build_model, model_config
from tests.conftest import markov_log, run_config

NUM_USERS, NUM_ITEMS, B = 6, 15, 5
SMALL = {"caser": {"embedding_dim": 8}, "sasrec": {"embedding_dim": 8, "L": 7, "num_heads": 2},
         "gru4rec": {"embedding_dim": 8, "L": 7}, "bprmf": {"embedding_dim": 8},
         "bert4rec": {"embedding_dim": 8, "L": 7, "num_heads": 2}}


def history(name: str) -> int:
    return MODELS[name].history(model_config(name, SMALL.get(name, {})))


def make(name: str, seed: int = 0, num_users: int = NUM_USERS, num_items: int = NUM_ITEMS) -> torch.nn.Module:
    """A small model of `name`, counted on a few random windows if it learns by counting."""
    torch.manual_seed(seed)
    model = build_model(name, SMALL.get(name, {}), num_users, num_items)
    if MODELS[name].regime == "counting":
        g = torch.Generator().manual_seed(seed)
        model.fit_counts(torch.randint(1, num_users + 1, (40,), generator=g),
                         torch.randint(0, num_items + 1, (40, history(name)), generator=g),
                         torch.randint(1, num_items + 1, (40, 2), generator=g))
    return model.eval()


def batch(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Users (B,) with an unknown user 0, and left-padded sequences (B, L) with an empty one."""
    L = history(name)
    g = torch.Generator().manual_seed(1)
    seqs = torch.randint(1, NUM_ITEMS + 1, (B, L), generator=g)
    seqs[1, : L // 2] = 0                                            # a short history
    seqs[2] = 0                                                      # no history at all
    return torch.tensor([1, 2, 3, 0, NUM_USERS]), seqs



def small_bundle(name: str) -> Bundle:
    """An untrained small model of `name` (counted, if it counts) in a bundle over a small chain log."""
    log = markov_log(num_users=NUM_USERS, num_items=NUM_ITEMS, length=9, seed=4)
    model = make(name, num_users=log.num_users, num_items=log.num_items)
    return make_bundle(model, log, run_config(name, model_params=SMALL.get(name, {})))
