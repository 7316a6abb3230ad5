"""BTCV abdominal multi-organ CT (13 organs) in the converted 3-D layout."""
from mmseg.registry import DATASETS

from mmseg_fusion.utils.abdominal_labels import BTCV_CLASSES
from .medical_volume import ITK_SNAP_COLOURS, MedicalVolumeDataset


@DATASETS.register_module()
class BTCVDataset(MedicalVolumeDataset):
    """BTCV, "Multi-Atlas Labeling Beyond the Cranial Vault" (MICCAI 2015): 30
    labelled abdominal CT volumes with 13 organs, as written by
    ``tools/dataset_converters/btcv.py`` (layout in :class:`MedicalVolumeDataset`).

    Protocols (``--protocol`` of the converter, stored in dataset.json): 'swinunetr'
    (24 train / 6 val, as UNETR and SwinUNETR), 'transunet' (18 train / 12 test, 8
    organs), 'cv5' (five folds over all labelled cases: ``split='train'|'val'`` with
    ``fold=i``), 'holdout' and 'all'. Under 'transunet' the classes come from
    dataset.json (background, then 8 of the organs below in the file's order, mmseg's
    Synapse order) and keep the colours of their BTCV ids, so ``num_classes`` is 9.

    Classes (BTCV ids 0-13, spelt as in ``mmseg_fusion.utils.abdominal_labels``):
    background, spleen, right_kidney, left_kidney, gallbladder, esophagus, liver,
    stomach, aorta, inferior_vena_cava, portal_and_splenic_vein, pancreas,
    right_adrenal_gland, left_adrenal_gland. Palette: ITK-SNAP's default label
    colours.

    Args:
        data_root (str): the converted folder.
        split (str): 'train', 'val', 'test' or 'unlabelled'. Default: 'train'.
        fold (int, optional): cross-validation fold. Default: None.
        **kwargs: see :class:`MedicalVolumeDataset`.
    """
    METAINFO = dict(
        classes=BTCV_CLASSES,
        palette=[[0, 0, 0]] + [list(c) for c in ITK_SNAP_COLOURS[:13]])
    CONVERTER = 'tools/dataset_converters/btcv.py'
    OWN_CLASS_PROTOCOLS = ('transunet', )
