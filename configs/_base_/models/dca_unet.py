# U-Net + DCA ("Dual Cross-Attention for Medical Image Segmentation", Ates et al.,
# 2023): the k = 0.5 U-Net of unet.py with its four skip connections (encoder stages
# 0-3; the 512-channel bottleneck passes through) refined by one dual cross-attention
# block (DCANeck): 28 x 28 tokens per stage (the paper's patch size 8 at 224 px), one
# channel head and four spatial heads per stage. It differs from unet.py by this one
# neck entry (110,560 parameters, the paper's "0.11 M").
_base_ = './unet.py'
model = dict(
    neck=dict(
        type='DCANeck',
        in_channels=[32, 64, 128, 256, 512],
        in_index=[0, 1, 2, 3],
        patch_size=28,
        channel_heads=[1, 1, 1, 1],
        spatial_heads=[4, 4, 4, 4],
        num_blocks=1))
