"""Losses: hand-computed values, finiteness at extreme scores, and the direction of every gradient."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqrec.losses import FULL_LOSSES, SAMPLED_LOSSES, corrected_softmax_loss, sampled_softmax_loss, softmax_loss


@pytest.mark.parametrize("name", sorted(SAMPLED_LOSSES))
def test_sampled_losses_are_finite_at_large_scores_and_prefer_ranking_positives_first(name):
    loss = SAMPLED_LOSSES[name]
    big = torch.tensor([[50.0]]), torch.tensor([[-50.0, -50.0]])
    assert torch.isfinite(loss(*big)) and torch.isfinite(loss(big[1][:, :1], big[0].expand(1, 2)))
    good, bad = loss(torch.tensor([[2.0]]), torch.tensor([[-2.0]])), loss(torch.tensor([[-2.0]]), torch.tensor([[2.0]]))
    assert good < bad


@pytest.mark.parametrize("name", sorted(SAMPLED_LOSSES))
def test_sampled_losses_push_targets_up_and_negatives_down(name):
    pos = torch.zeros(3, 2, requires_grad=True)                       # T = 2 targets
    neg = torch.zeros(3, 4, requires_grad=True)                       # N = 4 negatives
    SAMPLED_LOSSES[name](pos, neg).backward()
    assert (pos.grad < 0).all() and (neg.grad > 0).all()


def test_sampled_softmax_is_cross_entropy_against_the_negatives():
    pos, neg = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, -1.0, 2.0]])
    expected = [math.log(math.exp(p) + sum(math.exp(n) for n in (0.5, -1.0, 2.0))) - p for p in (1.0, 0.0)]
    assert sampled_softmax_loss(pos, neg).item() == pytest.approx(sum(expected) / 2)


def test_softmax_excludes_the_padding_column_and_averages_over_targets():
    scores = torch.tensor([[100.0, 1.0, 2.0, 3.0]])                   # column 0 (padding) must not count
    targets = torch.tensor([[3, 1]])
    log_z = math.log(sum(math.exp(s) for s in (1.0, 2.0, 3.0)))
    assert softmax_loss(scores, targets).item() == pytest.approx(((log_z - 3) + (log_z - 1)) / 2)
    assert softmax_loss(scores, targets).item() == pytest.approx(
        torch.nn.functional.cross_entropy(scores[:, 1:].expand(2, -1), targets[0] - 1).item())


def test_softmax_ignores_target_zero_and_takes_any_leading_shape():
    scores = torch.randn(2, 3, 6)                                       # (B, L, num_items + 1)
    targets = torch.tensor([[[0], [4], [2]], [[5], [0], [0]]])          # 0: no target at that position
    real = targets.squeeze(2) != 0
    expected = softmax_loss(scores[real], targets[real])
    assert softmax_loss(scores, targets).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("name", sorted(FULL_LOSSES))
def test_full_losses_are_finite_at_large_scores_and_push_the_target_up(name):
    scores = torch.tensor([[0.0, 50.0, -50.0, 50.0], [0.0, -50.0, 50.0, -50.0]], requires_grad=True)
    targets = torch.tensor([[2], [1]])
    loss = FULL_LOSSES[name](scores, targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()
    assert scores.grad[0, 2] < 0 and scores.grad[1, 1] < 0 and (scores.grad[:, 0] == 0).all()


def test_corrected_softmax_over_every_item_drawn_once_is_the_full_softmax():
    torch.manual_seed(0)
    scores = torch.randn(4, 11)                                   # column 0 is padding
    targets = torch.tensor([[3], [1], [10], [7]])
    items = torch.arange(1, 11)                                   # every real item once: count 1, log count 0
    zeros = torch.zeros(10)
    hit = items[None, :] == targets
    got = corrected_softmax_loss(scores.gather(1, targets)[:, 0], scores[:, 1:], hit, zeros[:4], zeros)
    torch.testing.assert_close(got, softmax_loss(scores, targets))


def test_label_smoothing_is_cross_entropy_against_the_smoothed_distribution_over_real_items():
    torch.manual_seed(0)
    scores, targets = torch.randn(4, 7) * 3, torch.tensor([[1], [6], [3], [0]])     # a target 0 counts nowhere
    real = targets[:3, 0] - 1
    for smoothing in (0.0, 0.1, 0.5):
        expected = F.cross_entropy(scores[:3, 1:], real, label_smoothing=smoothing)
        torch.testing.assert_close(softmax_loss(scores, targets, smoothing), expected)
