# AMOS 2022 abdominal multi-organ CT ("AMOS: A Large-Scale Abdominal Multi-Organ
# Benchmark for Versatile Medical Image Segmentation", NeurIPS 2022), 15 organs +
# background, as 3-D volumes, with the 3D UX-Net preprocessing and augmentation
# (MASILab/3DUX-Net, load_datasets_transforms.py, dataset 'amos').
# Make the data with
#   python tools/dataset_converters/amos.py AMOS_ROOT -o data/amos
# (CT cases only, ids <= 500; the official validation set is the 'test' split, as
# 3D UX-Net and others report on it; 'val' is a 10 % share of the official training
# cases, drawn with --seed).
#
# Recipe values and their sources (3D UX-Net, load_datasets_transforms.py):
# - orientation RAS; spacing 1.5 x 1.5 x 2.0 mm, image bilinear, label nearest;
# - intensity: HU clipped to [-125, 275] and scaled to [0, 1];
# - CropForegroundd on the scaled image (voxels above -125 HU);
# - 96^3 patches, RandCropByPosNegLabeld pos 1 : neg 1, image_threshold 0;
# - RandShiftIntensityd (offsets 0.1, p 0.5); RandAffined (p 1, rotation up to
#   pi/30 about the third axis, scale +-10 %, image bilinear, label nearest).
# 3D UX-Net draws 2 crops per volume (--crop_sample 2); here each volume gives one
# crop (an mmseg pipeline carries one sample) and the batch of 2 holds crops of two
# volumes. Volumes smaller than the patch are zero-padded to it (SpatialPadd).
#
# The deterministic prefix runs once per case inside CachedPipeline, stored under
# {data_root}/cache. Validation and test transform the image only; the label stays on
# its original grid (CONTRACT.md's test-time geometry rule), where Volume3DMetric
# scores it and tools/test.py --out writes aligned NIfTI predictions.
dataset_type = 'AMOSDataset'
data_root = 'data/amos'
crop_size = (96, 96, 96)
spacing = (1.5, 1.5, 2.0)
hu_window = (-125.0, 275.0)

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
    dict(
        type='MONAITransform',
        transform='RandShiftIntensityd',
        keys='img',
        offsets=0.1,
        prob=0.5),
    dict(
        type='MONAITransform',
        transform='RandAffined',
        mode=('bilinear', 'nearest'),
        prob=1.0,
        spatial_size=crop_size,
        rotate_range=(0.0, 0.0, 3.141592653589793 / 30),
        scale_range=(0.1, 0.1, 0.1)),
    dict(type='PackVolumeInputs'),
]
# Image only: orientation, spacing and window as in training, no foreground crop, so
# the whole volume is predicted.
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
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, data_root=data_root, split='test', pipeline=test_pipeline))

# Per case and organ in the original image space: Dice (%), HD95 (mm, medpy's pooled
# definition), NSD at 1 mm; nnU-Net's empty-organ convention. A per-case CSV goes to
# the run's log folder.
val_evaluator = dict(
    type='Volume3DMetric',
    nsd_tolerance=1.0,
    empty_convention='nnunet',
    hd95_method='medpy')
test_evaluator = val_evaluator
