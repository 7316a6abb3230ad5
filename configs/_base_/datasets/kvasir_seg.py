# Kvasir-SEG ("Kvasir-SEG: A Segmented Polyp Dataset", Jha et al., MMM 2020): 1000
# colonoscopy frames with polyp masks, no official split. Make the data with
#   python tools/dataset_converters/kvasir_seg.py SRC -o data/kvasir_seg
# which writes img_dir/{train,val}/NAME.png, ann_dir/{train,val}/NAME.png (masks
# {0, 1}) and the seeded split in splits/.
# Pipeline of the MCANet polyp configs (haoshao-nku/medical_seg, polypseg.py): random
# rescale of a 512 x 512 scale by 0.5-2.0, a 224 x 224 random crop with
# cat_max_ratio 0.75, flip and photometric distortion; testing resizes to fit
# 512 x 512 and scores at the original size.
dataset_type = 'PolypDataset'
data_root = 'data/kvasir_seg'
img_scale = (512, 512)
crop_size = (224, 224)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # annotations are loaded after Resize: they are scored at the original size
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal'),
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
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
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Per-image Dice, IoU and HD95 averaged over images (the polyp papers' mDice, mIoU).
val_evaluator = dict(type='MedicalMetric')
test_evaluator = val_evaluator
