# The U-Net of "Dual Cross-Attention for Medical Image Segmentation" (Ates et al.,
# 2023) with width factor k = 0.5: encoder stages of 32, 64, 128, 256 channels and a
# 512-channel bottleneck (UNetEncoder), decoded by UNetHead (concatenation skips).
# Binary output as the DCA paper trains polyps: one sigmoid channel, threshold 0.5,
# Dice loss (the reference's smooth term 1 is eps=1 here; mmseg averages the Dice
# loss over images, the reference computes it over the whole batch).
# A neck slots in between (e.g. DCANeck, StageRefineNeck); configs that predict more
# classes override decode_head.num_classes / out_channels / threshold / loss_decode.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # The reference feeds ToTensor() images: RGB scaled to [0, 1], no mean removal.
    mean=[0.0, 0.0, 0.0],
    std=[255.0, 255.0, 255.0],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(224, 224))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='UNetEncoder',
        in_channels=3,
        base_channels=32,
        num_stages=5,
        num_convs=2,
        downsample='maxpool',
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU')),
    decode_head=dict(
        type='UNetHead',
        in_channels=[32, 64, 128, 256, 512],
        in_index=[0, 1, 2, 3, 4],
        channels=32,
        num_classes=2,
        out_channels=1,
        threshold=0.5,
        dropout_ratio=0.0,
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
