# MCANet with MSCAN-S (ImageNet weights) on Kvasir-SEG: the MSCAN-T
# config with the wider encoder and a head sized to its stages.
_base_ = './mcanet_mscan-t_1xb8-adamw-80k_kvasir-seg-224x224.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segnext/mscan_s_20230227-f33ccdf2.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=[64, 128, 320, 512],
        depths=[2, 2, 4, 2],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[64, 128, 320, 512], channels=64))
