# SegNeXt ("SegNeXt: Rethinking Convolutional Attention Design for Semantic
# Segmentation", Guo et al., 2022) with mmseg's LightHamHead, for binary segmentation
# with one sigmoid output channel: the baseline MCANet is compared with. The same
# MSCAN-T encoder (ImageNet weights) and data preprocessing as mcanet_mscan.py.
_base_ = './mcanet_mscan.py'
ham_norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='LightHamHead',
        in_channels=[64, 160, 256],
        in_index=[1, 2, 3],
        channels=256,
        ham_channels=256,
        dropout_ratio=0.1,
        num_classes=2,
        out_channels=1,
        threshold=0.5,
        norm_cfg=ham_norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        ham_kwargs=dict(
            MD_S=1, MD_R=16, train_steps=6, eval_steps=7, inv_t=100, rand_init=True)))
