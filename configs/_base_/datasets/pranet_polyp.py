# The PraNet polyp benchmark ("PraNet: Parallel Reverse Attention Network for Polyp
# Segmentation", Fan et al., MICCAI 2020): train on 1450 frames (900 Kvasir-SEG + 550
# CVC-ClinicDB), test on five sets, each scored on its own. Make the data with
#   python tools/dataset_converters/pranet_polyp.py SRC -o data/pranet_polyp
# (SRC holds the extracted TrainDataset/ and TestDataset/), which writes
# img_dir/train/NAME.png, img_dir/test/SUBSET/NAME.png and the same under ann_dir/
# (masks {0, 1}).
# One tools/test.py run scores the five test sets: the test set is a ConcatDataset of
# five PolypDatasets whose samples carry 'subset', which PackSegInputs passes on and
# MedicalMetric reports per name (Kvasir/mDice, CVC-300/mDice, ...). The benchmark has
# no validation split, so validation also runs on the test sets, as in the MCANet
# configs: do not select checkpoints by it.
# Pipeline of the MCANet polyp configs (haoshao-nku/medical_seg, polypseg.py): random
# rescale of a 512 x 512 scale by 0.5-2.0, a 224 x 224 random crop with
# cat_max_ratio 0.75, flip and photometric distortion; testing resizes to fit
# 512 x 512 and scores at the original size.
dataset_type = 'PolypDataset'
data_root = 'data/pranet_polyp'
test_subsets = ('Kvasir', 'CVC-ClinicDB', 'CVC-ColonDB', 'ETIS-LaribPolypDB',
                'CVC-300')
img_scale = (512, 512)
crop_size = (224, 224)
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
             'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label', 'subset')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
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
    dict(type='PackSegInputs', meta_keys=meta_keys),
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
            [dict(type='PackSegInputs', meta_keys=meta_keys)],
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
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(
                type=dataset_type,
                data_root=data_root,
                subset=subset,
                data_prefix=dict(
                    img_path=f'img_dir/test/{subset}',
                    seg_map_path=f'ann_dir/test/{subset}'),
                pipeline=test_pipeline) for subset in test_subsets
        ]))
val_dataloader = test_dataloader
# Per-image Dice, IoU and HD95 averaged over images (the polyp papers' mDice, mIoU),
# over all test images and per test set.
val_evaluator = dict(type='MedicalMetric')
test_evaluator = val_evaluator
