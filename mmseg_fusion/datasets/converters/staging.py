"""Write a converter's output into a temporary folder and move it in only when done.

A converter that fails half-way (an unreadable file, a label id out of range, a
kill) must not leave half-written output behind, nor remove what the output folder
held before. :func:`staged_output` gives the converter a temporary folder beside the
output folder (same file system, so the final moves are renames); the entries are
moved into the output folder only after the converter's block finished, and the
temporary folder is removed whatever happens.
"""
import os
import os.path as osp
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator, Sequence

from mmseg_fusion.utils import prepare_output_folder

STAGING_SUFFIX = '.partial'


def output_is_taken(out_dir: str, force: bool, entries: Sequence[str]) -> None:
    """Refuse a non-empty ``out_dir`` without ``force`` (call it before reading the
    input, so a taken folder is reported at once).

    Raises:
        FileExistsError: naming the folder, ``--force`` and the entries it replaces.
    """
    if osp.isdir(out_dir) and os.listdir(out_dir) and not force:
        prepare_output_folder(out_dir, force, entries)  # raises FileExistsError


@contextmanager
def staged_output(out_dir: str, force: bool, entries: Sequence[str]) -> Iterator[str]:
    """Yield a temporary folder beside ``out_dir`` to write ``entries`` into.

    When the block ends normally, the ``entries`` of ``out_dir`` are replaced by
    those the block wrote (``--force`` semantics of :func:`prepare_output_folder`:
    other files of ``out_dir`` are kept). When it raises (or is interrupted), the
    temporary folder is removed and ``out_dir`` is left exactly as it was. The
    temporary folder is named ``.{basename(out_dir)}.XXXX.partial``.

    Raises:
        FileExistsError: ``out_dir`` is not empty and ``force`` is False (before the
            block runs).
    """
    output_is_taken(out_dir, force, entries)
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(
        prefix=f'.{osp.basename(osp.abspath(out_dir))}.',
        suffix=STAGING_SUFFIX,
        dir=parent)
    try:
        yield staging
        prepare_output_folder(out_dir, force, entries)
        for entry in entries:
            if osp.exists(osp.join(staging, entry)):
                os.replace(osp.join(staging, entry), osp.join(out_dir, entry))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
