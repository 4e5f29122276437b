"""Caser: the book's parameter count, equivalence with literal convolutions, switches, losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqrec.errors import ConfigError
from seqrec.models.base import count_parameters
from seqrec.models.registry import PRESETS, build_model

BOOK = PRESETS["d2l"]["model_params"]


def test_book_config_has_65286_parameters():
    assert count_parameters(build_model("caser", BOOK, 943, 1682)) == 65_286


def test_fast_convolutions_equal_conv2d():
    torch.manual_seed(0)
    model = build_model("caser", BOOK | {"dropout": 0.0}, 20, 30).eval()
    seqs = torch.randint(0, 31, (9, 5))
    E = model.item_emb(seqs).unsqueeze(1)                                      # (B, 1, L, k)
    o_v = model.conv_v(E).flatten(1)
    o_h = [F.relu(conv(E)).squeeze(3).amax(2) for conv in model.conv_h]
    expected = F.relu(model.fc(torch.cat([o_v, *o_h], 1)))
    torch.testing.assert_close(model.short_term(seqs), expected)


def test_score_agrees_with_score_all_and_padding_stays_zero():
    model = build_model("caser", BOOK, 20, 30).eval()
    users, seqs = torch.tensor([0, 3, 20]), torch.tensor([[0, 0, 1, 2, 3], [4, 5, 6, 7, 8], [0] * 5])
    items = torch.arange(31).expand(3, -1)
    torch.testing.assert_close(model.score(users, seqs, items), model.score_all(users, seqs))
    assert model.score_all(users, seqs).shape == (3, 31)
    assert not model.item_emb.weight[0].any() and not model.user_emb.weight[0].any()


@pytest.mark.parametrize(("switch", "removed"), [({"num_h_filters": 0}, "conv_h"), ({"num_v_filters": 0}, "conv_v"),
                                                 ({"use_user": False}, "user_emb")])
def test_switches_remove_their_component(switch, removed):
    full = build_model("caser", BOOK, 943, 1682)
    ablated = build_model("caser", BOOK | switch, 943, 1682)
    assert count_parameters(ablated) < count_parameters(full)
    assert not any(name.startswith(removed) for name, _ in ablated.named_parameters())


def test_neither_convolution_leaves_the_user_embedding_only():
    model = build_model("caser", BOOK | {"num_h_filters": 0, "num_v_filters": 0}, 10, 12).eval()
    users = torch.tensor([1, 2])
    a = model.score_all(users, torch.tensor([[1, 2, 3, 4, 5]] * 2))
    b = model.score_all(users, torch.tensor([[6, 7, 8, 9, 10]] * 2))
    torch.testing.assert_close(a, b)                                            # the sequence is ignored
    with pytest.raises(ConfigError, match="at least one"):
        build_model("caser", BOOK | {"num_h_filters": 0, "num_v_filters": 0, "use_user": False}, 10, 12)


@pytest.mark.parametrize("bad", [{"L": 0}, {"dropout": 1.5}, {"h_activation": "gelu2"}, {"nope": 1}])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        build_model("caser", BOOK | bad, 10, 10)


@pytest.mark.parametrize("use_user", [True, False])
def test_tied_item_embeddings_score_with_the_input_embeddings(use_user):
    torch.manual_seed(0)
    settings = BOOK | {"tie_item_embeddings": True, "use_user": use_user}
    model = build_model("caser", settings, 20, 30).eval()
    untied = build_model("caser", BOOK | {"use_user": use_user}, 20, 30)
    assert count_parameters(untied) - count_parameters(model) == 30 * BOOK["embedding_dim"]   # padding rows not counted
    users, seqs = torch.tensor([0, 3, 20]), torch.tensor([[0, 0, 1, 2, 3], [4, 5, 6, 7, 8], [0] * 5])
    items = torch.arange(31).expand(3, -1)
    torch.testing.assert_close(model.score(users, seqs, items), model.score_all(users, seqs))
    torch.testing.assert_close(model.score(users, seqs, torch.arange(31)), model.score_all(users, seqs))
    output = model.factors(users, seqs)[1]
    k = BOOK["embedding_dim"]
    torch.testing.assert_close(output[:, :k], model.item_emb.weight)             # v_i = [q_i, w_i]
    model.score(users, seqs, torch.tensor([[7]] * 3)).sum().backward()
    assert model.item_emb.weight.grad[7].any()                                   # item 7 learns as an output too


def test_tied_item_embeddings_need_the_convolutions():
    with pytest.raises(ConfigError, match="tie_item_embeddings"):
        build_model("caser", BOOK | {"num_h_filters": 0, "num_v_filters": 0, "tie_item_embeddings": True}, 10, 12)
