# U-Net + DCA ("Dual Cross-Attention for Medical Image Segmentation", Ates et al.,
# 2023) on Kvasir-SEG: the U-Net baseline with its four skip connections (encoder
# stages 0-3; the bottleneck passes through) refined by one dual cross-attention
# block, 28 x 28 tokens per stage (the paper's patch size 8 at 224 px), one channel
# head and four spatial heads per stage.
_base_ = './unet_unet-s5_1xb16-200e_kvasir-seg-224x224.py'
model = dict(
    neck=dict(
        type='DCANeck',
        in_channels=[32, 64, 128, 256, 512],
        in_index=[0, 1, 2, 3],
        patch_size=28,
        channel_heads=[1, 1, 1, 1],
        spatial_heads=[4, 4, 4, 4],
        num_blocks=1))
