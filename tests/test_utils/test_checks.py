import ast
import re
from pathlib import Path

import pytest
import torch

import mmseg_fusion
from mmseg_fusion.utils.checks import (check_block_cfg, check_bool, check_cfg,
                                       check_choice, check_feature_map, check_int,
                                       check_int_or_tuple, check_positive_int,
                                       check_positive_ints, check_rate,
                                       check_same_batch_size, check_same_shape,
                                       check_stage_indices, check_stage_inputs)


def test_lower_layers_do_not_import_models():
    """utils/, evaluation/ and datasets/ sit below models/ (DESIGN.md): none of their
    modules imports mmseg_fusion.models, so the metrics take their checks from
    utils/checks.py."""
    package = Path(mmseg_fusion.__file__).parent
    offenders = []
    for sub in ('utils', 'evaluation', 'datasets'):
        for path in sorted((package / sub).rglob('*.py')):
            depth = len(path.relative_to(package).parts) - 1
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    if node.level:
                        parts = path.relative_to(package).parts[:depth + 1 - node.level]
                        name = '.'.join(('mmseg_fusion', *parts, node.module or ''))
                    else:
                        name = node.module or ''
                    names = [name]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                offenders += [
                    f'{path.relative_to(package)}: {n}' for n in names
                    if n.startswith('mmseg_fusion.models')
                ]
    assert offenders == []


@pytest.mark.parametrize('value', [1, 7])
def test_positive_int(value):
    assert check_positive_int('channels', value) == value


@pytest.mark.parametrize('value', [0, -1, True, 2.0, '2', None])
def test_bad_positive_int(value):
    with pytest.raises(
            ValueError, match=rf'channels must be a positive int, got {value!r}'):
        check_positive_int('channels', value)


def test_bool_and_int():
    assert check_bool('residual', False) is False
    assert check_int('ignore_index', -1) == -1
    with pytest.raises(ValueError, match="residual must be a bool, got 'yes'"):
        check_bool('residual', 'yes')
    with pytest.raises(ValueError, match='residual must be a bool, got 1'):
        check_bool('residual', 1)
    for bad in (True, 1.0, '255'):
        with pytest.raises(ValueError, match='ignore_index must be an int'):
            check_int('ignore_index', bad)


@pytest.mark.parametrize('value', [0, 0.5, 0.999])
def test_rate(value):
    assert check_rate('drop_path_rate', value) == value


@pytest.mark.parametrize('value', [1, 1.0, -0.1, False, '0.1', None])
def test_bad_rate(value):
    with pytest.raises(ValueError, match=r'drop_path_rate must be a float in \[0, 1\)'):
        check_rate('drop_path_rate', value)


def test_positive_ints():
    assert check_positive_ints('widths', [8, 16]) == (8, 16)
    assert check_positive_ints('widths', (8, 16, 32), length=3) == (8, 16, 32)
    assert check_positive_ints('widths', (8, 16), min_length=2) == (8, 16)


@pytest.mark.parametrize('value, kwargs, match', [
    ([], {}, r'widths must be a non-empty list or tuple of positive ints, got \[\]'),
    (8, {}, 'widths must be a non-empty list or tuple of positive ints, got 8'),
    ('88', {}, "got '88'"),
    ((8, 0), {}, r'widths\[1\] must be a positive int, got 0'),
    ((8, True), {}, r'widths\[1\] must be a positive int, got True'),
    ((8, 16), dict(length=3), r'widths must be a list or tuple of 3 positive ints, '
     r'got \(8, 16\)'),
    ((8, ), dict(min_length=2), 'widths must be a list or tuple of at least 2'),
    ((8, ), dict(length=2, what='one per stage'), r'2 positive ints \(one per stage\)'),
])
def test_bad_positive_ints(value, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_positive_ints('widths', value, **kwargs)


def test_stage_indices():
    assert check_stage_indices('in_index', [2, 0], 4) == (2, 0)
    assert check_stage_indices('in_index', (0, 1, 3), 4, increasing=True) == (0, 1, 3)
    assert check_stage_indices('in_index', (0, 1), 4, length=2) == (0, 1)


@pytest.mark.parametrize('value, kwargs', [
    ([], {}),
    (0, {}),
    ((0, 0), {}),
    ((0, 4), {}),
    ((-1, ), {}),
    ((True, ), {}),
    ((0.0, ), {}),
    ((1, 0), dict(increasing=True)),
    ((0, 1), dict(length=3)),
])
def test_bad_stage_indices(value, kwargs):
    with pytest.raises(
            ValueError,
            match=r'in_index must be a (non-empty )?list or tuple of .*'
            r'distinct.* stage indices in \[0, 4\), got ' + re.escape(repr(value))):
        check_stage_indices('in_index', value, 4, **kwargs)


@pytest.mark.parametrize('value, length, expected', [(4, 2, (4, 4)), (4, 3, (4, 4, 4)),
                                                     ((1, 2), 2, (1, 2)),
                                                     ([1, 2, 3], 3, (1, 2, 3))])
def test_int_or_tuple(value, length, expected):
    assert check_int_or_tuple('grid_size', value, length) == expected


@pytest.mark.parametrize('value, length', [(0, 2), ((2, 2), 3), ((2, 0), 2),
                                           ((2, True), 2), (True, 2), (2.0, 2),
                                           ('22', 2), (None, 2)])
def test_bad_int_or_tuple(value, length):
    with pytest.raises(
            ValueError,
            match=f'grid_size must be a positive int or a list '
            f'or tuple of {length} positive ints'):
        check_int_or_tuple('grid_size', value, length)
    with pytest.raises(ValueError, match=rf'of {length} \(H, W\) positive ints'):
        check_int_or_tuple('grid_size', value, length, what='(H, W)')


def test_choice_and_cfg():
    assert check_choice('mode', 'slide', ('slide', 'whole')) == 'slide'
    with pytest.raises(
            ValueError, match=r"mode must be one of \('slide', 'whole'\), got 'x'"):
        check_choice('mode', 'x', ('slide', 'whole'))
    check_cfg('act_cfg', None)
    check_cfg('act_cfg', dict(type='ReLU'), optional=False)
    with pytest.raises(
            ValueError,
            match="act_cfg must be a config dict with a 'type' "
            "key or None, got 'ReLU'"):
        check_cfg('act_cfg', 'ReLU')
    with pytest.raises(ValueError, match='key, got None'):
        check_cfg('act_cfg', None, optional=False)


def test_block_cfg():
    check_block_cfg('skip_fusion', dict(type='GatedFusion'), owner='UNetHead')
    with pytest.raises(ValueError, match='skip_fusion must be a config dict'):
        check_block_cfg('skip_fusion', 'GatedFusion')
    with pytest.raises(ValueError, match="'NoSuchBlock' is not registered"):
        check_block_cfg('skip_fusion', dict(type='NoSuchBlock'))
    with pytest.raises(ValueError, match="must not set 'channels': UNetHead"):
        check_block_cfg(
            'skip_fusion', dict(type='GatedFusion', channels=4), owner='UNetHead')


def test_feature_maps():
    x = torch.zeros(1, 4, 3, 3)
    check_feature_map('x', x, 4)
    check_feature_map('x', torch.zeros(1, 4, 2, 3, 3), 4, ndim=5)
    with pytest.raises(
            ValueError, match=r'x must be a \(N, C, H, W\) tensor, got '
            r'\(4, 3, 3\)'):
        check_feature_map('x', x[0], 4)
    with pytest.raises(ValueError, match='x must be a .* tensor, got list'):
        check_feature_map('x', [x], 4)
    with pytest.raises(ValueError, match=r'x must have 8 channels .* \(1, 4, 3, 3\)'):
        check_feature_map('x', x, 8)
    check_same_shape(('a', 'b'), (x, x.clone()))
    with pytest.raises(
            ValueError, match=r'same shape, got a=\(1, 4, 3, 3\), '
            r'b=\(1, 4, 3, 2\)'):
        check_same_shape(('a', 'b'), (x, x[..., :2]))
    check_same_batch_size(('a', 'b'), (x, x[..., :2]))
    with pytest.raises(
            ValueError, match=r'one batch size, got a=\(1, 4, 3, 3\), '
            r'b=\(2, 4, 3, 3\)'):
        check_same_batch_size(('a', 'b'), (x, torch.cat([x, x])))
    check_stage_inputs([x, x], (1, ), (4, ))
    with pytest.raises(
            ValueError, match=r'at least 3 stages for in_index=\(2,\), '
            'got 2'):
        check_stage_inputs([x, x], (2, ), (4, ))
    with pytest.raises(ValueError, match=r'inputs\[1\] must have 5 channels'):
        check_stage_inputs([x, x], (0, 1), (4, 5))
