# SwinUNETR ("Swin UNETR: Swin Transformers for Semantic Segmentation of Brain
# Tumors in MRI Images", Hatamizadeh et al., 2022; BTCV recipe in "Self-Supervised
# Pre-Training of Swin Transformers for 3D Medical Image Analysis", Tang et al.,
# CVPR 2022) as MONAI builds it (monai.networks.nets.SwinUNETR), wrapped by
# MONAIBackbone: feature size 48 (the "base" model of Project-MONAI/research-
# contributions SwinUNETR/BTCV, 62.1 M parameters there), patch size 2, window 7,
# gradient checkpointing on (use_checkpoint=True, as its README trains on one GPU).
# The network's own 1x1x1 output layer ('out') is dropped and VolumeLinearHead (the
# same 1x1x1 convolution) computes the logits, so training, sliding-window inference
# and the metric are those of the D-Net configs (stride 32: patch sides are multiples
# of 32). Trained from scratch: MONAI's 82.25 % BTCV Dice starts from self-supervised
# weights (model_swinvit.pt) that only SwinUNETR.load_from reads; its from-scratch
# BTCV figure under 5-fold CV is 78.89 % (nnU-Net Revisited, arXiv 2404.09556).
# Loss: nnU-Net's Dice + CE as the D-Net configs (MONAI's reference trains with
# DiceCELoss(to_onehot_y=True, softmax=True): set loss_decode to
# dict(type='MONAILoss', loss='DiceCELoss', to_onehot_y=True, softmax=True) for it).
num_classes = 14
feature_size = 48
model = dict(
    type='VolumeEncoderDecoder',
    data_preprocessor=dict(type='VolumeDataPreProcessor'),
    backbone=dict(
        type='MONAIBackbone',
        out_layer='out',
        network=dict(
            type='SwinUNETR',
            in_channels=1,
            out_channels=num_classes,
            feature_size=feature_size,
            use_checkpoint=True)),
    decode_head=dict(
        type='VolumeLinearHead',
        in_channels=feature_size,
        num_classes=num_classes,
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
