"""Where the real sample data lies: ``../shared/data`` beside the repository (README
there), or the folder named by ``MMSEG_FUSION_SHARED_DATA``."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get('MMSEG_FUSION_SHARED_DATA', REPO.parent / 'shared' / 'data'))
CLINICDB_SAMPLE = SHARED_DATA / 'cvc_clinicdb_sample'
CT_SAMPLE = SHARED_DATA / 'totalsegmentator_example'
