# Kvasir-SEG ("Kvasir-SEG: A Segmented Polyp Dataset", Jha et al., MMM 2020) at
# 224 x 224, as the DCA paper trains it. Make the data with
#   python tools/dataset_converters/kvasir_seg.py Kvasir-SEG -o data/kvasir_seg \
#       --val-ratio 0.2 --seed 42
# (val is the DCA paper's test split: it holds out 20 % with sklearn's
# train_test_split(random_state=42) over os.listdir order, which no other tool can
# reproduce file for file; the converter's seeded split has the same size).
dataset_type = 'PolypDataset'
data_root = 'data/kvasir_seg'
img_scale = (224, 224)

# The DCA paper's augmentation (its transforms.py): resize to 224 x 224, then each
# with probability 0.2 a rotation in [-60, 60] degrees (labels nearest), a
# horizontal flip and a vertical flip. The reference's horizontal flip flips the
# mask vertically (TF.hflip(image), TF.vflip(mask)); here both flip the same way.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='RandomRotate', prob=0.2, degree=60, pad_val=0, seg_pad_val=0),
    dict(type='RandomFlip', prob=0.2, direction='horizontal'),
    dict(type='RandomFlip', prob=0.2, direction='vertical'),
    dict(type='PackSegInputs'),
]
# The prediction is resized back to the image's original size and scored there (the
# reference scores 224 x 224 masks).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# Test-time augmentation (tools/test.py --tta): the flips of the training
# augmentation, averaged (none, horizontal, vertical) at 224 x 224. The DCA paper
# reports results without TTA.
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=img_scale, keep_ratio=False)],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='vertical'),
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
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

# Per-image Dice, IoU and HD95 averaged over images (the polyp papers' protocol).
val_evaluator = dict(type='MedicalMetric')
test_evaluator = val_evaluator
