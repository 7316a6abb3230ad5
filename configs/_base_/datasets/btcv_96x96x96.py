# BTCV abdominal multi-organ CT ("Multi-Atlas Labeling Beyond the Cranial Vault",
# MICCAI 2015), 13 organs + background, as 3-D volumes, with the UNETR / SwinUNETR
# (MONAI) protocol and preprocessing: Project-MONAI/research-contributions,
# SwinUNETR/BTCV/utils/data_utils.py and main.py.
# Make the data with
#   python tools/dataset_converters/btcv.py RAW_ROOT -o data/btcv
# (default --protocol swinunetr: train 0001-0010 + 0021-0034 (24 cases), val
# 0035-0040 (6 cases); no separate test split, so val is the test set, as there).
#
# Recipe values and their sources (MONAI SwinUNETR/BTCV main.py defaults):
# - orientation RAS; spacing 1.5 x 1.5 x 2.0 mm (--space_x/y/z), image bilinear,
#   label nearest;
# - intensity: HU clipped to [-175, 250] and scaled to [0, 1] (--a_min/--a_max);
# - CropForegroundd on the scaled image (voxels above -175 HU), as data_utils.py;
# - 96^3 patches (--roi_x/y/z), RandCropByPosNegLabeld pos 1 : neg 1 (foreground-
#   balanced), image_threshold 0;
# - flips on each axis (p 0.2 each), rotate90 (p 0.2, k up to 3), intensity scale
#   (factors 0.1, p 0.1) and shift (offsets 0.1, p 0.1) (the *_prob defaults).
# One difference: MONAI draws 4 crops per volume per iteration (num_samples=4);
# an mmseg pipeline carries one sample, so here each volume gives one crop
# (num_samples=1) and the batch holds crops of different volumes.
# Volumes smaller than the patch after the foreground crop are zero-padded to it
# (SpatialPadd; MONAI's crop would return a smaller, non-stackable patch).
#
# The deterministic prefix (load, orientation, spacing, window, foreground crop, pad)
# runs once per case inside CachedPipeline, stored under {data_root}/cache (nnU-Net's
# preprocessing cache); later epochs read it from there.
#
# Validation and test follow the test-time geometry rule (CONTRACT.md): spatial
# transforms touch the image only, the label stays on its original grid, and the
# segmentor resamples its class scores back to that grid before the argmax; so
# Volume3DMetric scores each case in the original image space (HD95 and NSD in mm)
# and tools/test.py --out writes NIfTI predictions with the input's affine.
dataset_type = 'BTCVDataset'
data_root = 'data/btcv'
crop_size = (96, 96, 96)
spacing = (1.5, 1.5, 2.0)
hu_window = (-175.0, 250.0)

preprocess = [
    dict(type='LoadVolumeFromFile'),
    dict(type='MONAITransform', transform='Orientationd', axcodes='RAS'),
    dict(
        type='MONAITransform',
        transform='Spacingd',
        pixdim=spacing,
        mode=('bilinear', 'nearest')),
    dict(
        type='MONAITransform',
        transform='ScaleIntensityRanged',
        keys='img',
        a_min=hu_window[0],
        a_max=hu_window[1],
        b_min=0.0,
        b_max=1.0,
        clip=True),
    dict(
        type='MONAITransform',
        transform='CropForegroundd',
        source_key='img',
        allow_smaller=True),
    dict(type='MONAITransform', transform='SpatialPadd', spatial_size=crop_size),
]
train_pipeline = [
    dict(type='CachedPipeline', cache_dir=data_root + '/cache', transforms=preprocess),
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
    dict(type='MONAITransform', transform='RandRotate90d', prob=0.2, max_k=3),
    dict(
        type='MONAITransform',
        transform='RandScaleIntensityd',
        keys='img',
        factors=0.1,
        prob=0.1),
    dict(
        type='MONAITransform',
        transform='RandShiftIntensityd',
        keys='img',
        offsets=0.1,
        prob=0.1),
    dict(type='PackVolumeInputs'),
]
# Image only: orientation, spacing and window as in training; no foreground crop
# (MONAI's test.py has none either), so the whole volume is predicted.
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
            dict(
                type='MONAITransform',
                transform='ScaleIntensityRanged',
                keys='img',
                a_min=hu_window[0],
                a_max=hu_window[1],
                b_min=0.0,
                b_max=1.0,
                clip=True),
        ]),
    dict(type='PackVolumeInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
# One whole CT volume per batch (volumes differ in shape).
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline))
test_dataloader = val_dataloader

# Per case and organ in the original image space: Dice (%), HD95 (mm, medpy's pooled
# definition), NSD at 1 mm; nnU-Net's empty-organ convention (NaN when both are
# empty). A per-case CSV goes to the run's log folder.
val_evaluator = dict(
    type='Volume3DMetric',
    nsd_tolerance=1.0,
    empty_convention='nnunet',
    hd95_method='medpy')
test_evaluator = val_evaluator
