"""Binary polyp segmentation dataset in the layout of the polyp converters."""
from typing import List, Optional

import mmengine.fileio as fileio
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .slice_checks import check_data_list


@DATASETS.register_module()
class PolypDataset(BaseSegDataset):
    """Binary polyp segmentation dataset (background, polyp) of colonoscopy frames.

    Serves Kvasir-SEG ("Kvasir-SEG: A Segmented Polyp Dataset", 2020), CVC-ClinicDB
    ("WM-DOVA maps for accurate polyp highlighting in colonoscopy", 2015) and the test
    sets of the PraNet benchmark ("PraNet: Parallel Reverse Attention Network for
    Polyp Segmentation", 2020) as written by ``tools/dataset_converters``::

        {data_root}/img_dir/{split}/{name}.png    RGB image
        {data_root}/ann_dir/{split}/{name}.png    mask, values exactly {0, 1}

    Images and masks pair by name. Unlike ``BaseSegDataset``, a missing mask is an error
    when the dataset is built, not when the sample is first loaded.

    Args:
        img_suffix (str): image file suffix. Default: '.png'.
        seg_map_suffix (str): mask file suffix. Default: '.png'.
        reduce_zero_label (bool): must stay False: 0 is background, a real class.
        subset (str, optional): name of the data source (e.g. 'Kvasir'); when given,
            every data info carries ``subset=<name>`` for per-subset metrics (add
            'subset' to the ``meta_keys`` of ``PackSegInputs``). Default: None.
        check_files (bool): when the dataset is built, open every image and decode
            every mask (:func:`~.slice_checks.check_slice_pair`), so an unreadable
            or truncated file, a mask of another size than its image, a colour mask
            or mask values other than 0 and 1 are an error naming the file before
            training starts (with ``BinarizeSegMap`` in the pipeline masks may hold
            any 8-bit values). Default: True.
        **kwargs: the arguments of ``BaseSegDataset`` (data_root, data_prefix,
            ann_file, pipeline, ...).

    Shape:
        image: (H, W, 3) uint8; mask: (H, W) uint8 with values in {0, 1}.

    Raises:
        FileNotFoundError: the image folder is missing or holds no image with
            ``img_suffix``, an image listed in ``ann_file`` is missing, or an image has
            no mask; the message names the folder or both files.
        ValueError: with ``check_files``, a bad image or mask (see above).
    """
    METAINFO = dict(classes=('background', 'polyp'), palette=[[0, 0, 0], [255, 64, 64]])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 subset: Optional[str] = None,
                 check_files: bool = True,
                 **kwargs) -> None:
        if reduce_zero_label:
            raise ValueError(
                f'reduce_zero_label must be False for PolypDataset (0 is background), '
                f'got {reduce_zero_label!r}')
        if subset is not None and (not isinstance(subset, str) or not subset):
            raise ValueError(f'subset must be None or a non-empty str, got {subset!r}')
        self.subset = subset
        self.check_files = check_files
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Pair images and masks by name; check that every file exists."""
        img_dir = self.data_prefix.get('img_path', '')
        from_folder = not self.ann_file or fileio.isdir(
            self.ann_file, backend_args=self.backend_args)
        if from_folder and not fileio.isdir(img_dir, backend_args=self.backend_args):
            raise FileNotFoundError(f'image folder {img_dir} does not exist')
        data_list = super().load_data_list()
        if not data_list:
            raise FileNotFoundError(
                f'image folder {img_dir} holds no image ending in {self.img_suffix!r}')
        for info in data_list:
            if not from_folder and not fileio.isfile(
                    info['img_path'], backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'image {info["img_path"]} listed in {self.ann_file} is missing')
            mask = info.get('seg_map_path')
            if mask is not None and not fileio.isfile(
                    mask, backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'image {info["img_path"]} has no mask: expected {mask}')
            if self.subset is not None:
                info['subset'] = self.subset
        if self.check_files:
            check_data_list(data_list, len(self.metainfo['classes']), self.pipeline,
                            self.backend_args)
        return data_list
