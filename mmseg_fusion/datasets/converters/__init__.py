"""Shared logic of the dataset converters in ``tools/dataset_converters``.

- :mod:`.polyp`: the polyp converters (Kvasir-SEG, CVC-ClinicDB, PraNet) writing
  mmseg's 2-D layout read by ``PolypDataset``.
- :mod:`.volume`: the volumetric (NIfTI) converters (BTCV, AMOS) writing the layout
  read by ``BTCVDataset`` and ``AMOSDataset``; needs nibabel (``[optional]``).
- :mod:`.staging`: every converter writes into a temporary folder beside its output
  folder and moves the result in only when it succeeded.

The converter scripts import these modules from the package (never each other by
file name), so they run from any folder and import in tests as plain modules. Nothing
here is imported by ``mmseg_fusion.datasets`` itself: nibabel stays optional.
"""
