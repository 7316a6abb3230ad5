# OSRAttention (TransXNet's overlapping spatial reduction attention) in the U-Net on
# Kvasir-SEG (DCA recipe): a StageRefineNeck adds global self-attention (8 heads,
# keys and values reduced 2x) to the two deepest stages, the last skip (28 px at
# 224 px input) and the bottleneck (14 px), as a residual like a transformer block;
# the shallow, high-resolution stages pass through (attention there is costly).
_base_ = '../dca/unet_unet-s5_1xb16-200e_kvasir-seg-224x224.py'
model = dict(
    neck=dict(
        type='StageRefineNeck',
        in_channels=[32, 64, 128, 256, 512],
        block_cfg=dict(type='OSRAttention', num_heads=8, sr_ratio=2),
        stages=[3, 4],
        residual=True))
