# HFF segmentor (ResNetV1c-18 + MiT-B1 branches, HFFNeck, UPerHead) on Synapse
# multi-organ CT with the TransUNet protocol and recipe: 224 x 224 slices, batch 24,
# SGD 0.01 with poly decay for 13950 iterations (150 epochs), 0.5 x cross-entropy
# + 0.5 x Dice, 9 classes, scored per case in 3-D (VolumeMetric).
_base_ = [
    '../_base_/models/hff_dual_branch.py', '../_base_/datasets/synapse.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_14k_sgd_poly.py'
]
model = dict(
    decode_head=dict(
        num_classes=9,
        out_channels=9,
        threshold=None,
        # 0.5 x CE + 0.5 x per-class soft Dice (TverskyLoss with alpha = beta = 0.5,
        # see dca_unet-s5_1xb24-14k_synapse-224x224.py).
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
