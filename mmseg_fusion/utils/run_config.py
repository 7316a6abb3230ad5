"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import glob
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..compat import configure_cpu_distributed


def load_run_config(config: str,
                    work_dir: Optional[str] = None,
                    cfg_options: Optional[dict] = None,
                    launcher: str = 'none') -> Config:
    """Load a config as mmseg's tools do, ready for ``Runner.from_cfg``.

    The work dir is, by priority: ``work_dir``, the config's own ``work_dir``,
    ``./work_dirs/{config name}``. Without CUDA, a distributed launcher gets gloo
    (:func:`mmseg_fusion.compat.configure_cpu_distributed`).

    Args:
        config (str): path of the config file.
        work_dir (str, optional): the ``--work-dir`` flag.
        cfg_options (dict, optional): the ``--cfg-options`` overrides.
        launcher (str): the ``--launcher`` flag.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    configure_cpu_distributed(cfg, launcher)
    return cfg


def refuse_to_overwrite_checkpoints(work_dir: str) -> None:
    """Raise if ``work_dir`` already holds checkpoints that a fresh run would overwrite.

    Training from scratch into a work dir with ``iter_*.pth`` / ``epoch_*.pth`` files
    would replace them; the user must pass ``--resume`` or choose another work dir.
    """
    existing = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    if existing:
        raise FileExistsError(
            f'work dir {work_dir!r} already holds checkpoints ({len(existing)}, e.g. '
            f'{osp.basename(existing[-1])}) that a new run would overwrite: pass '
            '--resume to continue that run, or --work-dir to start a new one')
