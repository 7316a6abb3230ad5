"""Volumes for the 3-D data tests: the real CT sample (tests skip, with the reason,
when ../shared/data is absent), its labels mapped to BTCV ids, NIfTI writers for broken
files, and a converted-layout (imagesTr/labelsTr/dataset.json) builder."""
import json
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener

from tests.shared_data import CT_SAMPLE, TOTALSEG_TO_BTCV, needs_ct_sample

CT_SMALL = CT_SAMPLE / 'example_ct_sm.nii.gz'  # 122x101x30, 3 mm, int16 HU
CT_LABEL = CT_SAMPLE / 'example_seg.nii.gz'  # TotalSegmentator ids

needs_ct = needs_ct_sample  # skipped, with the reason, in a plain clone

# The BTCV organs in plain words (the converter writes mmseg's snake_case).
BTCV_NAMES = ('background', 'spleen', 'right kidney', 'left kidney', 'gallbladder',
              'esophagus', 'liver', 'stomach', 'aorta', 'inferior vena cava',
              'portal and splenic veins', 'pancreas', 'right adrenal gland',
              'left adrenal gland')


def btcv_label(raw: np.ndarray) -> np.ndarray:
    """TotalSegmentator ids -> BTCV ids (0 for every other structure)."""
    lookup = np.zeros(256, np.uint8)
    for pair in TOTALSEG_TO_BTCV.split(','):
        source, target = pair.split(':')
        lookup[int(source)] = int(target)
    return lookup[raw]


def write_btcv_label(path: Path) -> Path:
    """The sample's label mapped to BTCV ids, with the CT's header, at ``path``."""
    source = nib.load(str(CT_LABEL))
    label = btcv_label(np.asanyarray(source.dataobj))
    nib.save(nib.Nifti1Image(label, source.affine, source.header), str(path))
    return path


def write_raw_nifti(path: Path, data: np.ndarray, mutate) -> Path:
    """Write a NIfTI file whose header ``mutate(header)`` edited after nibabel set it
    up, bypassing nibabel's own consistency fixes (to make invalid files)."""
    header = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])).header.copy()
    header.set_data_offset(352)
    mutate(header)
    with ImageOpener(str(path), 'wb') as fileobj:
        header.write_to(fileobj)
        fileobj.write(b'\0' * (352 - header.sizeof_hdr))
        fileobj.write(np.asarray(data, header.get_data_dtype()).tobytes(order='F'))
    return path


def write_layout(root: Path,
                 cases: Dict[str, Optional[Sequence[Path]]],
                 labels: Sequence[str] = BTCV_NAMES,
                 splits: Optional[dict] = None,
                 folds: Optional[list] = None,
                 name: str = 'BTCV',
                 protocol: str = 'swinunetr',
                 test_only: Sequence[str] = (),
                 extra: Optional[dict] = None) -> Path:
    """The converted layout: ``cases`` maps a case id to (image, label) source paths
    (label None: no label file); ``test_only`` ids go to imagesTs; ``extra`` adds
    dataset.json keys."""
    for folder in ('imagesTr', 'labelsTr', 'imagesTs'):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for case_id, (image, label) in cases.items():
        folder = 'imagesTs' if case_id in test_only else 'imagesTr'
        os.symlink(image, root / folder / f'{case_id}.nii.gz')
        if label is not None:
            os.symlink(label, root / 'labelsTr' / f'{case_id}.nii.gz')
    meta = dict(
        name=name,
        protocol=protocol,
        labels={
            str(i): n
            for i, n in enumerate(labels)
        },
        splits=splits or {},
        source='test fixture')
    if folds is not None:
        meta['folds'] = folds
    meta.update(extra or {})
    (root / 'dataset.json').write_text(json.dumps(meta, indent=1))
    return root
