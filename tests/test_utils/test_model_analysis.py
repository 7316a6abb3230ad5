import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmseg_fusion.utils import count_flops, drop_pretrained


def test_drop_pretrained():
    cfg = Config(
        dict(
            model=dict(
                pretrained='open-mmlab://resnet50_v1c',
                backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='x.pth')),
                neck=dict(init_cfg=[
                    dict(type='Pretrained', checkpoint='y.pth'),
                    dict(type='Kaiming', layer='Conv2d')
                ]),
                decode_head=dict(init_cfg=dict(type='Normal', std=0.01)))))
    drop_pretrained(cfg.model)
    assert cfg.model.pretrained is None
    assert cfg.model.backbone.init_cfg is None
    assert cfg.model.neck.init_cfg == [dict(type='Kaiming', layer='Conv2d')]
    assert cfg.model.decode_head.init_cfg == dict(type='Normal', std=0.01)


class FusedAttention(torch.nn.Module):

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_fused_attention_flops_are_counted():
    # (batch 2, heads 3): q 5 x 4, k 7 x 4, v 7 x 6 -> 2*3*5*7*(4 + 6) multiply-adds
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
    assert count_flops(FusedAttention(), (q, k, v)) == 2 * 3 * 5 * 7 * (4 + 6)


def test_conv_flops_and_untraceable_model():
    conv = torch.nn.Conv2d(2, 3, 1, bias=False)
    assert count_flops(conv, torch.randn(1, 2, 4, 5)) == 2 * 3 * 4 * 5

    class RejectsInput(torch.nn.Module):

        def forward(self, x):
            raise ValueError(f'x must be 4-D, got {tuple(x.shape)}')

    assert count_flops(RejectsInput(), torch.randn(1)) is None
