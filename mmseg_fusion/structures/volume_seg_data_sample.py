"""The data sample of volumetric segmentation (the 3-D counterpart of mmseg's
``SegDataSample``)."""
from mmengine.structures import BaseDataElement

from .volume_data import VolumeData


class VolumeSegDataSample(BaseDataElement):
    """One volume's ground truth, prediction and geometry, passed between the pipeline,
    the segmentor and the metric.

    Data fields (each a :class:`VolumeData` whose ``data`` is (C, D, H, W)):

    - ``gt_sem_seg``: the label map, (1, D, H, W) integer class ids.
    - ``pred_sem_seg``: the predicted label map, (1, D, H, W) integer class ids.
    - ``seg_logits``: the predicted class scores, (K, D, H, W) (kept only on request:
      a whole CT volume of logits takes gigabytes).

    Metainfo keys set by the 3-D pipeline (``LoadVolumeFromFile``, the MONAI bridge,
    ``PackVolumeInputs``):

    - ``case_id`` (str), ``img_path`` (str), ``seg_map_path`` (str or None);
    - ``affine`` (4x4 float64 array): voxel -> world (mm, RAS as nibabel reads it) of
      the grid of ``inputs`` after every transform; ``spacing`` (3 floats, mm) of that
      grid; ``img_shape`` (D, H, W) of ``inputs``;
    - ``original_affine``, ``original_spacing``, ``original_shape``: the same of the
      image file as it was read;
    - ``transforms`` (list[str]): the spatial transforms the volume went through, in
      order (orientation, resampling, crops, flips), for the record.

    Axis order: D, H, W are the array axes of the NIfTI file (nibabel's i, j, k), never
    transposed, so ``affine`` maps them to world coordinates directly.
    """

    @property
    def gt_sem_seg(self) -> VolumeData:
        return self._gt_sem_seg

    @gt_sem_seg.setter
    def gt_sem_seg(self, value: VolumeData) -> None:
        self.set_field(value, '_gt_sem_seg', dtype=VolumeData)

    @gt_sem_seg.deleter
    def gt_sem_seg(self) -> None:
        del self._gt_sem_seg

    @property
    def pred_sem_seg(self) -> VolumeData:
        return self._pred_sem_seg

    @pred_sem_seg.setter
    def pred_sem_seg(self, value: VolumeData) -> None:
        self.set_field(value, '_pred_sem_seg', dtype=VolumeData)

    @pred_sem_seg.deleter
    def pred_sem_seg(self) -> None:
        del self._pred_sem_seg

    @property
    def seg_logits(self) -> VolumeData:
        return self._seg_logits

    @seg_logits.setter
    def seg_logits(self, value: VolumeData) -> None:
        self.set_field(value, '_seg_logits', dtype=VolumeData)

    @seg_logits.deleter
    def seg_logits(self) -> None:
        del self._seg_logits
