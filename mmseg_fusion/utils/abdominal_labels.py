"""Organ label sets and case splits of the public abdominal CT benchmarks.

One place for the facts the converters (``tools/dataset_converters/synapse.py``,
``btcv.py``, ``amos.py``) and the datasets share:

- BTCV (Landman et al., MICCAI 2015 challenge "Multi-Atlas Labeling Beyond the Cranial
  Vault"): 13 organs, labelled cases 0001-0010 and 0021-0040, unlabelled test cases
  0061-0080.
- Synapse, the 8-organ subset of BTCV used by TransUNet (Chen et al., 2021) and its
  followers, in the class order of mmseg's ``SynapseDataset``.
- AMOS 2022 (Ji et al., NeurIPS 2022 Datasets and Benchmarks): 15 organs, CT case ids
  up to 500, MRI 501-600.

Class names use mmseg's spelling (lower case, underscores).
"""
from typing import Dict, Mapping, Optional

import numpy as np

BTCV_CLASSES = ('background', 'spleen', 'right_kidney', 'left_kidney', 'gallbladder',
                'esophagus', 'liver', 'stomach', 'aorta', 'inferior_vena_cava',
                'portal_and_splenic_vein', 'pancreas', 'right_adrenal_gland',
                'left_adrenal_gland')
NUM_BTCV_ORGANS = len(BTCV_CLASSES) - 1

# The order of mmseg.datasets.SynapseDataset.METAINFO['classes'].
SYNAPSE_CLASSES = ('background', 'aorta', 'gallbladder', 'left_kidney', 'right_kidney',
                   'liver', 'pancreas', 'spleen', 'stomach')

# BTCV organ id -> Synapse class id; the five organs Synapse drops go to background.
BTCV_TO_SYNAPSE: Dict[int, int] = {
    btcv_id: SYNAPSE_CLASSES.index(name) if name in SYNAPSE_CLASSES else 0
    for btcv_id, name in enumerate(BTCV_CLASSES) if btcv_id > 0
}

# AMOS 2022 dataset.json labels 1-15 (its "arota" spelt aorta, "postcava" named as in
# BTCV, "prostate/uterus" with an underscore).
AMOS_CLASSES = ('background', 'spleen', 'right_kidney', 'left_kidney', 'gallbladder',
                'esophagus', 'liver', 'stomach', 'aorta', 'inferior_vena_cava',
                'pancreas', 'right_adrenal_gland', 'left_adrenal_gland', 'duodenum',
                'bladder', 'prostate_uterus')
AMOS_MAX_CT_ID = 500

BTCV_LABELLED_CASES = tuple(range(1, 11)) + tuple(range(21, 41))
BTCV_UNLABELLED_CASES = tuple(range(61, 81))

# MONAI research-contributions SwinUNETR/BTCV (dataset_0.json): 24 train, 6 validation.
SWINUNETR_TRAIN_CASES = tuple(range(1, 11)) + tuple(range(21, 35))
SWINUNETR_VAL_CASES = tuple(range(35, 41))

# Beckschen/TransUNet lists/lists_Synapse: the cases of train.txt and test_vol.txt.
TRANSUNET_TRAIN_CASES = (5, 6, 7, 9, 10, 21, 23, 24, 26, 27, 28, 30, 31, 33, 34, 37, 39,
                         40)
TRANSUNET_TEST_CASES = (1, 2, 3, 4, 8, 22, 25, 29, 32, 35, 36, 38)


def parse_label_map(text: str,
                    max_id: int = NUM_BTCV_ORGANS,
                    target: str = 'BTCV') -> Dict[int, int]:
    """Parse ``RAW:ID,RAW:ID,...`` into {raw label id: target id (0..max_id)}.

    Args:
        text (str): comma-separated pairs, e.g. ``'15:5,52:8'``.
        max_id (int): the largest target id allowed. Default: 13 (BTCV organs).
        target (str): the target label set's name, for messages. Default: 'BTCV'.

    Raises:
        ValueError: an entry is not two integers, a raw id is negative or mapped
            twice, or a target id is outside 0..max_id; the message names the entry.
    """
    label_map: Dict[int, int] = {}
    for entry in text.split(','):
        parts = entry.strip().split(':')
        try:
            raw, dst = (int(part) for part in parts)
        except ValueError:
            raise ValueError(f'label map entry {entry!r} is not RAW:{target} with two '
                             'integers, e.g. 15:5') from None
        if raw < 0:
            raise ValueError(f'label map entry {entry!r}: raw id must be >= 0')
        if not 0 <= dst <= max_id:
            raise ValueError(f'label map entry {entry!r}: {target} id must be in '
                             f'0..{max_id}')
        if raw in label_map:
            raise ValueError(f'label map entry {entry!r}: raw id {raw} is mapped twice')
        label_map[raw] = dst
    return label_map


def lookup_table(label_map: Mapping[int, int],
                 max_raw_id: int,
                 then: Optional[Mapping[int, int]] = None) -> np.ndarray:
    """A uint8 table taking each raw id 0..max_raw_id (and every mapped id) to its
    new id.

    Raw ids absent from ``label_map`` become 0 (background). With ``then``, each mapped
    id is mapped once more (ids absent from ``then`` become 0), e.g.
    ``lookup_table(raw_to_btcv, n, BTCV_TO_SYNAPSE)`` goes from raw ids to Synapse.

    Args:
        label_map (Mapping[int, int]): raw id -> id, ids >= 0.
        max_raw_id (int): the largest raw id the table must cover.
        then (Mapping[int, int], optional): a second map applied after the first.
    """
    table = np.zeros(max([max_raw_id, *label_map]) + 1, dtype=np.uint8)
    for raw, dst in label_map.items():
        table[raw] = then.get(dst, 0) if then is not None else dst
    return table
