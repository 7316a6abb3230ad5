"""VolumeDataPreProcessor: stacking (C, D, H, W) volumes, casting, normalisation and
its refusals."""
import pytest
import torch
from mmseg.registry import MODELS

from mmseg_fusion.models.data_preprocessors import VolumeDataPreProcessor
from mmseg_fusion.structures import VolumeData, VolumeSegDataSample


def labelled(shape):
    return VolumeSegDataSample(
        gt_sem_seg=VolumeData(data=torch.zeros(1, *shape, dtype=torch.long)),
        metainfo=dict(case_id='case0001'))


def test_stacks_and_casts_to_float32():
    preprocessor = MODELS.build(dict(type='VolumeDataPreProcessor'))
    volumes = [
        torch.randint(-1000, 1000, (2, 4, 5, 6), dtype=torch.int16) for _ in range(3)
    ]
    samples = [labelled((4, 5, 6)) for _ in range(3)]
    out = preprocessor(dict(inputs=volumes, data_samples=samples), training=True)
    assert out['inputs'].shape == (3, 2, 4, 5, 6)
    assert out['inputs'].dtype == torch.float32
    torch.testing.assert_close(out['inputs'][1], volumes[1].float())
    assert out['data_samples'] is not None and len(out['data_samples']) == 3
    assert out['data_samples'][0].case_id == 'case0001'
    stacked = preprocessor(dict(inputs=torch.stack(volumes)))['inputs']
    torch.testing.assert_close(stacked, out['inputs'])


def test_per_channel_normalisation():
    preprocessor = VolumeDataPreProcessor(mean=[10., -5.], std=[2., 4.])
    volume = torch.randn(2, 3, 3, 3)
    out = preprocessor(dict(inputs=[volume]))['inputs'][0]
    torch.testing.assert_close(out[0], (volume[0] - 10) / 2)
    torch.testing.assert_close(out[1], (volume[1] + 5) / 4)
    one_value = VolumeDataPreProcessor(mean=100., std=50.)
    out = one_value(dict(inputs=[volume]))['inputs'][0]
    torch.testing.assert_close(out, (volume - 100) / 50)
    assert 'mean' not in one_value.state_dict()  # not saved in checkpoints


def test_mixed_shapes_are_refused_with_the_shapes():
    preprocessor = VolumeDataPreProcessor()
    volumes = [torch.zeros(1, 4, 5, 6), torch.zeros(1, 4, 5, 7)]
    with pytest.raises(ValueError, match=r'\(1, 4, 5, 6\), \(1, 4, 5, 7\)'):
        preprocessor(dict(inputs=volumes))


@pytest.mark.parametrize('inputs,match', [
    ([torch.zeros(4, 5, 6)], r'inputs\[0\] must be a \(C, D, H, W\).*\(4, 5, 6\)'),
    (torch.zeros(1, 4, 5, 6), r'\(N, C, D, H, W\) tensor, got shape \(1, 4, 5, 6\)'),
    ([], 'non-empty list'),
])
def test_wrong_rank_is_refused(inputs, match):
    with pytest.raises(ValueError, match=match):
        VolumeDataPreProcessor()(dict(inputs=inputs))


def test_training_label_on_another_grid_is_refused():
    preprocessor = VolumeDataPreProcessor()
    data = dict(inputs=[torch.zeros(1, 4, 5, 6)], data_samples=[labelled((4, 5, 7))])
    with pytest.raises(
            ValueError, match=r'data_samples\[0\].*\(4, 5, 7\).*\(4, 5, 6\)'):
        preprocessor(data, training=True)
    preprocessor(data, training=False)  # at test time the label keeps its own grid


@pytest.mark.parametrize('kwargs,match', [
    (dict(mean=[0.]), 'mean and std must be given together'),
    (dict(mean=[0.], std=[0.]), 'std must be > 0'),
    (dict(mean=[0., 1.], std=[1., 1., 1.]), 'one value per channel'),
    (dict(mean='zero', std=1.), 'mean must be a number or a sequence'),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VolumeDataPreProcessor(**kwargs)


def test_channel_count_mismatch_is_refused():
    preprocessor = VolumeDataPreProcessor(mean=[0., 0.], std=[1., 1.])
    with pytest.raises(ValueError, match='2 and 2 values.*3 channels'):
        preprocessor(dict(inputs=[torch.zeros(3, 2, 2, 2)]))
