# SAFM (SAFMN's spatially-adaptive feature modulation) in the U-Net on Kvasir-SEG
# (DCA recipe): a StageRefineNeck modulates the four skip connections (encoder
# stages 0-3) with multi-scale context, added to the stage as in SAFMN's residual
# block; the bottleneck passes through.
_base_ = '../dca/unet_unet-s5_1xb16-200e_kvasir-seg-224x224.py'
model = dict(
    neck=dict(
        type='StageRefineNeck',
        in_channels=[32, 64, 128, 256, 512],
        block_cfg=dict(type='SAFM', num_levels=4),
        stages=[0, 1, 2, 3],
        residual=True))
