"""mmseg on the current stack after ``import mmseg_fusion``: mmcv-lite, torch>=2.6."""
import io
import pickle
import sys

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_fusion.compat as compat

needs_lite = pytest.mark.skipif(
    compat.mmcv_ops_are_compiled(),
    reason='the fallback is only installed for mmcv-lite')


def tiny_segmentor_cfg(loss_decode):
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', size=(32, 32)),
        backbone=dict(
            type='UNet',
            in_channels=3,
            base_channels=4,
            num_stages=3,
            strides=(1, 1, 1),
            enc_num_convs=(1, 1, 1),
            dec_num_convs=(1, 1),
            downsamples=(True, True),
            enc_dilations=(1, 1, 1),
            dec_dilations=(1, 1)),
        decode_head=dict(
            type='FCNHead',
            in_channels=4,
            in_index=2,
            channels=4,
            num_convs=1,
            num_classes=2,
            loss_decode=loss_decode),
        test_cfg=dict(mode='whole'))


def test_mmseg_models_import():
    import mmseg.models  # noqa: F401  (fails on mmcv-lite without the fix)
    import mmseg.utils  # noqa: F401
    assert 'mmseg.models.losses.focal_loss' in sys.modules


def test_fallback_only_without_compiled_ops():
    ops = sys.modules['mmcv.ops']
    is_fallback = getattr(ops, 'is_mmseg_fusion_fallback', False)
    assert is_fallback == (not compat.mmcv_ops_are_compiled())


def test_mmseg_model_builds_trains_and_predicts():
    init_default_scope('mmseg')
    cfg = tiny_segmentor_cfg(dict(type='CrossEntropyLoss', loss_weight=1.0))
    model = MODELS.build(ConfigDict(cfg))
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(2):
        sample = SegDataSample(
            metainfo=dict(img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 2, (1, 32, 32)))
        samples.append(sample)
    inputs = torch.randn(2, 3, 32, 32)
    losses = model.loss(inputs, samples)
    assert torch.isfinite(sum(v for k, v in losses.items() if 'loss' in k))
    model.eval()
    with torch.no_grad():
        predictions = model.predict(inputs, samples)
    assert predictions[0].pred_sem_seg.data.shape == (1, 32, 32)


@needs_lite
def test_compiled_only_op_fails_with_install_advice():
    init_default_scope('mmseg')
    with pytest.raises(compat.CompiledOpMissingError, match='compiled mmcv'):
        MODELS.build(dict(type='CCHead', in_channels=8, channels=8, num_classes=2))
    from mmcv.ops import DeformConv2d
    with pytest.raises(compat.CompiledOpMissingError, match='DeformConv2d'):
        DeformConv2d(4, 4, 3)


def test_point_sample_is_available():
    from mmcv.ops import point_sample
    feature = torch.arange(16.).reshape(1, 1, 4, 4)
    corner_centres = torch.tensor([[[0.125, 0.125], [0.875, 0.875]]])
    values = point_sample(feature, corner_centres, align_corners=False)
    assert values.flatten().tolist() == [0.0, 15.0]


def test_sigmoid_focal_loss_matches_hand_computation():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    target = torch.tensor([1, 2])  # row 2: index 2 = background for 2 classes
    gamma, alpha = 2.0, 0.25
    p = logits.sigmoid()
    expected = torch.stack([
        -(1 - alpha) * p[0, 0]**gamma * torch.log(1 - p[0, 0]),
        -alpha * (1 - p[0, 1])**gamma * torch.log(p[0, 1]),
        -(1 - alpha) * p[1, 0]**gamma * torch.log(1 - p[1, 0]),
        -(1 - alpha) * p[1, 1]**gamma * torch.log(1 - p[1, 1]),
    ]).reshape(2, 2)
    loss = compat.sigmoid_focal_loss(logits, target, gamma, alpha, None, 'none')
    torch.testing.assert_close(loss, expected)
    mean = compat.sigmoid_focal_loss(logits, target, gamma, alpha, None, 'mean')
    torch.testing.assert_close(mean, expected.sum() / 2)
    weighted = compat.sigmoid_focal_loss(logits, target, gamma, alpha,
                                         torch.tensor([1.0, 3.0]), 'none')
    torch.testing.assert_close(weighted, expected * torch.tensor([[3.0], [0.0]]))
    with pytest.raises(ValueError, match='reduction'):
        compat.sigmoid_focal_loss(logits, target, reduction='avg')


def test_weights_only_load_still_refuses_foreign_globals():
    buffer = io.BytesIO()
    torch.save({'fn': torch.load}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='torch.serialization.load'):
        torch.load(buffer)


def test_history_buffer_getattr_is_narrow():
    from mmengine.logging import HistoryBuffer
    assert compat._history_buffer_statistic(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='__init__'):
        compat._history_buffer_statistic(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError):
        compat._history_buffer_statistic(torch, 'load')


def test_message_hub_checkpoint_loads_weights_only(tmp_path):
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('compat_test_hub')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_scalar('train/loss', 0.25)
    hub.update_info('iter', 3)
    path = tmp_path / 'ckpt.pth'
    torch.save(
        {
            'message_hub': hub.state_dict(),
            'meta': {
                'seed': np.int64(7)
            },
            'array': np.arange(3, dtype=np.float32)
        }, path)
    loaded = torch.load(path)  # weights_only=True is torch's default here
    restored = loaded['message_hub']['log_scalars']['train/loss']
    assert restored.mean() == pytest.approx(0.375)
    assert loaded['meta']['seed'] == 7


def test_cpu_distributed_config(monkeypatch):
    from mmengine.config import Config
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    compat.configure_cpu_distributed(cfg, 'none')
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    compat.configure_cpu_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None
