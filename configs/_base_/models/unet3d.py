# The plain-skip 3-D U-Net baseline of the D-Net configs: "3D U-Net: Learning Dense
# Volumetric Segmentation from Sparse Annotation" (Cicek et al., 2016) in the form
# nnU-Net builds it ("nnU-Net: a self-configuring method for deep learning-based
# biomedical image segmentation", Isensee et al., 2021): five stages of two (3^3 conv,
# instance norm, LeakyReLU 0.01), strided convolutions down, widths 32, 64, 128, 256,
# 320 (stride 16, so patch sides are multiples of 16); UNet3DHead decodes with
# transposed convs and concatenated skips, deep supervision at 1, 1/2, 1/4, 1/8.
# Same loss (nnU-Net's Dice + CE), inference and data path as configs/_base_/models/
# dnet.py, so a run against D-Net measures what the DLK encoder and DFF skips add.
num_classes = 14
norm_cfg = dict(type='IN3d', affine=True)
act_cfg = dict(type='LeakyReLU', negative_slope=0.01, inplace=True)
widths = (32, 64, 128, 256, 320)
model = dict(
    type='VolumeEncoderDecoder',
    data_preprocessor=dict(type='VolumeDataPreProcessor'),
    backbone=dict(
        type='UNet3DEncoder',
        in_channels=1,
        widths=widths,
        num_convs=2,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    decode_head=dict(
        type='UNet3DHead',
        in_channels=widths,
        num_classes=num_classes,
        num_convs=2,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
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
