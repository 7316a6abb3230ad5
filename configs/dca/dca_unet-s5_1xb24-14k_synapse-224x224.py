# U-Net + DCA ("Dual Cross-Attention for Medical Image Segmentation", Ates et al.,
# 2023) on Synapse multi-organ CT with the TransUNet protocol and recipe: 224 x 224
# slices, batch 24, SGD 0.01 with poly decay for 13950 iterations (150 epochs),
# 0.5 x cross-entropy + 0.5 x Dice, 9 classes (background + 8 organs), scored per
# case in 3-D (VolumeMetric).
_base_ = [
    '../_base_/models/unet.py', '../_base_/datasets/synapse.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_14k_sgd_poly.py'
]
model = dict(
    # TransUNet feeds the [0, 1] intensities of the HU window (the converter's PNG
    # values / 255); the grey slice is read as three equal channels.
    data_preprocessor=dict(
        mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], bgr_to_rgb=False),
    neck=dict(
        type='DCANeck',
        in_channels=[32, 64, 128, 256, 512],
        in_index=[0, 1, 2, 3],
        patch_size=28,
        channel_heads=[1, 1, 1, 1],
        spatial_heads=[4, 4, 4, 4],
        num_blocks=1),
    decode_head=dict(
        num_classes=9,
        out_channels=9,
        threshold=None,
        # TransUNet's loss: 0.5 x CE + 0.5 x soft Dice of the softmax, per class,
        # averaged over the 9 classes. mmseg's TverskyLoss with alpha = beta = 0.5 is
        # that per-class soft Dice, 2TP / (2TP + FP + FN) (TransUNet squares the
        # terms of the denominator); mmseg's DiceLoss would pool all classes into
        # one Dice instead.
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.5),
            dict(
                type='TverskyLoss',
                alpha=0.5,
                beta=0.5,
                smooth=1e-5,
                loss_weight=0.5,
                loss_name='loss_dice'),
        ]))
