# MultiFeatureExtraction (SHISRCNet's MFE) in the U-Net on Kvasir-SEG (DCA recipe):
# a StageRefineNeck refines encoder stages 2 and 3 (56 and 28 px at 224 px input,
# 128 and 256 channels), where its chained dilated branches (rates 1, 2, 4, 8) widen
# the context of the deep skips; the other stages pass through.
_base_ = '../dca/unet_unet-s5_1xb16-200e_kvasir-seg-224x224.py'
model = dict(
    neck=dict(
        type='StageRefineNeck',
        in_channels=[32, 64, 128, 256, 512],
        block_cfg=dict(type='MultiFeatureExtraction', dilations=(2, 4, 8)),
        stages=[2, 3]))
