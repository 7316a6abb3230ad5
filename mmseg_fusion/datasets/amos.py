"""AMOS 2022 abdominal multi-organ CT (15 organs) in the converted 3-D layout."""
from mmseg.registry import DATASETS

from mmseg_fusion.utils.abdominal_labels import AMOS_CLASSES
from .medical_volume import ITK_SNAP_COLOURS, MedicalVolumeDataset


@DATASETS.register_module()
class AMOSDataset(MedicalVolumeDataset):
    """AMOS 2022, "AMOS: A Large-Scale Abdominal Multi-Organ Benchmark for Versatile
    Medical Image Segmentation" (NeurIPS 2022): 15 organs, as written by
    ``tools/dataset_converters/amos.py`` (layout in :class:`MedicalVolumeDataset`;
    CT cases only by default, the official validation set as the 'test' split).

    Classes (AMOS ids 0-15, spelt as in ``mmseg_fusion.utils.abdominal_labels``):
    background, spleen, right_kidney, left_kidney, gallbladder, esophagus, liver,
    stomach, aorta, inferior_vena_cava (AMOS: 'postcava'), pancreas,
    right_adrenal_gland, left_adrenal_gland, duodenum, bladder, prostate_uterus.
    dataset.json may keep AMOS's own spellings ('arota', 'postcava', 'gall bladder',
    'prostate/uterus'). Palette: ITK-SNAP's default label colours.

    Args:
        data_root (str): the converted folder.
        split (str): 'train', 'val', 'test' or 'unlabelled'. Default: 'train'.
        fold (int, optional): cross-validation fold. Default: None.
        **kwargs: see :class:`MedicalVolumeDataset`.
    """
    METAINFO = dict(
        classes=AMOS_CLASSES, palette=[[0, 0, 0]] + [list(c) for c in ITK_SNAP_COLOURS])
    CONVERTER = 'tools/dataset_converters/amos.py'
