"""tools/deployment/pytorch2onnx.py and mmseg_fusion.utils.onnx_export: ONNX export
round trips through onnxruntime for tiny versions of the repository's model families
(2-D and 3-D), an existing --out file is never overwritten, and a block the exporter
cannot convert is named with its operation."""
import io

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import nn

from mmseg_fusion.utils import OutputExistsError
from mmseg_fusion.utils.onnx_export import (ExportFriendlyOps, OnnxExportError,
                                            _adaptive_pool, export_onnx,
                                            module_for_node, onnxruntime_failure,
                                            onnxruntime_session)
from tests.scripts import load_script

# Tiny widths for the U-Net family (base 8 instead of 32), a 64 px input.
UNET = [
    'model.backbone.base_channels=8', 'model.decode_head.in_channels=[8,16,32,64,128]',
    'model.decode_head.channels=8'
]
CONFIGS = {
    'mcanet': ('configs/mcanet/mcanet_mscan-t_1xb8-adamw-80k_kvasir-seg-224x224.py', [
        'model.backbone.embed_dims=[8,16,32,64]', 'model.backbone.depths=[1,1,1,1]',
        'model.decode_head.in_channels=[8,16,32,64]', 'model.decode_head.channels=8',
        'model.decode_head.norm_cfg.num_groups=8'
    ]),
    # DCA's patch 8 does not divide stage 0 (64 px): exact adaptive pooling
    'dca':
    ('configs/dca/dca_unet-s5_1xb16-200e_kvasir-seg-224x224.py',
     UNET + ['model.neck.in_channels=[8,16,32,64,128]', 'model.neck.patch_size=8']),
    # SAFM pools 8 px stages by 8 and 16 px ones by 4 (adaptive max pooling)
    'safm': ('configs/blocks/safm_unet-s5_1xb16-200e_kvasir-seg-224x224.py',
             UNET + ['model.neck.in_channels=[8,16,32,64,128]']),
    'gated-fusion': ('configs/blocks/gated-fusion_unet-s5_1xb16-200e_kvasir-seg-'
                     '224x224.py', UNET),
}


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/deployment/pytorch2onnx.py')


def export(tool, tmp_path, name, config, options, shape=('64', )):
    out = tmp_path / f'{name}.onnx'
    argv = [config, '--shape', *shape, '--out', str(out), '--threads', '2']
    if options:
        argv += ['--cfg-options', *options]
    return out, tool.main(argv)


@pytest.mark.slow
@pytest.mark.parametrize('family', sorted(CONFIGS))
def test_2d_round_trip(tool, tmp_path, capsys, family):
    config, options = CONFIGS[family]
    out, result = export(tool, tmp_path, family, config, options)
    assert out.is_file()
    # exported at batch 2 (dynamic batch), checked at batch 2 and at batch 1
    assert [c['batch'] for c in result['checks']] == [2, 1]
    assert [c['output_shapes'][0][2:] for c in result['checks']] == [(64, 64)] * 2
    assert result['max_abs_diff'] < 1e-4
    assert result['pytorch_repeat_diff'] == 0
    text = capsys.readouterr().out
    assert 'Input  inputs: batchx3x64x64 float32' in text
    assert 'max |diff|' in text


@pytest.mark.slow
def test_3d_dnet_round_trip(tool, tmp_path, capsys):
    """A tiny D-Net (the demo config at widths 4-32) at one 16^3 patch; its
    channels-first LayerNorm moves axes with negative indices."""
    config = 'configs/demo/dnet-tiny_dlk-w8_1xb2-adamw-800it_synthetic-ct-32x32x32.py'
    options = [
        'model.backbone.widths=[4,8,16,32]', 'model.backbone.salience_channels=2',
        'model.decode_head.in_channels=[2,4,8,16,32]'
    ]
    out, result = export(tool, tmp_path, 'dnet', config, options, shape=('16', ))
    shapes = [c['output_shapes'][0] for c in result['checks']]
    assert shapes == [(2, 14, 16, 16, 16), (1, 14, 16, 16, 16)]
    assert result['max_abs_diff'] < 1e-4
    assert 'batchx1x16x16x16' in capsys.readouterr().out


def test_refuses_to_overwrite(tool, tmp_path, capsys):
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'keep me')
    config, options = CONFIGS['gated-fusion']
    with pytest.raises(OutputExistsError, match='never overwritten'):
        tool.main([config, '--out', str(out), '--cfg-options', *options])
    from mmseg_fusion.utils import run_cli
    with pytest.raises(SystemExit) as exit_info:
        run_cli(tool.main, [config, '--out', str(out)])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith(f'error: --out {out} exists')
    assert out.read_bytes() == b'keep me'


def test_shape_must_match_the_model(tool, tmp_path):
    config = 'configs/demo/dnet-tiny_dlk-w8_1xb2-adamw-800it_synthetic-ct-32x32x32.py'
    with pytest.raises(ValueError, match=r'--shape takes D \[H W\]'):
        tool.main([config, '--shape', '16', '16', '--out', str(tmp_path / 'x.onnx')])


class CumulativeMax(nn.Module):
    """A toy block with an operation the ONNX exporters lack (``torch.cummax``)."""

    def __init__(self, channels: int, **unused) -> None:  # takes SAFM's arguments
        super().__init__()
        self.channels = channels

    def forward(self, x):
        return torch.cummax(x, dim=2)[0]


class Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(nn.ReLU(), CumulativeMax(4), nn.Conv2d(4, 2, 1))

    def forward(self, x):
        return self.body(self.stem(x))


def test_error_names_block_and_operation():
    with pytest.raises(OnnxExportError) as info:
        export_onnx(Toy().eval(), torch.randn(2, 3, 8, 8), io.BytesIO())
    error = info.value
    assert error.module_path == 'body.1'
    assert error.module_type.endswith('CumulativeMax')
    assert error.operation == 'aten::cummax'
    assert 'block body.1 (CumulativeMax' in str(error)
    assert 'aten::cummax' in str(error)


def test_tool_error_names_block_in_a_config(tool, tmp_path, capsys):
    """The same toy block as a config's StageRefineNeck block: the tool's one error
    line names its path in the segmentor."""
    name = 'ToyCumulativeMaxForOnnxTest'
    if MODELS.get(name) is None:
        MODELS.register_module(name=name, module=CumulativeMax)
    config, options = CONFIGS['safm']
    options = options + [f'model.neck.block_cfg.type={name}']
    from mmseg_fusion.utils import run_cli
    with pytest.raises(SystemExit):
        run_cli(tool.main, [
            config, '--shape', '32', '--out',
            str(tmp_path / 'toy.onnx'), '--cfg-options', *options
        ])
    err = capsys.readouterr().err
    assert err.startswith('error: ONNX export failed')
    assert 'block neck.blocks.0 (CumulativeMax' in err
    assert 'operation aten::cummax' in err
    assert not (tmp_path / 'toy.onnx').exists()


@pytest.mark.parametrize('kind', ['avg', 'max'])
@pytest.mark.parametrize('size,out', [((7, 7), (2, 3)), ((28, 20), (3, 6)),
                                      ((8, 6), (8, 1)), ((5, 9, 10), (3, 2, 4))])
def test_exact_adaptive_pooling(kind, size, out):
    x = torch.randn(2, 3, *size)
    reference = getattr(F, f'adaptive_{kind}_pool{len(size)}d')(x, out)
    torch.testing.assert_close(
        _adaptive_pool(kind, x, out), reference, rtol=0, atol=1e-6)
    with ExportFriendlyOps():  # the module form dispatches to the same function
        pool = getattr(nn, f'Adaptive{kind.capitalize()}Pool{len(size)}d')(out)
        torch.testing.assert_close(pool(x), reference, rtol=0, atol=1e-6)


def test_pooling_and_movedim_export_with_dynamic_batch():
    """Without ExportFriendlyOps the TorchScript exporter refuses 7 -> 2 pooling and
    writes movedim's -1 into Transpose, which onnxruntime rejects."""

    class Net(nn.Module):

        def forward(self, x):
            y = F.layer_norm(x.movedim(1, -1), (3, )).movedim(-1, 1)
            pooled = F.adaptive_max_pool2d(y, 2)[..., :1]
            return F.adaptive_avg_pool2d(y, (2, 3)) + pooled

    net = Net().eval()
    buffer = io.BytesIO()
    export_onnx(net, torch.randn(2, 3, 7, 7), buffer, input_names=['x'])
    session = onnxruntime_session(buffer.getvalue(), threads=1)
    for batch in (1, 3):
        x = torch.randn(batch, 3, 7, 7)
        torch.testing.assert_close(
            torch.from_numpy(session.run(None, {'x': x.numpy()})[0]),
            net(x),
            rtol=0,
            atol=1e-5)


def test_onnxruntime_error_is_mapped_to_the_block():
    toy = Toy()
    assert module_for_node(toy, '/body/body.1/Transpose') == ('body.1', toy.body[1])
    assert module_for_node(toy, '/stem/Conv') == ('stem', toy.stem)
    assert module_for_node(toy, '/Add_3')[0] == ''
    error = RuntimeError('[ONNXRuntimeError] : 1 : FAIL : Load model failed:Node '
                         '(/body/body.1/Transpose) Op (Transpose) [TypeInferenceError] '
                         'Invalid attribute perm {0, 1, 2, -1}')
    mapped = onnxruntime_failure(toy, error, 'loading')
    assert (mapped.module_path, mapped.operation) == ('body.1', 'Transpose')
    assert 'block body.1 (CumulativeMax' in str(mapped)
