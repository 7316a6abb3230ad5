# HFF segmentor (ResNetV1c-18 + MiT-B1 branches, HFFNeck, UPerHead) on Synapse
# multi-organ CT with the TransUNet protocol and recipe: 224 x 224 slices, batch 24,
# SGD 0.01 with poly decay for 13950 iterations (150 epochs), 0.5 x cross-entropy
# + 0.5 x Dice (../_base_/models/synapse_head.py), 9 classes, scored per case in 3-D
# (VolumeMetric).
_base_ = [
    '../_base_/models/hff_dual_branch.py', '../_base_/models/synapse_head.py',
    '../_base_/datasets/synapse.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_14k_sgd_poly.py'
]
model = dict(decode_head=_base_.synapse_head)
