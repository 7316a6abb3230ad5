# JointChannelSpatialAttention (the joint-MLP CBAM variant) in the U-Net on
# Kvasir-SEG (DCA recipe): a StageRefineNeck re-weights the four skip connections
# (encoder stages 0-3); each skip becomes x * sigmoid(channel) + x * sigmoid(spatial),
# the sum of the block's two outputs. The bottleneck passes through.
_base_ = '../dca/unet_unet-s5_1xb16-200e_kvasir-seg-224x224.py'
model = dict(
    neck=dict(
        type='StageRefineNeck',
        in_channels=[32, 64, 128, 256, 512],
        block_cfg=dict(
            type='JointChannelSpatialAttention',
            reduction=16,
            kernel_size=7,
            grid_size=7),
        stages=[0, 1, 2, 3]))
