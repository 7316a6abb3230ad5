# MCANet (MSCAN-T encoder, MCAHead) on Synapse multi-organ CT slices (TransUNet
# protocol, 8 organs + background), with the paper's recipe at 224 x 224.
# The upstream Synapse configs (haoshao-nku/medical_seg) keep num_classes=1 with a
# sigmoid loss: one output channel cannot separate nine classes, and mmseg's binary
# cross-entropy rejects labels above 1. Here the head predicts nine channels
# (../_base_/models/synapse_head.py) with MCANet's single loss, a softmax
# cross-entropy, instead of TransUNet's cross-entropy + Dice.
_base_ = [
    '../_base_/models/mcanet_mscan.py', '../_base_/models/synapse_head.py',
    '../_base_/datasets/synapse.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_80k_adamw.py'
]
crop_size = (224, 224)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        _base_.synapse_head,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
train_dataloader = dict(batch_size=8)
