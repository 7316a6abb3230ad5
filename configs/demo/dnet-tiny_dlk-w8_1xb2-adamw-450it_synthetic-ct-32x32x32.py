# Demo: a tiny D-Net (DNetEncoder + DFF3DHead, widths 8-64, one DLK block per stage)
# trained from scratch on synthetic abdominal CT (tools/misc/generate_synthetic_ct.py,
# converted by tools/dataset_converters/btcv.py --protocol holdout) on a CPU in about
# ten minutes, then tested on whole held-out volumes: sliding-window inference,
# per-organ Dice / HD95 (mm) / NSD in the original image space, NIfTI predictions.
# Run the whole loop with
#   python tools/misc/run_demo.py --volumetric
# The data path is the BTCV one (configs/_base_/datasets/btcv_96x96x96.py:
# CachedPipeline prefix, MONAI transforms, test transforms on the image only); the
# differences, for a short CPU run from scratch:
# - spacing 1.5 x 1.5 x 3 mm (BTCV recipe: 1.5 x 1.5 x 2) so a whole synthetic case
#   is about 60^3 voxels; 32^3 patches (BTCV: 96^3), batch 2;
# - four stages of widths 8, 16, 32, 64 (stride 16, so patch sides are multiples of
#   16), one DLK block per stage and decoder step, 4 salience channels (the salience
#   mixer at full resolution is the costliest layer on a CPU);
# - AdamW lr 3e-3 (BTCV: 1e-4), weight decay 1e-5, 20 warm-up iterations then
#   cosine decay, 450 iterations; no validation during training (tools/test.py
#   scores the held-out cases at the end).
_base_ = ['../_base_/default_runtime.py']

dataset_type = 'BTCVDataset'
data_root = 'data/synthetic_ct_btcv'
crop_size = (32, 32, 32)
spacing = (1.5, 1.5, 3.0)
hu_window = (-175.0, 250.0)
widths = (8, 16, 32, 64)
salience_channels = 4

model = dict(
    type='VolumeEncoderDecoder',
    data_preprocessor=dict(type='VolumeDataPreProcessor'),
    backbone=dict(
        type='DNetEncoder',
        in_channels=1,
        widths=widths,
        depths=(1, 1, 1, 1),
        salience_channels=salience_channels),
    decode_head=dict(
        type='DFF3DHead',
        in_channels=(salience_channels, *widths),
        num_classes=14,
        depths=(1, 1, 1),
        deep_supervision=True),
    train_cfg=dict(),
    test_cfg=dict(
        mode='slide',
        patch_size=crop_size,
        overlap=0.5,
        sw_batch_size=4,
        blend_mode='gaussian',
        sigma_scale=0.125,
        progress=False))

window = dict(
    type='MONAITransform',
    transform='ScaleIntensityRanged',
    keys='img',
    a_min=hu_window[0],
    a_max=hu_window[1],
    b_min=0.0,
    b_max=1.0,
    clip=True)
train_pipeline = [
    dict(
        type='CachedPipeline',
        cache_dir=data_root + '/cache',
        transforms=[
            dict(type='LoadVolumeFromFile'),
            dict(type='MONAITransform', transform='Orientationd', axcodes='RAS'),
            dict(
                type='MONAITransform',
                transform='Spacingd',
                pixdim=spacing,
                mode=('bilinear', 'nearest')),
            window,
            dict(
                type='MONAITransform',
                transform='CropForegroundd',
                source_key='img',
                allow_smaller=True),
            dict(
                type='MONAITransform',
                transform='SpatialPadd',
                spatial_size=crop_size),
        ]),
    dict(
        type='MONAITransform',
        transform='RandCropByPosNegLabeld',
        label_key='gt_seg_map',
        spatial_size=crop_size,
        pos=1,
        neg=1,
        num_samples=1,
        image_key='img',
        image_threshold=0),
    dict(type='MONAITransform', transform='RandFlipd', prob=0.2, spatial_axis=0),
    dict(type='MONAITransform', transform='RandFlipd', prob=0.2, spatial_axis=1),
    dict(type='MONAITransform', transform='RandFlipd', prob=0.2, spatial_axis=2),
    dict(
        type='MONAITransform',
        transform='RandShiftIntensityd',
        keys='img',
        offsets=0.1,
        prob=0.1),
    dict(type='PackVolumeInputs'),
]
test_pipeline = [
    dict(
        type='CachedPipeline',
        cache_dir=data_root + '/cache',
        transforms=[
            dict(type='LoadVolumeFromFile'),
            dict(
                type='MONAITransform',
                transform='Orientationd',
                keys='img',
                axcodes='RAS'),
            dict(
                type='MONAITransform',
                transform='Spacingd',
                keys='img',
                pixdim=spacing,
                mode='bilinear'),
            window,
        ]),
    dict(type='PackVolumeInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
# The held-out cases of --protocol holdout are the 'val' split.
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        pipeline=test_pipeline))
test_evaluator = dict(
    type='Volume3DMetric',
    nsd_tolerance=1.0,
    empty_convention='nnunet',
    hd95_method='medpy')

max_iters = 450
warmup_iters = 20
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=1e-5))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-2,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - warmup_iters,
        eta_min=0.0,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
