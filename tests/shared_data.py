"""Where the real sample data lies: ``../shared/data`` beside the repository (README
there), or the folder named by ``MMSEG_FUSION_SHARED_DATA``."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get('MMSEG_FUSION_SHARED_DATA', REPO.parent / 'shared' / 'data'))
CLINICDB_SAMPLE = SHARED_DATA / 'cvc_clinicdb_sample'
CT_SAMPLE = SHARED_DATA / 'totalsegmentator_example'

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
