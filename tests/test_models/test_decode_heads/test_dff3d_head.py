import pytest
import torch
from mmseg.registry import MODELS

from mmseg_fusion.models.decode_heads import DFF3DHead
from mmseg_fusion.models.layers import DynamicFeatureFusion
from mmseg_fusion.structures import VolumeData, VolumeSegDataSample
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import count_calls

# salience, then five stages at 1/2 .. 1/32, as DNetEncoder returns them (small widths)
SMALL = (4, 4, 8, 8, 8, 8)
# four stages (1/2 .. 1/16): the cheaper variant for the training tests, on 16^3
SHALLOW = dict(in_channels=(4, 4, 8, 8, 8), depths=(1, 1, 1))
FULL = (48, 48, 96, 192, 384, 768)


def features(channels=SMALL, size=32, batch=2, requires_grad=False):
    """Random encoder outputs: the salience map at full size, stage i at 1/2^i."""
    return [
        torch.randn(batch, c, *(size // 2**i, ) * 3, requires_grad=requires_grad)
        for i, c in enumerate(channels)
    ]


def build(**kwargs):
    cfg = dict(type='DFF3DHead', in_channels=SMALL, num_classes=3, depths=(1, ) * 4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def samples(label):
    out = []
    for volume in label:
        sample = VolumeSegDataSample(metainfo=dict(img_shape=tuple(volume.shape)))
        sample.gt_sem_seg = VolumeData(data=volume[None])
        out.append(sample)
    return out


def test_registered_and_full_size_structure():
    assert MODELS.get('DFF3DHead') is DFF3DHead
    head = build(in_channels=FULL, num_classes=14, depths=None, deep_supervision=True)
    assert head.depths == (2, 2, 2, 2)
    assert [u.out_channels for u in head.upsamples] == [384, 192, 96, 48]
    assert [len(b) for b in head.blocks] == [2, 2, 2, 2]
    assert [f.channels for f in head.fusions] == [384, 192, 96, 48]
    assert all(isinstance(f, DynamicFeatureFusion) for f in head.fusions)
    assert head.final_fusion.channels == 48
    assert head.final_upsample.in_channels == 48
    assert head.final_upsample.out_channels == 48
    assert [c.in_channels for c in head.aux_seg_layers] == [384, 192, 96, 48]
    assert head.conv_seg.out_channels == 14
    final = head.final_convs
    assert [type(m.norm).__name__ for m in final] == ['BatchNorm3d'] * 2
    assert [m.activate.negative_slope for m in final] == [0.2, 0.2]
    with_ds = sum(p.numel() for p in head.parameters())
    without = sum(
        p.numel()
        for p in build(in_channels=FULL, num_classes=14, depths=None).parameters())
    # only the four 1x1x1 auxiliary outputs differ
    assert with_ds - without == sum((c + 1) * 14 for c in (384, 192, 96, 48))
    assert 9.4e6 < without < 9.6e6  # the spec's hand count: about 9.5 M


@torch.no_grad()
def test_deep_supervision_outputs_highest_resolution_first():
    head = build(deep_supervision=True).train()
    feats = features(batch=1)
    outs = head(feats)
    sides = [o.shape[-1] for o in outs]
    assert sides == [32, 16, 8, 4, 2]
    assert all(o.shape == (1, 3, s, s, s) for o, s in zip(outs, sides))
    # predict returns the main output (in any mode; BatchNorm in training mode here)
    main = head.predict(feats, [dict(img_shape=(32, 32, 32))], None)
    torch.testing.assert_close(main, outs[0])
    assert head.eval()(feats).shape == (1, 3, 32, 32, 32)


@pytest.mark.parametrize('skip_fusion', ['dff', 'concat'])
def test_every_parameter_gets_gradient(skip_fusion):
    head = build(deep_supervision=True, skip_fusion=skip_fusion, **SHALLOW).train()
    feats = features(SHALLOW['in_channels'], size=16, batch=1, requires_grad=True)
    outs = head(feats)
    assert len(outs) == 4
    assert_every_parameter_gets_grad(head, outs)
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


def test_concat_ablation_replaces_every_dff():
    head = build(skip_fusion='concat')
    fusions = list(head.fusions) + [head.final_fusion]
    assert not any(isinstance(f, DynamicFeatureFusion) for f in fusions)
    assert [f.reduction.in_channels for f in fusions] == [16, 16, 16, 8, 8]
    assert [f.reduction.out_channels for f in fusions] == [8, 8, 8, 4, 4]


@torch.no_grad()
def test_loss_uses_nnunet_weights_for_five_levels():
    head = build(
        deep_supervision=True,
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True)).train()
    feats = features(batch=1)
    label = torch.randint(0, 3, (1, 32, 32, 32))
    torch.manual_seed(1)
    losses = head.loss(feats, samples(label), None)
    torch.manual_seed(1)
    outs = head(feats)
    per_level = [
        torch.nn.functional.cross_entropy(o, label[:, f // 2::f, f // 2::f, f // 2::f])
        for o, f in zip(outs, (1, 2, 4, 8, 16)) if o.shape[-1] == 32 // f
    ]
    weights = (8 / 15, 4 / 15, 2 / 15, 1 / 15, 0)
    expected = sum(w * v for w, v in zip(weights, per_level))
    torch.testing.assert_close(losses['loss_ce'], expected)


def test_default_loss_decreases_over_a_few_steps():
    head = build(deep_supervision=True, **SHALLOW).train()
    feats = features(SHALLOW['in_channels'], size=16, batch=1)
    label = torch.zeros(1, 16, 16, 16, dtype=torch.long)
    label[:, 4:12, 4:12, 4:12] = 1
    label[:, 6:10, 6:10, 6:10] = 2
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-2)
    totals = []
    for _ in range(6):
        losses = head.loss(feats, samples(label), None)
        total = losses['loss_dice'] + losses['loss_ce']
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert totals[-1] < 0.85 * totals[0]


def test_drop_path_rises_to_the_rate_over_decoder_blocks():
    head = build(depths=(1, 1, 1, 2), drop_path_rate=0.2)
    rates = [
        getattr(block.drop_path, 'drop_prob', 0.) for blocks in head.blocks
        for block in blocks
    ]
    assert rates == pytest.approx([0., 0.05, 0.1, 0.15, 0.2])


@torch.no_grad()
def test_with_dnet_encoder():
    encoder = MODELS.build(
        dict(
            type='DNetEncoder',
            in_channels=1,
            widths=(4, 8, 8, 8, 8),
            depths=(1, ) * 5,
            salience_channels=4))
    head = build(in_channels=encoder.out_channels, deep_supervision=True).train()
    outs = head(encoder(torch.randn(1, 1, 32, 32, 32)))
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4, 2]


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=(4, 4)), 'at least 2 encoder stages'),
    (dict(depths=(1, 1, 1)), r'depths must be .* of 4 positive ints \(block counts'),
    (dict(depths=(1, 1, 1, 0)), r'depths\[3\] must be a positive int, got 0'),
    (dict(skip_fusion='sum'), 'skip_fusion'),
    (dict(drop_path_rate=1.0), 'drop_path_rate'),
    (dict(in_channels=(4, 4, 8, 8, 7, 8)), 'channels must be even'),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(**kwargs)


def test_invalid_inputs():
    head = build()
    feats = features(size=32, batch=1)
    with pytest.raises(ValueError, match=r'6 feature maps .*got 5'):
        head(feats[1:])
    wrong = list(feats)
    wrong[2] = torch.randn(1, 9, 8, 8, 8)
    with pytest.raises(ValueError, match=r'inputs\[2\] must have 8 channels'):
        head(wrong)
    flat = list(feats)
    flat[0] = flat[0][:, :, 0]
    with pytest.raises(ValueError, match=r'inputs\[0\] must be a \(N, C, D, H, W\)'):
        head(flat)
    odd = features(size=32, batch=1)
    odd[0] = torch.randn(1, 4, 32, 32, 30)
    with pytest.raises(ValueError, match=r'inputs\[1\] must have half .*size_divisor'):
        head(odd)


def test_blocks_do_not_check_the_features_again(monkeypatch):
    calls = {
        name: count_calls(monkeypatch, f'mmseg_fusion.models.layers.{name}')
        for name in ('dynamic_feature_fusion', 'dlk_block', 'dlk_layer')
    }
    head_calls = count_calls(monkeypatch,
                             'mmseg_fusion.models.decode_heads.volume_decode_head')
    head = build(**SHALLOW)
    head(features(SHALLOW['in_channels'], size=16, batch=1))
    assert len(head_calls) == 5 and calls == {name: [] for name in calls}
    feats = features(SHALLOW['in_channels'], size=16, batch=1)
    feats[2] = torch.randn(1, 5, 4, 4, 4)
    with pytest.raises(ValueError, match=r'inputs\[2\] must have 8 channels'):
        head(feats)
    feats = features(SHALLOW['in_channels'], size=16, batch=1)
    feats[2] = torch.randn(2, 8, 4, 4, 4)
    with pytest.raises(ValueError, match=r'one batch size, got inputs\[0\]'):
        head(feats)
