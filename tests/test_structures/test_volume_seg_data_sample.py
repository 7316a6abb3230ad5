import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from mmseg_fusion.structures import VolumeData, VolumeSegDataSample


def test_volume_data_holds_4d_fields_of_one_spatial_shape():
    volume = VolumeData(data=torch.zeros(1, 4, 5, 6))
    volume.logits = np.zeros((3, 4, 5, 6), dtype=np.float32)
    assert volume.shape == (4, 5, 6)
    with pytest.raises(ValueError, match=r"'extra' must have the spatial shape"):
        volume.extra = torch.zeros(1, 4, 5, 7)
    with pytest.raises(
            ValueError, match=r'\(C, D, H, W\) volume, got shape \(4, 5, 6\)'):
        VolumeData(data=torch.zeros(4, 5, 6))
    with pytest.raises(TypeError, match='tensor or an array'):
        VolumeData(data=[1, 2])
    assert VolumeData().shape is None


def test_sample_fields_take_volume_data_only_and_move_devices():
    sample = VolumeSegDataSample(metainfo=dict(case_id='case0001'))
    sample.gt_sem_seg = VolumeData(data=torch.ones(1, 2, 3, 4, dtype=torch.long))
    sample.pred_sem_seg = VolumeData(data=torch.zeros(1, 2, 3, 4, dtype=torch.long))
    moved = sample.cpu()
    assert moved.case_id == 'case0001'
    assert torch.equal(moved.gt_sem_seg.data, sample.gt_sem_seg.data)
    del sample.pred_sem_seg
    assert 'pred_sem_seg' not in sample


def test_sample_refuses_2d_pixel_data():
    with pytest.raises(AssertionError, match='VolumeData'):
        VolumeSegDataSample().seg_logits = PixelData(data=torch.zeros(1, 3, 4))
