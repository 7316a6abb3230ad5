# HFF segmentation model: a dual-branch encoder (CNN ResNetV1c-18 + transformer
# MiT-B1, both with output strides 4, 8, 16, 32), one HFFBlock per stage fusing the
# pair and the previous fused stage (HFFNeck, as HiFuse chains its blocks), and a
# UPerHead on the fused pyramid. From "HiFuse: Hierarchical multi-scale feature
# fusion network for medical image classification" (2024), turned into a segmentor.
# Binary polyp output by default (one sigmoid channel, Dice loss); Synapse configs
# override the head.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(224, 224))
cnn_checkpoint = 'open-mmlab://resnet18_v1c'
transformer_checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/mit_b1_20220624-02e5a6a1.pth'  # noqa
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='DualBranchBackbone',
        in_channels=3,
        cnn=dict(
            type='ResNetV1c',
            depth=18,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            strides=(1, 2, 2, 2),
            dilations=(1, 1, 1, 1),
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            init_cfg=dict(type='Pretrained', checkpoint=cnn_checkpoint)),
        transformer=dict(
            type='MixVisionTransformer',
            in_channels=3,
            embed_dims=64,
            num_stages=4,
            num_layers=[2, 2, 4, 2],
            num_heads=[1, 2, 5, 8],
            patch_sizes=[7, 3, 3, 3],
            sr_ratios=[8, 4, 2, 1],
            out_indices=(0, 1, 2, 3),
            mlp_ratio=4,
            qkv_bias=True,
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=0.1,
            init_cfg=dict(type='Pretrained', checkpoint=transformer_checkpoint))),
    neck=dict(
        type='HFFNeck',
        local_channels=[64, 128, 256, 512],
        global_channels=[64, 128, 320, 512],
        out_channels=[64, 128, 256, 512],
        reduction=16,
        drop_path_rate=0.0),
    decode_head=dict(
        type='UPerHead',
        in_channels=[64, 128, 256, 512],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=256,
        dropout_ratio=0.1,
        num_classes=2,
        out_channels=1,
        threshold=0.5,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='BinaryDiceLoss',
            use_sigmoid=True,
            naive_dice=True,
            eps=1.0,
            loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
