# The PraNet polyp benchmark ("PraNet: Parallel Reverse Attention Network for Polyp
# Segmentation", Fan et al., MICCAI 2020): train on 1450 frames (900 Kvasir-SEG + 550
# CVC-ClinicDB), test on five sets, each scored on its own. Make the data with
#   python tools/dataset_converters/pranet_polyp.py SRC -o data/pranet_polyp
# (SRC holds the extracted TrainDataset/ and TestDataset/), which writes
# img_dir/train/NAME.png, img_dir/test/SUBSET/NAME.png and the same under ann_dir/
# (masks {0, 1}).
# The pipelines are Kvasir-SEG's (kvasir_seg.py, the MCANet polyp pipeline): random
# rescale of a 512 x 512 scale by 0.5-2.0, a 224 x 224 random crop with
# cat_max_ratio 0.75, flip and photometric distortion; testing resizes to fit
# 512 x 512 and scores at the original size.
# One tools/test.py run scores the five test sets: the test set is a ConcatDataset of
# five PolypDatasets whose samples carry 'subset', which PackSegInputs passes on (the
# test pipelines below are Kvasir-SEG's with 'subset' in its meta_keys) and
# MedicalMetric reports per name (Kvasir/mDice, CVC-300/mDice, ...). The benchmark
# has no validation split, so validation also runs on the test sets, as in the
# MCANet configs: do not select checkpoints by it.
_base_ = './kvasir_seg.py'
data_root = 'data/pranet_polyp'
test_subsets = ('Kvasir', 'CVC-ClinicDB', 'CVC-ColonDB', 'ETIS-LaribPolypDB', 'CVC-300')
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
             'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label', 'subset')
test_pipeline = [
    *_base_.test_pipeline[:-1],
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
tta_pipeline = [
    _base_.tta_pipeline[0],
    dict(
        type='TestTimeAug',
        transforms=[
            *_base_.tta_pipeline[1].transforms[:-1],
            [dict(type='PackSegInputs', meta_keys=meta_keys)],
        ]),
]
train_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                type=_base_.dataset_type,
                data_root=data_root,
                subset=subset,
                data_prefix=dict(
                    img_path=f'img_dir/test/{subset}',
                    seg_map_path=f'ann_dir/test/{subset}'),
                pipeline=test_pipeline) for subset in test_subsets
        ]))
# Its own dict (mmengine consumes _delete_ while merging), the same test sets.
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=test_dataloader['dataset']['datasets']))
