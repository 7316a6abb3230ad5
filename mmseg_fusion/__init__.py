"""mmseg-fusion: fusion and attention blocks for medical image segmentation in mmseg.

Importing this package first applies the fixes that let mmsegmentation 1.2.2 run
on current PyTorch with mmcv or mmcv-lite (:mod:`mmseg_fusion.compat`), then
registers every module of the package into mmseg's registries.
"""
from .compat import apply_compat_fixes

apply_compat_fixes()

# Importing the subpackages registers their modules.
from . import datasets, engine, evaluation, models, structures, utils  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
