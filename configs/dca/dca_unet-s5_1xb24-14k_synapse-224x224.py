# U-Net + DCA ("Dual Cross-Attention for Medical Image Segmentation", Ates et al.,
# 2023) on Synapse multi-organ CT with the TransUNet protocol and recipe: 224 x 224
# slices, batch 24, SGD 0.01 with poly decay for 13950 iterations (150 epochs),
# 0.5 x cross-entropy + 0.5 x Dice, 9 classes (background + 8 organs), scored per
# case in 3-D (VolumeMetric).
_base_ = [
    '../_base_/models/dca_unet.py', '../_base_/models/synapse_head.py',
    '../_base_/datasets/synapse.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_14k_sgd_poly.py'
]
model = dict(
    # TransUNet feeds the [0, 1] intensities of the HU window (the converter's PNG
    # values / 255); the grey slice is read as three equal channels.
    data_preprocessor=dict(
        mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], bgr_to_rgb=False),
    decode_head=_base_.synapse_head)
