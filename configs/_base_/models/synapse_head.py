# The decode-head settings of the Synapse configs (TransUNet protocol, "TransUNet:
# Transformers Make Strong Encoders for Medical Image Segmentation", Chen et al.,
# 2021): 9 classes (background + 8 organs) with a softmax (no threshold), and
# TransUNet's loss, 0.5 x cross-entropy + 0.5 x soft Dice of the softmax, per class,
# averaged over the 9 classes. mmseg's TverskyLoss with alpha = beta = 0.5 is that
# per-class soft Dice, 2TP / (2TP + FP + FN) (TransUNet squares the terms of the
# denominator); mmseg's DiceLoss would pool all classes into one Dice instead.
#
# Not a model: a fragment that a Synapse config lists among its bases and merges
# into its model's decode head, whatever the head type:
#   _base_ = ['../_base_/models/unet.py', '../_base_/models/synapse_head.py', ...]
#   model = dict(decode_head=_base_.synapse_head)
# The value is copied when the config is parsed: change the built head with
# --cfg-options model.decode_head.<key>=..., not synapse_head.<key>.
synapse_head = dict(
    num_classes=9,
    out_channels=9,
    threshold=None,
    loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.5),
        dict(
            type='TverskyLoss',
            alpha=0.5,
            beta=0.5,
            smooth=1e-5,
            loss_weight=0.5,
            loss_name='loss_dice'),
    ])
