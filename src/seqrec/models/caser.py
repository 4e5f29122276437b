"""Caser (Tang & Wang, WSDM 2018) as in D2L 17.7: convolutions over the last L item embeddings.

    E = [q_{t-L}, ..., q_{t-1}]                       (L, k)  embeddings of the last L items
    o  = maxpool_t(phi_h(conv_h(E)))                  (n_h * L,) one max per filter and height h = 1..L
    o' = phi_v(conv_v(E))                             (n_v * k,) weighted sums over the L rows
    z  = phi_fc(W [o, o'] + b)                        (k,)       short-term intent (dropout on [o, o'])
    y_i = v_i . [z, p_u] + b'_i                                   with long-term user embedding p_u

Each part can be switched off: horizontal (num_h_filters=0), vertical (num_v_filters=0), user
embedding (use_user=False). With no convolution the state is p_u alone; without the user it is z.
tie_item_embeddings=True scores with v_i = [q_i, w_i]: the input embedding q_i of item i meets z, and
only the part w_i that meets p_u is an output embedding of its own (a sparse item learns from both ends).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.models.base import ADAM_SPACE, ModelSpec, check_settings, dot_all, shared_scores

ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda x: x}


@dataclass(frozen=True)
class CaserConfig:
    L: int = 5                    # window length
    embedding_dim: int = 50       # paper: d; D2L: k (num_factors)
    num_h_filters: int = 16       # horizontal filters per height h = 1..L (D2L: d; caser_pytorch: nh)
    num_v_filters: int = 4        # vertical filters (D2L: d_prime; caser_pytorch: nv)
    dropout: float = 0.5          # before the fully connected layer (D2L: 0.05)
    use_user: bool = True         # long-term user embedding p_u
    h_activation: str = "relu"    # on horizontal convolutions
    v_activation: str = "identity"  # on the vertical convolution
    fc_activation: str = "relu"   # on the fully connected layer
    init_std: float = 0.01        # Normal(0, init_std) for weights and embeddings; layer biases start at 0
    tie_item_embeddings: bool = False  # the output embedding's z part is the input embedding q_i

    def __post_init__(self) -> None:
        checks = [
            (self.use_user or self.num_h_filters or self.num_v_filters,
             "Caser needs at least one of: horizontal filters, vertical filters, the user embedding"),
            (self.uses_sequence or not self.tie_item_embeddings,
             "model tie_item_embeddings needs the convolutions (their input item embeddings)"),
        ]
        for name in ("h_activation", "v_activation", "fc_activation"):
            value = getattr(self, name)
            known = ", ".join(ACTIVATIONS)
            checks.append((value in ACTIVATIONS, f"model {name} must be one of {known}, got {value!r}"))
        check_settings(self, checks)

    @property
    def uses_sequence(self) -> bool:
        return bool(self.num_h_filters or self.num_v_filters)


class Caser(nn.Module):
    def __init__(self, config: CaserConfig, num_users: int, num_items: int) -> None:
        super().__init__()
        self.config, k, L = config, config.embedding_dim, config.L
        self.item_emb = nn.Embedding(num_items + 1, k, padding_idx=0) if config.uses_sequence else None
        self.user_emb = nn.Embedding(num_users + 1, k, padding_idx=0) if config.use_user else None
        self.conv_v = nn.Conv2d(1, config.num_v_filters, (L, 1)) if config.num_v_filters else None
        self.conv_h = nn.ModuleList(nn.Conv2d(1, config.num_h_filters, (h, k)) for h in range(1, L + 1)
                                    if config.num_h_filters)
        fc_in = config.num_v_filters * k + config.num_h_filters * L
        self.fc = nn.Linear(fc_in, k) if config.uses_sequence else None
        self.dropout = nn.Dropout(config.dropout)
        own_out_dim = k * (int(config.uses_sequence and not config.tie_item_embeddings) + int(config.use_user))
        self.out_emb = nn.Embedding(num_items + 1, own_out_dim, padding_idx=0) if own_out_dim else None
        self.out_bias = nn.Embedding(num_items + 1, 1, padding_idx=0)
        self.phi_h, self.phi_v, self.phi_fc = (ACTIVATIONS[a] for a in
                                               (config.h_activation, config.v_activation, config.fc_activation))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for name, param in self.named_parameters():
            if name.endswith(".bias"):
                param.zero_()
            else:
                param.normal_(0.0, self.config.init_std)
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                module.weight[module.padding_idx].zero_()

    def short_term(self, seqs: Tensor) -> Tensor:
        """The convolutions written as matrix products (same parameters and outputs as Conv2d, faster on CPU)."""
        E = self.item_emb(seqs)                                                      # (B, L, k)
        parts = []
        if self.conv_v is not None:                                                  # G: (n_v, 1, L, 1)
            o_v = self.conv_v.weight.flatten(1) @ E + self.conv_v.bias[:, None]      # (B, n_v, k)
            parts.append(self.phi_v(o_v).flatten(1))                                 # (B, n_v * k)
        for h, conv in enumerate(self.conv_h, start=1):                              # F_h: (n_h, 1, h, k)
            rows = E.unfold(1, h, 1).transpose(2, 3).flatten(2)                      # (B, L - h + 1, h * k)
            o_h = F.linear(rows, conv.weight.flatten(1), conv.bias)                  # (B, L - h + 1, n_h)
            parts.append(self.phi_h(o_h).amax(1))                                    # (B, n_h)
        return self.phi_fc(self.fc(self.dropout(torch.cat(parts, 1))))              # (B, k)

    def user_state(self, users: Tensor, seqs: Tensor) -> Tensor:
        parts = []
        if self.fc is not None:
            parts.append(self.short_term(seqs))                                      # (B, k)
        if self.user_emb is not None:
            parts.append(self.user_emb(users))                                       # (B, k)
        return torch.cat(parts, 1)                                                   # (B, state_dim)

    def _output_tables(self) -> list[nn.Embedding]:
        """The tables whose rows, side by side, are v_i: out_emb, or with tied embeddings [q_i, w_i] (q_i alone
        without the user)."""
        tied = [self.item_emb] if self.config.tie_item_embeddings else []
        return tied + ([self.out_emb] if self.out_emb is not None else [])

    def output_embeddings(self) -> Tensor:                                          # (num_items + 1, D)
        tables = self._output_tables()
        return tables[0].weight if len(tables) == 1 else torch.cat([t.weight for t in tables], 1)

    def output_rows(self, items: Tensor) -> Tensor:                                 # (..., D)
        """v_i of `items` (any shape), gathered without building every item's row."""
        tables = self._output_tables()
        return tables[0](items) if len(tables) == 1 else torch.cat([t(items) for t in tables], -1)

    def score(self, users: Tensor, seqs: Tensor, items: Tensor) -> Tensor:          # (B, C)
        if items.dim() == 1:
            return shared_scores(self.user_state(users, seqs), self.output_embeddings(), items,
                                 self.out_bias.weight[:, 0])
        state = self.user_state(users, seqs).unsqueeze(2)                            # (B, D, 1)
        return (self.output_rows(items) @ state).squeeze(2) + self.out_bias(items).squeeze(2)

    def factors(self, users: Tensor, seqs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.user_state(users, seqs), self.output_embeddings(), self.out_bias.weight[:, 0]  # (B,D), (I,D), (I,)

    def score_all(self, users: Tensor, seqs: Tensor) -> Tensor:                    # (B, num_items + 1)
        return dot_all(*self.factors(users, seqs))


_PAPER_NETWORK = {"embedding_dim": 50, "L": 5, "num_h_filters": 16, "num_v_filters": 4, "dropout": 0.5}

SPEC = ModelSpec(
    name="caser", config=CaserConfig, module=Caser, regime="windows", factorised=True,
    summary="Caser (Tang & Wang 2018): horizontal and vertical convolutions over the last L items",
    presets={
        # The book's experiment (D2L 17.7): k=10, L=5, 16/4 filters, dropout 0.05, BPR, Adam 0.04.
        "d2l": {
            "model_params": {"embedding_dim": 10, "L": 5, "num_h_filters": 16, "num_v_filters": 4, "dropout": 0.05},
            "train": {"loss": "bpr", "lr": 0.04, "weight_decay": 1e-5, "batch_size": 4096, "epochs": 8, "T": 1,
                      "num_negatives": 1},
            "eval": {"protocols": ["d2l", "d2l-fixed"]},   # each reports hit@10, hit@50 (the protocol's ks)
        },
        # The Caser paper's defaults (Tang & Wang 2018 and the authors' code): d=50, L=5, T=3, 16/4 filters,
        # dropout 0.5, BCE with 3 negatives per window, Adam 1e-3, L2 1e-6, batch 512, at most 50 epochs,
        # early-stopped (patience 5) on the protocol's validation metric (NDCG@10; MAP under caser-paper)
        # where the protocol has a validation split.
        "paper": {
            "model_params": _PAPER_NETWORK,
            "train": {"loss": "bce", "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 512, "epochs": 50, "T": 3,
                      "num_negatives": 3, "early_stopping_metric": "auto", "patience": 5},
        },
        # The best Caser found on ML-100K under loo-full, chosen by validation NDCG@10 (README, "Comparing
        # models"): the paper's network trained with full softmax cross-entropy on the next item, early
        # stopping on validation. Needs a protocol with a validation split (not d2l).
        "tuned": {
            "model_params": _PAPER_NETWORK,
            "train": {"loss": "softmax", "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 512, "epochs": 40, "T": 1,
                      "early_stopping_metric": "auto", "patience": 4},
            "eval": {"protocols": ["loo-full"]},
        },
        # Session-based Caser: no user embedding (a session has no long-term identity), the sequence only. The
        # best of 32 `seqrec tune` trials on the validation sessions of ML-100K cut by a 30-minute gap (seed 0,
        # validation MRR@10 0.0669 against 0.0624 for the earlier preset, the search's first trial; README,
        # "Session-based recommendation"): tied item embeddings, padded windows, early stopping on MRR@10.
        "caser-session": {
            "model_params": {"embedding_dim": 100, "L": 7, "num_h_filters": 16, "num_v_filters": 8, "dropout": 0.6426,
                             "use_user": False, "tie_item_embeddings": True},
            "train": {"loss": "softmax", "lr": 2.742e-3, "weight_decay": 1e-5, "batch_size": 256, "epochs": 30, "T": 2,
                      "windows": "padded", "early_stopping_metric": "auto", "patience": 5},
            "eval": {"protocols": ["session"]},
        },
    },
    # What `seqrec tune` samples over a preset (e.g. tuned): the paper's grid (L, d, filters, dropout), the
    # optimiser, the loss with its negatives and targets per window, and what helps short histories (no user
    # embedding, tied item embeddings, padded windows).
    search_space=ADAM_SPACE | {
        "train.loss": ("categorical", ("bpr", "bce", "softmax")),
        "train.num_negatives": ("int", 1, 5),                 # used by bpr and bce only
        "train.T": ("int", 1, 3),
        "model_params.L": ("int", 1, 9),
        "model_params.embedding_dim": ("categorical", (16, 32, 50, 64, 100)),
        "model_params.num_h_filters": ("categorical", (4, 8, 16, 32)),
        "model_params.num_v_filters": ("categorical", (1, 2, 4, 8)),
        "model_params.dropout": ("float", 0.0, 0.7),
        "model_params.use_user": ("categorical", (True, False)),
        "model_params.tie_item_embeddings": ("categorical", (False, True)),
        "train.windows": ("categorical", ("complete", "padded")),
        "train.label_smoothing": ("float", 0.0, 0.5),        # softmax only (README, "Every model on four datasets")
    },
    search_conditions={"train.label_smoothing": ("train.loss", ("softmax",), 0.0)},
)
