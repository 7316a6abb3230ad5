"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import difflib
import glob
import inspect
import logging
import os
import os.path as osp
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

from ..compat import configure_cpu_distributed
from .cli import ConfigError, DataNotFoundError, OutputExistsError, PathNotFoundError

# Top-level keys that mmengine's Runner (and mmseg's tools) read even when a config
# leaves them out, so ``--cfg-options`` may set them.
RUNNER_KEYS = frozenset({
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader',
    'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper',
    'param_scheduler', 'val_evaluator', 'test_evaluator', 'default_hooks',
    'custom_hooks', 'data_preprocessor', 'load_from', 'resume', 'launcher', 'env_cfg',
    'log_processor', 'log_level', 'visualizer', 'default_scope', 'randomness',
    'experiment_name', 'model_wrapper_cfg', 'compile', 'runner_type', 'custom_imports',
    'tta_model', 'tta_pipeline', 'find_unused_parameters', 'activation_checkpointing',
    'efficient_conv_bn_eval', 'sync_bn'
})

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

# The folder name of each dataset's default data_root -> the tool that makes it.
DATA_MAKERS = {
    'kvasir_seg':
    'tools/dataset_converters/kvasir_seg.py',
    'cvc_clinicdb':
    'tools/dataset_converters/cvc_clinicdb.py',
    'pranet_polyp':
    'tools/dataset_converters/pranet_polyp.py',
    'synapse':
    'tools/dataset_converters/synapse.py',
    'btcv':
    'tools/dataset_converters/btcv.py',
    'amos':
    'tools/dataset_converters/amos.py',
    'synthetic_polyp':
    'tools/misc/generate_synthetic_polyps.py',
    'synthetic_ct_btcv': ('tools/misc/generate_synthetic_ct.py, then '
                          'tools/dataset_converters/btcv.py --protocol holdout (or '
                          'tools/misc/run_demo.py --volumetric)'),
}


def load_run_config(config: str,
                    work_dir: Optional[str] = None,
                    cfg_options: Optional[dict] = None,
                    launcher: str = 'none') -> Config:
    """Load a config as mmseg's tools do, ready for ``Runner.from_cfg``.

    Beyond mmseg's tools:

    - ``cfg_options`` may only set keys whose first part is a key of the config or
      one the Runner reads (:data:`RUNNER_KEYS`); a misspelt key is refused with the
      close matches, instead of being added and ignored.
    - Overriding the top-level ``data_root`` moves everything that pointed into the
      config's data_root (every dataset's ``data_root``, which the config copied when
      it was parsed, and any other path inside it, e.g. a metric's output file) to the
      new folder; keys that ``cfg_options`` sets explicitly are kept as given.
    - Every dataloader's ``num_workers`` is lowered to the number of CPUs this
      process may use (PyTorch warns, and may stall, with more workers than CPUs).

    The work dir is, by priority: ``work_dir``, the config's own ``work_dir``,
    ``./work_dirs/{config name}``. Without CUDA, a distributed launcher gets gloo,
    a DDP wrapper without devices and the CPU runner, all through mmengine's
    settings (:func:`mmseg_fusion.compat.configure_cpu_distributed`).

    Args:
        config (str): path of the config file.
        work_dir (str, optional): the ``--work-dir`` flag.
        cfg_options (dict, optional): the ``--cfg-options`` overrides.
        launcher (str): the ``--launcher`` flag.

    Raises:
        PathNotFoundError: ``config`` does not exist.
        ConfigError: ``cfg_options`` sets an unknown top-level key.
    """
    if not osp.isfile(config):
        raise PathNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        check_option_keys(cfg, cfg_options)
        old_root = cfg.get('data_root')
        cfg.merge_from_dict(cfg_options)
        new_root = cfg_options.get('data_root')
        if isinstance(old_root, str) and isinstance(new_root, str) and old_root:
            move_data_root(cfg, old_root, new_root, keep=cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    fit_workers_to_cpus(cfg)
    configure_cpu_distributed(cfg, launcher)
    return cfg


def check_option_keys(cfg: Config, cfg_options: dict) -> None:
    """Refuse a ``--cfg-options`` key whose first part the config does not have and
    the Runner does not read; the message lists the close matches."""
    known = set(cfg.keys()) | RUNNER_KEYS
    for key in cfg_options:
        top = key.split('.')[0]
        if top in known:
            continue
        close = difflib.get_close_matches(top, sorted(known), n=3, cutoff=0.6)
        hint = (f'did you mean {" or ".join(close)}?' if close else
                'top-level keys of this config: ' + ', '.join(sorted(cfg.keys())))
        raise ConfigError(f'--cfg-options {key}: {top!r} is not a key of this config '
                          f'(nor one the runner reads); {hint}')


def move_data_root(cfg: Config,
                   old_root: str,
                   new_root: str,
                   keep: Optional[dict] = None) -> None:
    """Replace, in place, every string of ``cfg`` that is ``old_root`` or a path
    inside it (``old_root/...``) by the same path under ``new_root``; the dotted keys
    in ``keep`` (set explicitly by the user) are left as they are."""
    keep = set(keep or ())
    old = old_root.rstrip('/')

    def moved(value: str) -> str:
        if value == old or value == old + '/':
            return new_root
        if value.startswith(old + '/'):
            return osp.join(new_root, value[len(old) + 1:])
        return value

    def walk(node: Any, path: str) -> Any:
        if path in keep:
            return node
        if isinstance(node, dict):
            for key in list(node):
                node[key] = walk(node[key], f'{path}.{key}' if path else str(key))
            return node
        if isinstance(node, (list, tuple)):
            items = [walk(item, f'{path}.{i}') for i, item in enumerate(node)]
            return type(node)(items) if isinstance(node, tuple) else items
        return moved(node) if isinstance(node, str) else node

    for key in list(cfg.keys()):
        if key != 'data_root':
            cfg[key] = walk(cfg[key], key)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, 'sched_getaffinity'):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def fit_workers_to_cpus(cfg: Config) -> None:
    """Lower every dataloader's ``num_workers`` to :func:`usable_cpus`, in place."""
    cpus = usable_cpus()
    for name in DATALOADERS:
        loader = cfg.get(name)
        if isinstance(loader, dict) and isinstance(loader.get('num_workers'), int) \
                and loader['num_workers'] > cpus:
            loader['num_workers'] = cpus


def iter_datasets(dataset: Any) -> Iterator[dict]:
    """The leaf dataset configs of a dataset config: through ``ConcatDataset``'s
    ``datasets`` and the ``dataset`` of wrappers such as ``RepeatDataset``."""
    if not isinstance(dataset, dict):
        return
    if isinstance(dataset.get('datasets'), (list, tuple)):
        for child in dataset['datasets']:
            yield from iter_datasets(child)
    elif isinstance(dataset.get('dataset'), dict):
        yield from iter_datasets(dataset['dataset'])
    else:
        yield dataset


def check_data_folders(cfg: Config, loaders: Sequence[str]) -> None:
    """Raise :class:`DataNotFoundError` when a dataset of the given dataloaders points
    at a folder that does not exist (its ``data_root``, or its image folder inside
    it); the message names the key, the folder and the tool that makes the data."""
    for name in loaders:
        loader = cfg.get(name)
        if not isinstance(loader, dict):
            continue
        for dataset in iter_datasets(loader.get('dataset')):
            root = dataset.get('data_root')
            if not isinstance(root, str) or '://' in root:
                continue
            missing, what = None, 'data folder'
            if root and not osp.isdir(root):
                missing = root
            else:
                prefix = (dataset.get('data_prefix') or {}).get('img_path')
                if isinstance(prefix, str) and prefix and '://' not in prefix:
                    folder = osp.join(root, prefix)
                    if not osp.exists(folder):
                        missing, what = folder, 'image folder'
            if missing is not None:
                raise DataNotFoundError(f'{what} {missing} ({name}) does not exist: '
                                        f'{data_hint(root, cfg.get("data_root"))}')


def data_hint(*roots: Optional[str]) -> str:
    """How to make the data of a data_root, or how to point the config elsewhere."""
    for root in roots:
        if isinstance(root, str) and root:
            maker = DATA_MAKERS.get(osp.basename(osp.normpath(root)))
            if maker:
                return (f'make it with {maker} (see its --help), or point the config '
                        'at your copy with --cfg-options data_root=PATH')
    return ('make it with the converter named at the top of the config\'s dataset '
            'file (configs/_base_/datasets/), or point the config at your copy with '
            '--cfg-options data_root=PATH')


def find_pretrained(model_cfg: Any, path: str = 'model') -> List[Tuple[str, str]]:
    """(dotted key, checkpoint) of every pretrained weight file a model config names:
    ``pretrained`` strings and ``init_cfg`` of type 'Pretrained'."""
    found = []
    if isinstance(model_cfg, dict):
        for key, value in model_cfg.items():
            here = f'{path}.{key}'
            if key == 'pretrained' and isinstance(value, str):
                found.append((here, value))
            elif key == 'init_cfg' and isinstance(value, dict) and \
                    value.get('type') == 'Pretrained':
                found.append((here, str(value.get('checkpoint'))))
            else:
                found += find_pretrained(value, here)
    elif isinstance(model_cfg, (list, tuple)):
        for i, value in enumerate(model_cfg):
            found += find_pretrained(value, f'{path}.{i}')
    return found


def is_remote(checkpoint: str) -> bool:
    """Whether mmengine downloads ``checkpoint`` (a URL or an ``open-mmlab://``-style
    name) rather than reading a local file."""
    return '://' in checkpoint and not checkpoint.startswith('file://')


def refuse_to_overwrite_checkpoints(work_dir: str) -> None:
    """Raise if ``work_dir`` already holds checkpoints that a fresh run would overwrite.

    Training from scratch into a work dir with ``iter_*.pth`` / ``epoch_*.pth`` files
    would replace them; the user must pass ``--resume`` or choose another work dir.

    Raises:
        OutputExistsError: (a ``FileExistsError``) the work dir holds ``*.pth`` files.
    """
    existing = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    if existing:
        raise OutputExistsError(
            f'work dir {work_dir!r} already holds checkpoints ({len(existing)}, e.g. '
            f'{osp.basename(existing[-1])}) that a new run would overwrite: pass '
            '--resume to continue that run, or --work-dir to start a new one')


class ParamwiseOptionsFilter(logging.Filter):
    """Drops the ``paramwise_options -- <param>:<key>=<value>`` records that mmengine's
    ``DefaultOptimWrapperConstructor`` logs at INFO, one per parameter, when
    ``paramwise_cfg`` is set, unless the logger shows DEBUG records
    (``log_level='DEBUG'``: an MMLogger sets the level on its handlers)."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger = logger

    def shows_debug(self) -> bool:
        if not self.logger.isEnabledFor(logging.DEBUG):
            return False
        handlers = self.logger.handlers
        return not handlers or any(h.level <= logging.DEBUG for h in handlers)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.shows_debug():
            return True
        message = record.msg if isinstance(record.msg, str) else ''
        return not message.startswith('paramwise_options -- ')


def quiet_paramwise_options(logger: logging.Logger) -> None:
    """Install :class:`ParamwiseOptionsFilter` on ``logger`` (a runner's logger)."""
    if not any(isinstance(f, ParamwiseOptionsFilter) for f in logger.filters):
        logger.addFilter(ParamwiseOptionsFilter(logger))


def metric_types(evaluator: Any) -> List[dict]:
    """The metric configs of an evaluator config: a dict, a list of them, or an
    ``Evaluator`` dict with ``metrics``."""
    if isinstance(evaluator, (list, tuple)):
        return [m for m in evaluator if isinstance(m, dict)]
    if isinstance(evaluator, dict):
        if 'metrics' in evaluator:
            return metric_types(evaluator['metrics'])
        return [evaluator]
    return []


def accepted_arguments(metric_cfg: dict) -> Tuple[set, bool]:
    """(named constructor arguments, whether it takes ``**kwargs``) of the metric class
    a metric config builds (looked up in mmseg's METRICS registry)."""
    from mmseg.registry import METRICS
    metric_type = metric_cfg.get('type')
    cls = metric_type if inspect.isclass(metric_type) else METRICS.get(metric_type)
    if cls is None:
        raise ConfigError(f'metric type {metric_type!r} is not registered in mmseg')
    parameters = inspect.signature(cls.__init__).parameters
    named = {
        name
        for name, p in parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    return named, takes_kwargs


def set_output_dir(cfg: Config, out: str) -> List[str]:
    """Set ``output_dir=out`` on every test metric that takes it (and
    ``keep_results=True`` where the metric names that argument, as mmseg's
    tools/test.py does); return the metric types set.

    Raises:
        ConfigError: no test metric takes ``output_dir``.
    """
    evaluator = cfg.get('test_evaluator')
    done = []
    for metric in metric_types(evaluator):
        named, takes_kwargs = accepted_arguments(metric)
        if 'output_dir' not in named and not takes_kwargs:
            continue
        metric['output_dir'] = out
        if 'keep_results' in named:
            metric['keep_results'] = True
        done.append(str(metric.get('type')))
    if not done:
        types = [str(m.get('type')) for m in metric_types(evaluator)]
        raise ConfigError(f'--out needs a test metric that writes predictions '
                          f'(output_dir), but {types or "the test_evaluator"} takes '
                          'none')
    return done


def set_tta(cfg: Config) -> None:
    """Switch a test config to test-time augmentation: every test dataset gets
    ``tta_pipeline`` (through ``ConcatDataset`` and dataset wrappers, which mmseg's
    tools/test.py does not reach), and ``tta_model`` wraps the model.

    Raises:
        ConfigError: the config has no ``tta_pipeline`` or no ``tta_model``.
    """
    missing = [k for k in ('tta_pipeline', 'tta_model') if not cfg.get(k)]
    if missing:
        raise ConfigError(
            f'--tta: this config has no {" and no ".join(missing)}; add them (e.g. '
            "tta_model = dict(type='SegTTAModel') and a TestTimeAug tta_pipeline as in "
            'configs/_base_/datasets/kvasir_seg.py) or test without --tta')
    for dataset in iter_datasets(cfg.test_dataloader.get('dataset')):
        dataset['pipeline'] = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model
