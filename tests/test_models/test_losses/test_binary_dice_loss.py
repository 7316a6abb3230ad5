import pytest
import torch
from mmseg.registry import MODELS


def build(**kwargs):
    return MODELS.build(dict(type='BinaryDiceLoss', **kwargs))


def test_perfect_prediction_beats_inverted_one():
    label = torch.zeros(1, 8, 8, dtype=torch.long)
    label[:, 2:6, 2:6] = 1
    right = (label.float() * 2 - 1).unsqueeze(1) * 20  # logits: +20 on the polyp
    loss = build()
    assert loss(right, label) < 0.01
    assert loss(-right, label) > 0.99
    # mmseg's own DiceLoss rewards the inverted prediction on one channel
    mmseg_dice = MODELS.build(dict(type='DiceLoss', use_sigmoid=True))
    assert mmseg_dice(-right, label) < mmseg_dice(right, label)


def test_value_matches_hand_computed_vnet_dice():
    label = torch.tensor([[[1, 0], [1, 1]]])
    prob = torch.tensor([[[[0.8, 0.3], [0.6, 0.1]]]])
    logits = torch.logit(prob)
    eps = 1e-3
    inter = 0.8 + 0.6 + 0.1
    expected = 1 - 2 * inter / ((0.64 + 0.09 + 0.36 + 0.01 + eps) + (3 + eps))
    torch.testing.assert_close(build(eps=eps)(logits, label), torch.tensor(expected))


def test_gradient_and_ignore_index():
    label = torch.tensor([[[1, 255], [0, 1]]])
    logits = torch.zeros(1, 1, 2, 2, requires_grad=True)
    build()(logits, label).backward()
    assert logits.grad[0, 0, 0, 0] < 0 < logits.grad[0, 0, 1, 0]


def test_multi_channel_prediction_is_refused():
    with pytest.raises(ValueError, match=r'one-channel prediction .*\(2, 3, 4, 4\)'):
        build()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
