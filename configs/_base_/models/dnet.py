# D-Net ("D-Net: Dynamic Large Kernel with Dynamic Feature Fusion for Volumetric
# Medical Image Segmentation", Yang et al., arXiv 2403.10674) at the size of the
# upstream code (sotiraslab/DLK networks/DNet.py): DNetEncoder with a 48-channel
# salience layer and five stages of two DLK blocks, widths 48, 96, 192, 384, 768
# (strides 2 ... 32, so patch sides are multiples of 32), decoded by DFF3DHead
# (transposed conv, DFF with each skip, two DLK blocks per step, final convs with
# the salience features) with deep supervision at 1, 1/2, 1/4, 1/8 and 1/16 (nnU-Net
# weights [8, 4, 2, 1, 0] / 15). 14 classes: BTCV's 13 organs + background.
#
# Loss (VolumeDecodeHead's default, written out): nnU-Net's Dice + CE, the soft Dice
# of the softmax without the background over the whole batch (MONAI DiceLoss) plus
# cross-entropy, both weighted 1. The upstream repository has no training code; its
# constructor takes nnU-Net v2's network arguments, so nnU-Net's loss is the likely
# one (an inference, see ../shared/specs/volumetric.md).
#
# Inference: sliding windows of the 96^3 training patch, overlap 0.5, Gaussian
# importance (sigma 1/8 of the window), 4 windows per forward (MONAI SwinUNETR/BTCV:
# --infer_overlap 0.5, --sw_batch_size 4; sigma as nnU-Net and MONAI's default);
# the class scores are resampled back to the original grid before the argmax.
num_classes = 14
model = dict(
    type='VolumeEncoderDecoder',
    data_preprocessor=dict(type='VolumeDataPreProcessor'),
    backbone=dict(
        type='DNetEncoder',
        in_channels=1,
        widths=(48, 96, 192, 384, 768),
        depths=(2, 2, 2, 2, 2),
        salience_channels=48,
        stem_kernel=7,
        drop_path_rate=0.0,
        layer_scale_init=1e-6),
    decode_head=dict(
        type='DFF3DHead',
        in_channels=(48, 48, 96, 192, 384, 768),
        num_classes=num_classes,
        depths=(2, 2, 2, 2),
        skip_fusion='dff',
        deep_supervision=True,
        loss_decode=[
            dict(
                type='MONAILoss',
                loss='DiceLoss',
                loss_name='loss_dice',
                to_onehot_y=True,
                softmax=True,
                include_background=False,
                batch=True),
            dict(
                type='CrossEntropyLoss',
                loss_name='loss_ce',
                loss_weight=1.0,
                avg_non_ignore=True),
        ]),
    train_cfg=dict(),
    test_cfg=dict(
        mode='slide',
        patch_size=(96, 96, 96),
        overlap=0.5,
        sw_batch_size=4,
        blend_mode='gaussian',
        sigma_scale=0.125))
