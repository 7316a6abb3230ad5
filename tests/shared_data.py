"""Where the real sample data lies: ``../shared/data`` beside the repository (README
there), or the folder named by ``MMSEG_FUSION_SHARED_DATA``.

A plain clone has no such folder: the tests that read a sample carry
``needs_clinicdb_sample`` / ``needs_ct_sample`` and are skipped, with the reason,
when their sample is absent.
"""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get('MMSEG_FUSION_SHARED_DATA', REPO.parent / 'shared' / 'data'))
CLINICDB_SAMPLE = SHARED_DATA / 'cvc_clinicdb_sample'
CT_SAMPLE = SHARED_DATA / 'totalsegmentator_example'


def needs_sample(sample: Path):
    """Mark a test that reads ``sample``: skipped, saying why, when it is absent."""
    return pytest.mark.skipif(
        not sample.is_dir(),
        reason=f'needs the real sample {sample.name} in {SHARED_DATA} (../shared/data '
        'beside the repository, or set MMSEG_FUSION_SHARED_DATA); not found')


needs_clinicdb_sample = needs_sample(CLINICDB_SAMPLE)
needs_ct_sample = needs_sample(CT_SAMPLE)

# TotalSegmentator v2 id -> BTCV id, from the CT sample's README.
TOTALSEG_TO_BTCV = '1:1,2:2,3:3,4:4,15:5,5:6,6:7,52:8,63:9,64:10,7:11,8:12,9:13'


def write_btcv_layout(root: Path, cases: dict) -> Path:
    """Build the raw Synapse/BTCV layout ``root/RawData/Training/{img,label}`` from
    ``{case id: (image path, label path)}`` (symlinks); return ``root``."""
    training = root / 'RawData' / 'Training'
    (training / 'img').mkdir(parents=True)
    (training / 'label').mkdir()
    for case_id, (image, label) in cases.items():
        os.symlink(image, training / 'img' / f'img{case_id:04d}.nii.gz')
        os.symlink(label, training / 'label' / f'label{case_id:04d}.nii.gz')
    return root
