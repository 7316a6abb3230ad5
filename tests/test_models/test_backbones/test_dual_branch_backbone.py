import pytest
import torch
from mmengine.runner import save_checkpoint
from mmseg.registry import MODELS

from mmseg_fusion.models.backbones.dual_branch_backbone import DualBranchBackbone
from tests.helpers import assert_every_parameter_gets_grad


def tiny_resnet(**kwargs):
    """ResNetV1c-18 with 8 base channels: stages of 8, 16, 32, 64 channels at output
    strides 4, 8, 16, 32."""
    cfg = dict(
        type='ResNetV1c',
        depth=18,
        base_channels=8,
        stem_channels=8,
        out_indices=(0, 1, 2, 3))
    cfg.update(kwargs)
    return cfg


def tiny_mit(**kwargs):
    """MiT with 8 embedding channels and one layer per stage: stages of 8, 16, 32, 64
    channels at output strides 4, 8, 16, 32."""
    cfg = dict(
        type='MixVisionTransformer',
        embed_dims=8,
        num_layers=[1, 1, 1, 1],
        num_heads=[1, 2, 4, 8],
        sr_ratios=[4, 2, 1, 1],
        out_indices=(0, 1, 2, 3))
    cfg.update(kwargs)
    return cfg


def build_backbone(cnn=None, transformer=None, **kwargs):
    return MODELS.build(
        dict(
            type='DualBranchBackbone',
            cnn=cnn or tiny_resnet(),
            transformer=transformer or tiny_mit(),
            **kwargs))


def test_registered_and_branches_built():
    backbone = build_backbone()
    assert isinstance(backbone, DualBranchBackbone)
    assert type(backbone.cnn).__name__ == 'ResNetV1c'
    assert type(backbone.transformer).__name__ == 'MixVisionTransformer'


@pytest.mark.parametrize('size', [(45, 62), (35, 19)])
def test_output_format_cnn_stages_then_transformer_stages(size):
    backbone = build_backbone()
    outs = backbone(torch.randn(2, 3, *size))
    assert isinstance(outs, tuple) and len(outs) == 8
    for i, channels in enumerate((8, 16, 32, 64)):
        local, global_ = outs[i], outs[4 + i]
        assert local.shape[:2] == global_.shape[:2] == (2, channels)
        assert local.shape[2:] == global_.shape[2:]
        # Stride 4 * 2**i, rounded up (both branches pad).
        stride = 4 * 2**i
        assert tuple(local.shape[2:]) == tuple(-(-s // stride) for s in size)


def test_every_parameter_gets_a_gradient():
    backbone = build_backbone()
    assert_every_parameter_gets_grad(backbone, backbone(torch.randn(2, 3, 33, 26)))


def test_mismatched_strides_name_the_stage_and_both_shapes():
    backbone = build_backbone(cnn=tiny_resnet(strides=(1, 2, 2, 1)))
    with pytest.raises(
            ValueError,
            match=r'stage 3: .*cnn \(1, 64, 4, 4\) and '
            r'transformer \(1, 64, 2, 2\)'):
        backbone(torch.randn(1, 3, 64, 64))


def test_stage_counts_checked_at_construction_and_forward():
    with pytest.raises(ValueError, match='same number of stages'):
        build_backbone(transformer=tiny_mit(out_indices=(0, 1, 2)))
    # Without out_indices on one side the count is only known at forward.
    transformer = tiny_mit()
    del transformer['out_indices']
    backbone = build_backbone(
        cnn=tiny_resnet(
            num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1),
            out_indices=(0, 1, 2)),
        transformer=transformer)
    with pytest.raises(ValueError, match='3 from cnn and 4 from transformer'):
        backbone(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize('name, value', [('cnn', None), ('cnn', dict(depth=18)),
                                         ('transformer', dict(type='NoSuchNet'))])
def test_bad_branch_configs(name, value):
    kwargs = dict(cnn=tiny_resnet(), transformer=tiny_mit())
    kwargs[name] = value
    with pytest.raises(ValueError, match=name):
        MODELS.build(dict(type='DualBranchBackbone', **kwargs))


def test_bad_input():
    backbone = build_backbone()
    with pytest.raises(ValueError, match='x must have 3 channels'):
        backbone(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match='in_channels'):
        build_backbone(in_channels=0)


def test_each_branch_loads_its_own_pretrained_weights(tmp_path):
    source = MODELS.build(tiny_resnet())
    path = str(tmp_path / 'cnn.pth')
    save_checkpoint(source.state_dict(), path)
    backbone = build_backbone(
        cnn=tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=path)))
    backbone.init_weights()
    for name, value in source.state_dict().items():
        assert torch.equal(backbone.cnn.state_dict()[name], value), name
