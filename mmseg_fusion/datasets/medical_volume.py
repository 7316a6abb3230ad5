"""Volumetric datasets in the converted layout (imagesTr/labelsTr/imagesTs +
dataset.json) written by tools/dataset_converters/{btcv,amos}.py."""
import gzip
import json
import os
import os.path as osp
import re
import struct
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import nibabel as nib
import numpy as np
from mmengine.dataset import BaseDataset
from mmseg.registry import DATASETS

# ITK-SNAP's default label colours (ids 1-15), so predictions written as NIfTI and
# shown by the visualiser use the colours radiologists' tools show.
ITK_SNAP_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
                    (255, 0, 255), (255, 239, 213), (0, 0, 205), (205, 133, 63),
                    (210, 180, 140), (102, 205, 170), (0, 0, 128), (0, 139, 139),
                    (46, 139, 87), (255, 228, 225))

# Other spellings of organ names in public dataset.json files -> our canonical name.
NAME_ALIASES = {
    'arota': 'aorta',  # AMOS's dataset.json spells it so
    'postcava': 'inferiorvenacava',
    'ivc': 'inferiorvenacava',
    'portalveinandsplenicvein': 'portalandsplenicveins',
    'portalandsplenicvein': 'portalandsplenicveins',
    'prostateuterus': 'prostateoruterus',
}

SPLITS = ('train', 'val', 'test', 'unlabelled')


def normalise_class_name(name: str) -> str:
    """Compare organ names across spellings: lower case, letters and digits only,
    'gland' dropped, known aliases (AMOS's 'arota', 'postcava') resolved."""
    key = re.sub(r'[^a-z0-9]', '', str(name).lower())
    key = re.sub(r'glands?$', '', key)
    return NAME_ALIASES.get(key, key)


def palette_for(count: int) -> List[List[int]]:
    """Black background, then the ITK-SNAP colours."""
    colours = [[0, 0, 0]] + [list(c) for c in ITK_SNAP_COLOURS]
    if count > len(colours):
        raise ValueError(f'palette_for has {len(colours)} colours, asked for {count}')
    return colours[:count]


def read_nifti_header(path: str, role: str) -> nib.spatialimages.SpatialImage:
    """Open a NIfTI file's header (voxels are read on demand); a file nibabel cannot
    read is a ValueError naming it."""
    try:
        return nib.load(path)
    except Exception as error:  # nibabel raises many types for a broken header
        raise ValueError(f'cannot read {role} {path} as NIfTI: {type(error).__name__}: '
                         f'{error}') from None


def stored_bytes(path: str) -> int:
    """Bytes of a NIfTI file once decompressed, cheaply: the size of a ``.nii``; for
    a ``.nii.gz`` the size field of the gzip trailer (mod 2**32; that of the last
    member of a multi-member file, or garbage when the file is truncated)."""
    if not path.endswith('.gz'):
        return osp.getsize(path)
    with open(path, 'rb') as file:
        file.seek(-4, os.SEEK_END)
        return struct.unpack('<I', file.read(4))[0]


def decompressed_bytes(path: str, chunk: int = 1 << 22) -> int:
    """Bytes of a ``.nii.gz`` once decompressed, by reading the whole stream; -1 when
    the stream ends early or is damaged."""
    size = 0
    try:
        with gzip.open(path, 'rb') as stream:
            for block in iter(lambda: stream.read(chunk), b''):
                size += len(block)
    except (OSError, EOFError, zlib.error):
        return -1
    return size


def check_label_ids(path: str, volume: nib.spatialimages.SpatialImage,
                    num_classes: int) -> None:
    """Read a label's voxels and check they are integer ids in ``0..num_classes-1``.

    Raises:
        ValueError: naming the file, the offending values and the range expected.
    """
    try:
        data = np.asanyarray(volume.dataobj)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f'cannot read the voxels of label {path}: {error}: expected '
                         'a complete NIfTI file') from None
    if not np.issubdtype(data.dtype, np.integer):
        fractional = data[np.rint(data) != data]
        if fractional.size:
            raise ValueError(f'label {path} holds non-integer values, e.g. '
                             f'{np.unique(fractional)[:5].tolist()}: expected class '
                             'ids')
    if data.size and (data.min() < 0 or data.max() >= num_classes):
        outside = np.unique(data[(data < 0) | (data >= num_classes)])
        raise ValueError(f'label {path} holds ids outside the dataset range: '
                         f'{outside[:10].tolist()} (expected 0..{num_classes - 1} for '
                         f'{num_classes} classes)')


def check_case_files(img_path: str, seg_map_path: Optional[str],
                     num_classes: int) -> None:
    """Check one case when the dataset is built: both files open as NIfTI and hold
    every voxel their header announces (not truncated), the image is 3-D (or 4-D,
    channels last), the label has the image's spatial shape and holds ids in
    ``0..num_classes-1`` (labels are read whole: they are small once compressed;
    images are checked by their gzip trailer). Affines are compared when a case is
    loaded (``LoadVolumeFromFile``).

    Raises:
        ValueError: naming the file, what was found and what was expected.
    """
    image = read_nifti_header(img_path, 'image')
    if len(image.shape) not in (3, 4):
        raise ValueError(f'image {img_path} has shape {image.shape}: expected a 3-D '
                         'volume or a 4-D one (channels last)')
    files = [(img_path, image)]
    if seg_map_path is not None:
        label = read_nifti_header(seg_map_path, 'label')
        shape = tuple(label.shape)
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if shape != tuple(image.shape[:3]):
            raise ValueError(f'label {seg_map_path} has shape {label.shape} but its '
                             f'image {img_path} has the spatial shape '
                             f'{image.shape[:3]}: expected the same grid')
        files.append((seg_map_path, label))
        check_label_ids(seg_map_path, label, num_classes)
    for path, volume in files:
        header = volume.header
        expected = (
            int(getattr(volume.dataobj, 'offset', 0)) +
            int(np.prod(volume.shape)) * header.get_data_dtype().itemsize)
        compressed = path.endswith('.gz')
        size = stored_bytes(path)
        complete = size == expected % 2**32 if compressed else size >= expected
        if not complete and compressed:  # truncated, or a trailer that cannot tell
            size = decompressed_bytes(path)
            complete = size >= expected
        if complete:
            continue
        found = 'a damaged gzip stream' if size < 0 else f'{size} bytes (uncompressed)'
        raise ValueError(f'{path} is truncated: {found} where its '
                         f'header announces {expected} (shape {volume.shape}, '
                         f'{header.get_data_dtype()}): expected a complete NIfTI file')


@DATASETS.register_module()
class MedicalVolumeDataset(BaseDataset):
    """Labelled CT/MR volumes in the converted layout of the 3-D converters::

        {data_root}/imagesTr/{case_id}.nii.gz   image (geometry as downloaded)
        {data_root}/labelsTr/{case_id}.nii.gz   label, same shape and affine
        {data_root}/imagesTs/{case_id}.nii.gz   unlabelled images, when any
        {data_root}/dataset.json                {"name", "protocol", "labels":
                                                 {"0": "background", ...},
                                                 "splits": {"train": [...], "val":
                                                 [...], "test": [...]}, "folds":
                                                 [{"train": [...], "val": [...]}, ...]}

    Each data info holds ``img_path``, ``seg_map_path`` (None for a case without a
    label), ``case_id`` and ``num_classes`` (for ``LoadVolumeFromFile``'s id check).
    A case is looked up in imagesTr, then imagesTs (``.nii.gz``, then ``.nii``); its
    label in labelsTr. 'train' and 'val' cases must have a label; 'test' cases may
    lack one; 'unlabelled' lists dataset.json's ``unlabelled`` cases (imagesTs, e.g.
    BTCV's 20 test CTs), for prediction only.

    Classes: a subclass fixes them in ``METAINFO`` and dataset.json's labels must name
    the same organs in the same order (spellings compared loosely: case, spaces,
    'gland', AMOS's 'arota'); a protocol listed in ``OWN_CLASS_PROTOCOLS`` (BTCV's
    'transunet', 8 organs) instead takes its classes from dataset.json, each of them
    one of ``METAINFO``'s organs, keeping that organ's colour. This class itself has
    no fixed classes: it takes them from dataset.json (any dataset in the layout).

    Args:
        data_root (str): the converted folder.
        split (str): 'train', 'val', 'test' or 'unlabelled'. Default: 'train'.
        fold (int, optional): with a cross-validation protocol (dataset.json has
            ``folds``), take the 'train' or 'val' cases of this fold; 'test' and
            'unlabelled' ignore it. Default: None (the fixed ``splits``).
        metainfo (dict, optional): may override ``palette``; ``classes`` must equal
            the dataset's (labels are not remapped). Default: None.
        check_files (bool): when the dataset is built, check every case
            (:func:`check_case_files`: broken header, truncated file, 2-D image,
            label of another shape, label ids outside the classes), so such a file
            is an error naming it before training starts. Default: True.
        **kwargs: mmengine ``BaseDataset`` arguments (pipeline, test_mode,
            lazy_init, indices, serialize_data, max_refetch).

    Raises:
        FileNotFoundError: data_root, dataset.json, an image or a train/val label is
            missing (the message names the converter that makes the layout).
        ValueError: bad split/fold, labels not contiguous 0..K-1, labels that disagree
            with the class list, an empty split; with ``check_files`` a bad file (see
            above). Affines that disagree are found when the case is loaded
            (``LoadVolumeFromFile``, naming the file).
    """
    METAINFO: dict = dict()
    CONVERTER = 'tools/dataset_converters/btcv.py or amos.py'
    OWN_CLASS_PROTOCOLS: Tuple[str, ...] = ()

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 fold: Optional[int] = None,
                 metainfo: Optional[dict] = None,
                 check_files: bool = True,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        if fold is not None and (isinstance(fold, bool) or not isinstance(fold, int)
                                 or fold < 0):
            raise ValueError(f'fold must be None or an int >= 0, got {fold!r}')
        if isinstance(data_root, os.PathLike):
            data_root = os.fspath(data_root)
        if not isinstance(data_root, str) or not osp.isdir(data_root):
            raise FileNotFoundError(
                f'{type(self).__name__}: data_root {data_root!r} is not a folder; '
                f'make it from the official download with {self.CONVERTER} (see its '
                '--help)')
        json_path = osp.join(data_root, 'dataset.json')
        if not osp.isfile(json_path):
            raise FileNotFoundError(
                f'{type(self).__name__}: {json_path} is missing: {data_root} is not a '
                f'converted folder; make it with {self.CONVERTER} (see its --help)')
        with open(json_path, encoding='utf-8') as fileobj:
            try:
                self.dataset_json = json.load(fileobj)
            except json.JSONDecodeError as error:
                raise ValueError(f'{json_path} is not valid JSON: {error}') from error
        self.json_path = json_path
        self.split = split
        self.fold = fold
        self.check_files = check_files
        self.protocol = self.dataset_json.get('protocol')
        classes, palette = self._classes_and_palette()
        own = dict(classes=classes, palette=palette)
        if metainfo:
            metainfo = dict(metainfo)
            if 'classes' in metainfo and tuple(metainfo['classes']) != classes:
                raise ValueError(
                    f'metainfo classes {tuple(metainfo["classes"])} differ from the '
                    f'classes of {json_path} {classes}: {type(self).__name__} does '
                    'not remap label ids; convert with the protocol you need')
            own.update(metainfo)
            own['classes'] = classes
        super().__init__(data_root=data_root, metainfo=own, **kwargs)

    def _json_labels(self) -> List[str]:
        labels = self.dataset_json.get('labels')
        if not isinstance(labels, dict) or not labels:
            raise ValueError(f'{self.json_path} has no "labels" dict (id -> name)')
        try:
            ids = sorted(int(k) for k in labels)
        except ValueError as error:
            raise ValueError(f'{self.json_path} labels must have integer ids, got '
                             f'{sorted(labels)}') from error
        if ids != list(range(len(ids))):
            raise ValueError(f'{self.json_path} labels must have the ids 0..'
                             f'{len(ids) - 1} (contiguous), got {ids}')
        return [str(labels[str(i)]) for i in ids]

    def _classes_and_palette(self) -> Tuple[Tuple[str, ...], List[List[int]]]:
        """The dataset's classes and palette, checked against ``METAINFO``."""
        names = self._json_labels()
        reference = self.METAINFO.get('classes')
        if reference is None:
            return tuple(names), palette_for(len(names))
        reference_keys = [normalise_class_name(c) for c in reference]
        keys = [normalise_class_name(n) for n in names]
        if self.protocol in self.OWN_CLASS_PROTOCOLS:
            unknown = [n for n, k in zip(names, keys) if k not in reference_keys]
            if unknown or keys[0] != reference_keys[0]:
                raise ValueError(
                    f'{self.json_path} (protocol {self.protocol!r}) has labels '
                    f'{names}: expected background first, then organs of '
                    f'{reference[1:]}; unknown: {unknown}')
            order = [reference_keys.index(k) for k in keys]
            palette = self.METAINFO['palette']
            return tuple(reference[i] for i in order), [list(palette[i]) for i in order]
        if keys != reference_keys:
            other = (f', or use a protocol of {self.OWN_CLASS_PROTOCOLS}'
                     if self.OWN_CLASS_PROTOCOLS else '')
            raise ValueError(
                f'{self.json_path} labels {names} disagree with the '
                f'{type(self).__name__} classes {list(reference)} (protocol '
                f'{self.protocol!r}); convert with {self.CONVERTER}{other}')
        return tuple(reference), [list(c) for c in self.METAINFO['palette']]

    def _case_ids(self) -> List[str]:
        if self.fold is not None and self.split in ('train', 'val'):
            folds = self.dataset_json.get('folds')
            if not folds:
                raise ValueError(f'fold={self.fold} but {self.json_path} (protocol '
                                 f'{self.protocol!r}) has no folds: convert with a '
                                 'cross-validation protocol')
            if self.fold >= len(folds):
                raise ValueError(f'fold must be 0..{len(folds) - 1} for the '
                                 f'{len(folds)} folds of {self.json_path}, got '
                                 f'{self.fold}')
            ids, where = folds[self.fold].get(self.split), f'folds[{self.fold}]'
        elif self.split == 'unlabelled':
            ids, where = self.dataset_json.get('unlabelled'), 'unlabelled'
        else:
            splits = self.dataset_json.get('splits') or {}
            ids, where = splits.get(self.split), 'splits'
        if not ids:
            folds = self.dataset_json.get('folds') or []
            hint = (f'; it has {len(folds)} folds: pass fold=0..{len(folds) - 1}'
                    if folds and self.fold is None and self.split in ('train', 'val')
                    else '')
            raise ValueError(f'{self.json_path} {where} has no {self.split!r} cases '
                             f'(protocol {self.protocol!r}){hint}')
        return [str(i) for i in ids]

    def _find(self, folders: Sequence[str], case_id: str) -> Optional[str]:
        for folder in folders:
            for suffix in ('.nii.gz', '.nii'):
                path = osp.join(self.data_root, folder, case_id + suffix)
                if osp.isfile(path):
                    return path
        return None

    def load_data_list(self) -> List[Dict]:
        """One data info per case of the split (or fold)."""
        num_classes = len(self.metainfo['classes'])
        data_list = []
        for case_id in self._case_ids():
            img_path = self._find(('imagesTr', 'imagesTs'), case_id)
            if img_path is None:
                raise FileNotFoundError(
                    f'case {case_id!r} of the {self.split!r} split has no image: '
                    f'expected {osp.join(self.data_root, "imagesTr", case_id)}.nii.gz '
                    '(or imagesTs/)')
            seg_map_path = None
            if self.split != 'unlabelled':
                seg_map_path = self._find(('labelsTr', ), case_id)
            if seg_map_path is None and self.split in ('train', 'val'):
                raise FileNotFoundError(
                    f'case {case_id!r} of the {self.split!r} split has no label: '
                    f'expected {osp.join(self.data_root, "labelsTr", case_id)}.nii.gz')
            if self.check_files:
                check_case_files(img_path, seg_map_path, num_classes)
            data_list.append(
                dict(
                    img_path=img_path,
                    seg_map_path=seg_map_path,
                    case_id=case_id,
                    num_classes=num_classes))
        return data_list
