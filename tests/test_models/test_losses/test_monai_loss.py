import monai.losses
import pytest
import torch
from mmseg.registry import MODELS

from mmseg_fusion.models.losses import MONAILoss

NNUNET_DICE = dict(to_onehot_y=True, softmax=True, include_background=False, batch=True)


def build(**kwargs):
    return MODELS.build(dict(type='MONAILoss', **kwargs))


def test_registered_and_loss_name():
    assert MODELS.get('MONAILoss') is MONAILoss
    assert build().loss_name == 'loss_dice'
    named = build(loss='DiceCELoss', loss_name='loss_dice_ce')
    assert named.loss_name == 'loss_dice_ce'


@pytest.mark.parametrize('loss, kwargs', [
    ('DiceLoss', NNUNET_DICE),
    ('DiceLoss', dict(to_onehot_y=True, softmax=True)),
    ('DiceCELoss', dict(to_onehot_y=True, softmax=True)),
    ('TverskyLoss', dict(to_onehot_y=True, softmax=True, alpha=0.3, beta=0.7)),
])
def test_equals_monai_called_directly(loss, kwargs):
    logits = torch.randn(2, 4, 5, 6, 7)
    label = torch.randint(0, 4, (2, 5, 6, 7))
    expected = getattr(monai.losses, loss)(**kwargs)(logits, label.unsqueeze(1))
    wrapped = build(loss=loss, loss_weight=0.5, **kwargs)
    torch.testing.assert_close(wrapped(logits, label), 0.5 * expected)
    # a target that already has MONAI's channel axis passes through unchanged
    torch.testing.assert_close(wrapped(logits, label.unsqueeze(1)), 0.5 * expected)


@pytest.mark.parametrize('include_background, expected', [(True, 0.46875),
                                                          (False, 0.375)])
def test_hand_computed_soft_dice(include_background, expected):
    # foreground probabilities 0.8 0.3 0.6 0.1 for labels 1 0 1 1 (one 2x2 image)
    fg = torch.tensor([[0.8, 0.3], [0.6, 0.1]])
    logits = torch.stack([(1 - fg).log(), fg.log()])[None]
    label = torch.tensor([[[1, 0], [1, 1]]])
    # Dice_1 = 2 (0.8 + 0.6 + 0.1) / (1.8 + 3) = 0.625
    # Dice_0 = 2 * 0.7 / (2.2 + 1) = 0.4375
    loss = build(
        to_onehot_y=True,
        softmax=True,
        include_background=include_background,
        smooth_nr=0.,
        smooth_dr=0.)
    torch.testing.assert_close(loss(logits, label), torch.tensor(expected))


def test_mmseg_keyword_arguments_are_accepted_and_gradient_flows():
    logits = torch.randn(1, 3, 4, 4, 4, requires_grad=True)
    label = torch.randint(0, 3, (1, 4, 4, 4))
    value = build(**NNUNET_DICE)(
        logits, label, weight=None, ignore_index=255, avg_factor=None)
    value.backward()
    assert logits.grad.abs().sum() > 0


def test_unknown_loss_lists_choices():
    with pytest.raises(ValueError, match=r"loss must name .*'DiceLoss'.*'NoSuchLoss'"):
        build(loss='NoSuchLoss')


@pytest.mark.parametrize('kwargs, message', [
    (dict(loss_name=''), 'loss_name'),
    (dict(loss_weight='1'), 'loss_weight'),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(**kwargs)


def test_labels_outside_the_classes_are_refused():
    loss = build(**NNUNET_DICE)
    label = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    label[0, 0, 0, 0] = 255
    with pytest.raises(
            ValueError, match=r'class ids in \[0, 3\).*ignore_index=255.*'
            r'\[255\]'):
        loss(torch.randn(1, 3, 4, 4, 4), label, ignore_index=255)


def test_shape_mismatch_is_refused():
    loss = build(**NNUNET_DICE)
    with pytest.raises(
            ValueError, match=r'target must be .*\(1, 3, 4, 4, 4\).*'
            r'\(1, 4, 4, 5\)'):
        loss(torch.randn(1, 3, 4, 4, 4), torch.zeros(1, 4, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match='pred must be'):
        loss(torch.randn(3, 4), torch.zeros(3, dtype=torch.long))
