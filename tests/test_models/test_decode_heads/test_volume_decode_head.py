import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_fusion.models.decode_heads import VolumeDecodeHead, deep_supervision_weights
from mmseg_fusion.structures import VolumeData, VolumeSegDataSample


class PoolingHead(VolumeDecodeHead):
    """Test head: a 1x1x1 classifier on one map, average-pooled by 2 per extra level."""

    def __init__(self, in_channels=4, num_classes=3, num_levels=3, **kwargs):
        super().__init__(in_channels, num_classes, **kwargs)
        self.num_levels = num_levels
        self.conv = nn.Conv3d(4, 3, 1)

    def _decode(self, inputs, with_aux):
        logits = [self.conv(inputs[0])]
        for _ in range(1, self.num_levels if with_aux else 1):
            logits.append(F.avg_pool3d(logits[-1], 2))
        return logits


@MODELS.register_module(name='VolumeHeadTestRecordingLoss', force=True)
class RecordingLoss(nn.Module):
    """Test loss: returns the level's side length; records (logits, target)."""

    def __init__(self, loss_name='loss_record'):
        super().__init__()
        self.loss_name = loss_name
        self.calls = []

    def forward(self, pred, target, **kwargs):
        self.calls.append((pred, target, kwargs))
        return pred.sum() * 0 + pred.shape[-1]


def samples(labels):
    out = []
    for label in labels:
        sample = VolumeSegDataSample(metainfo=dict(img_shape=tuple(label.shape)))
        sample.gt_sem_seg = VolumeData(data=label[None])
        out.append(sample)
    return out


@pytest.mark.parametrize('num_levels, expected', [
    (1, [1.]),
    (2, [1., 0.]),
    (4, [4 / 7, 2 / 7, 1 / 7, 0.]),
    (5, [8 / 15, 4 / 15, 2 / 15, 1 / 15, 0.]),
])
def test_nnunet_deep_supervision_weights(num_levels, expected):
    assert deep_supervision_weights(num_levels) == pytest.approx(expected)


def test_base_is_abstract():
    with pytest.raises(TypeError, match='_decode'):
        VolumeDecodeHead(4, 3)


def test_forward_returns_the_list_only_in_training_with_deep_supervision():
    x = [torch.randn(2, 4, 8, 8, 8)]
    head = PoolingHead(deep_supervision=True)
    outs = head.train()(x)
    assert [tuple(o.shape) for o in outs] == [(2, 3, 8, 8, 8), (2, 3, 4, 4, 4),
                                              (2, 3, 2, 2, 2)]
    assert head.eval()(x).shape == (2, 3, 8, 8, 8)
    assert PoolingHead(deep_supervision=False).train()(x).shape == (2, 3, 8, 8, 8)


def test_default_losses_are_dice_and_cross_entropy():
    head = PoolingHead()
    names = [type(m).__name__ for m in head.loss_decode]
    assert names == ['MONAILoss', 'CrossEntropyLoss']
    assert [m.loss_name for m in head.loss_decode] == ['loss_dice', 'loss_ce']
    assert head.loss_decode[1].avg_non_ignore is True
    dice = head.loss_decode[0].loss
    assert dice.include_background is False and dice.batch is True


def test_loss_weights_levels_and_downsamples_labels_by_nearest():
    head = PoolingHead(
        num_levels=3,
        deep_supervision=True,
        loss_decode=dict(type='VolumeHeadTestRecordingLoss'))
    label = torch.randint(0, 3, (2, 8, 8, 8))
    losses = head.train().loss([torch.randn(2, 4, 8, 8, 8)], samples(label), None)
    # weights [4, 2, 0] / 6 times the recording loss's values 8, 4, 2
    torch.testing.assert_close(losses['loss_record'], torch.tensor((32 + 8) / 6))
    calls = head.loss_decode[0].calls
    assert len(calls) == 3  # the zero-weighted level stays in the graph
    # nearest-exact: output voxel i of a factor-f level reads input voxel f*i + f//2
    expected = [label, label[:, 1::2, 1::2, 1::2], label[:, 2::4, 2::4, 2::4]]
    for (logits, target, kwargs), want in zip(calls, expected):
        assert target.shape == logits.shape[:1] + logits.shape[2:]
        assert torch.equal(target, want)
        assert kwargs == dict(ignore_index=255)
    assert 0 <= losses['acc_seg'] <= 100


def test_losses_with_one_name_are_summed_and_real_losses_backpropagate():
    head = PoolingHead(
        deep_supervision=True,
        loss_decode=[
            dict(type='CrossEntropyLoss', avg_non_ignore=True),
            dict(type='CrossEntropyLoss', avg_non_ignore=True, loss_weight=2.0),
        ])
    x = [torch.randn(1, 4, 8, 8, 8)]
    label = torch.randint(0, 3, (1, 8, 8, 8))
    losses = head.train().loss(x, samples(label), None)
    assert set(losses) == {'loss_ce', 'acc_seg'}
    single = PoolingHead(
        deep_supervision=True,
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True))
    single.load_state_dict(head.state_dict())
    once = single.train().loss(x, samples(label), None)['loss_ce']
    torch.testing.assert_close(losses['loss_ce'], 3 * once)
    losses['loss_ce'].backward()
    assert head.conv.weight.grad.abs().sum() > 0


def test_ignore_index_reaches_cross_entropy():
    head = PoolingHead(loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True))
    x = [torch.randn(1, 4, 4, 4, 4)]
    label = torch.randint(0, 3, (1, 4, 4, 4))
    ignored = label.clone()
    ignored[0, :2] = 255
    logits = head.eval()(x)
    expected = F.cross_entropy(logits[:, :, 2:], label[:, 2:])
    losses = head.loss(x, samples(ignored), None)
    torch.testing.assert_close(losses['loss_ce'], expected)


def test_main_logits_smaller_than_the_label_are_upsampled():
    head = PoolingHead(loss_decode=dict(type='VolumeHeadTestRecordingLoss'))
    head.loss([torch.randn(1, 4, 4, 4, 4)], samples(torch.zeros(1, 8, 8, 8).long()),
              None)
    logits, target, _ = head.loss_decode[0].calls[0]
    assert logits.shape == (1, 3, 8, 8, 8) and target.shape == (1, 8, 8, 8)


def test_predict_returns_main_logits_at_img_shape():
    head = PoolingHead(deep_supervision=True).train()
    x = [torch.randn(2, 4, 4, 6, 8)]
    out = head.predict(x, [dict(img_shape=(4, 6, 8))] * 2, None)
    assert out.shape == (2, 3, 4, 6, 8)
    torch.testing.assert_close(out, head.conv(x[0]))
    assert head.predict(x, [dict(img_shape=(8, 12, 16))] * 2,
                        None).shape == (2, 3, 8, 12, 16)
    assert head.predict(x, [dict()] * 2, None).shape == (2, 3, 4, 6, 8)
    with pytest.raises(ValueError, match=r"img_shape'\] must be \(D, H, W\)"):
        head.predict(x, [dict(img_shape=(6, 8))] * 2, None)


def test_invalid_inputs():
    head = PoolingHead()
    with pytest.raises(ValueError, match=r'1 feature maps .*got 2'):
        head([torch.randn(1, 4, 4, 4, 4)] * 2)
    with pytest.raises(ValueError, match=r'inputs\[0\] must be a \(N, C, D, H, W\)'):
        head([torch.randn(1, 4, 4, 4)])
    with pytest.raises(ValueError, match=r'inputs\[0\] must have 4 channels'):
        head([torch.randn(1, 5, 4, 4, 4)])
    with pytest.raises(ValueError, match='gt_sem_seg.data labels of one'):
        head.loss([torch.randn(2, 4, 4, 4, 4)],
                  samples([torch.zeros(4, 4, 4).long(),
                           torch.zeros(4, 4, 5).long()]), None)


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=(4, 0)), r'in_channels\[1\] must be a positive int, got 0'),
    (dict(in_channels=()), 'in_channels'),
    (dict(num_classes=1), 'num_classes must be at least 2'),
    (dict(deep_supervision=1), 'deep_supervision'),
    (dict(ignore_index=None), 'ignore_index'),
    (dict(loss_decode='CrossEntropyLoss'), 'loss_decode'),
    (dict(loss_decode=[]), 'loss_decode'),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PoolingHead(**kwargs)
