"""The output-folder rule of the converters and generators: never overwrite silently."""
import os
import os.path as osp
import shutil
from typing import Sequence


def prepare_output_folder(out_dir: str, force: bool, entries: Sequence[str]) -> None:
    """Create ``out_dir`` for a tool that writes ``entries`` (files or folders) in it.

    A non-empty ``out_dir`` is refused unless ``force``; with ``force`` only the
    ``entries`` are removed first (so nothing of an earlier run is left behind) and
    anything else in the folder is kept.

    Raises:
        FileExistsError: ``out_dir`` is not empty and ``force`` is False; the message
            names the folder, the flag and what it would replace.
    """
    if osp.isdir(out_dir) and os.listdir(out_dir):
        if not force:
            raise FileExistsError(
                f'output folder {out_dir} is not empty; pass --force to replace its '
                f'{", ".join(entries)}')
        for entry in entries:
            path = osp.join(out_dir, entry)
            if osp.isdir(path):
                shutil.rmtree(path)
            elif osp.exists(path):
                os.remove(path)
    os.makedirs(out_dir, exist_ok=True)
