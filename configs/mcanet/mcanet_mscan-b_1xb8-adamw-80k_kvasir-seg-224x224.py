# MCANet with MSCAN-B (ImageNet weights) on Kvasir-SEG: the MSCAN-T
# config with the wider encoder and a head sized to its stages.
_base_ = './mcanet_mscan-t_1xb8-adamw-80k_kvasir-seg-224x224.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segnext/mscan_b_20230227-3ab7d230.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=[64, 128, 320, 512],
        depths=[3, 3, 12, 3],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[64, 128, 320, 512], channels=64))
