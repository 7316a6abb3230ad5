# Synapse multi-organ CT (BTCV, MICCAI 2015), 2-D axial slices, TransUNet protocol
# ("TransUNet: Transformers Make Strong Encoders for Medical Image Segmentation",
# Chen et al., 2021): 18 training cases, 12 test cases, 8 organs + background.
# Make the data with
#   python tools/dataset_converters/synapse.py RAW_ROOT -o data/synapse
# which writes img_dir/{train,val}/caseXXXX_sliceKKK.png (the 12 test cases are in
# val), ann_dir/..., and spacing.json; images are PNG, hence img_suffix='.png'.
# SynapseSliceDataset (mmseg's SynapseDataset, same classes) gives every slice its
# case, slice index and spacing (read from data_root/spacing.json when the dataset
# loads), which the test pipelines pack for VolumeMetric.
dataset_type = 'SynapseSliceDataset'
data_root = 'data/synapse'
img_scale = (224, 224)
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
             'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label', 'case',
             'slice_index', 'spacing', 'slice_spacing')

# TransUNet's RandomGenerator: with probability 0.5 a random rot90 followed by a
# random flip, otherwise with probability 0.5 a rotation by an angle in [-20, 20]
# degrees (labels nearest, border 0 = background); then a resize to 224 x 224.
# mmseg's RandomRotFlip is used for the rot90 + flip part only: its own rotation
# interpolates the label map bilinearly, which mixes class ids at organ borders.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomRotFlip', rotate_prob=0.0, flip_prob=1.0)],
            [dict(type='RandomRotate', prob=0.5, degree=20, pad_val=0, seg_pad_val=0)],
        ],
        prob=[0.5, 0.5]),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='PackSegInputs'),
]
# Test: each slice is resized to 224 x 224 and the prediction is resized back to the
# slice's original size (512 x 512), where it is scored, as TransUNet does.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
# Test-time augmentation (tools/test.py --tta): none of the Synapse papers built on
# TransUNet's protocol (TransUNet, MCANet, DCA, HiFuse) test with TTA, so their
# numbers compare with runs without --tta. This one averages the slice and its
# horizontal flip at 224 x 224 (training flips too, through RandomRotFlip).
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=img_scale, keep_ratio=False)],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal'),
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs', meta_keys=meta_keys)],
        ]),
]
train_dataloader = dict(
    batch_size=24,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        img_suffix='.png',
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        img_suffix='.png',
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# Per-case 3-D Dice and HD95 per organ, averaged over the 12 test cases. HD95 is in
# voxels (use_spacing=False) because TransUNet reports it so (DSC 77.48, HD95 31.69);
# use_spacing=True reports it in mm with the voxel size each slice carries.
val_evaluator = dict(type='VolumeMetric', use_spacing=False)
test_evaluator = val_evaluator
