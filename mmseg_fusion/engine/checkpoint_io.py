"""Checkpoints that a kill cannot lose, and resume checkpoints checked before use.

:func:`make_checkpoint_saving_atomic` (applied when :mod:`mmseg_fusion` is imported)
changes how mmengine 0.10 writes checkpoints on a local disk, and nothing else:

* ``LocalBackend.put`` / ``put_text`` (what ``Runner.save_checkpoint`` and
  ``mmengine.dump`` write local files with) write a temporary file in the same
  folder, flush and fsync it, and rename it into place with :func:`os.replace`. A kill
  during the write leaves the previous file (or none) under the name, never a
  truncated one; the temporary file is named ``.{name}.tmp-{pid}``.
* ``CheckpointHook`` writes ``last_checkpoint`` the same way, and removes outdated
  checkpoints (``max_keep_ckpts``) and the previous best checkpoint (``save_best``)
  only after the new checkpoint and ``last_checkpoint`` are in place (mmengine
  removes them first, so a kill during the save could leave ``last_checkpoint``
  naming a deleted file).

:func:`find_resume_checkpoint` and :func:`check_resume_checkpoint` let
``tools/train.py --resume`` refuse, with one line naming the file, a
``last_checkpoint`` that names a missing file, a truncated file, a file that is not a
PyTorch checkpoint, one that is not an mmengine training checkpoint, and (through
:meth:`ResumeCheckpoint.check_model`) a checkpoint of another model.
"""
import builtins
import functools
import glob
import os
import os.path as osp
import re
import zipfile
from typing import Dict, List, Optional, Tuple

from ..utils.cli import CheckpointMismatchError, PathNotFoundError

__all__ = [
    'write_atomically', 'atomic_open', 'make_checkpoint_saving_atomic',
    'remove_stale_temporary_files', 'find_resume_checkpoint', 'check_resume_checkpoint',
    'ResumeCheckpoint'
]

TEMPORARY_PATTERN = re.compile(r'^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$')


def temporary_name(path: str) -> str:
    """The temporary file a write of ``path`` goes through: same folder, hidden, not
    ending in ``.pth`` (so no glob for checkpoints picks it up)."""
    folder, name = osp.split(osp.abspath(path))
    return osp.join(folder, f'.{name}.tmp-{os.getpid()}')


def _publish(handle, temporary: str, path: str) -> None:
    """Flush, fsync and close ``handle`` (open on ``temporary``), then rename the
    temporary file to ``path``."""
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(temporary, path)


def _discard(temporary: str) -> None:
    try:
        os.remove(temporary)
    except OSError:
        pass


def write_atomically(path, data, mode: str = 'wb', **open_kwargs) -> None:
    """Write ``data`` (bytes for 'wb', str for 'w') to ``path`` through a temporary
    file in the same folder renamed into place: readers see the old file or the new
    one, never a part of it."""
    path = os.fspath(path)
    temporary = temporary_name(path)
    handle = open(temporary, mode, **open_kwargs)
    try:
        handle.write(data)
        _publish(handle, temporary, path)
    except BaseException:
        handle.close()
        _discard(temporary)
        raise


class _AtomicFile:
    """A file open for writing whose content replaces ``path`` when it is closed
    without error (see :func:`atomic_open`)."""

    def __init__(self, path, mode: str, *args, **kwargs):
        self._path = os.fspath(path)
        self._temporary = temporary_name(self._path)
        self._handle = open(self._temporary, mode, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        else:
            self._handle.close()
            _discard(self._temporary)

    def close(self) -> None:
        if not self._handle.closed:
            _publish(self._handle, self._temporary, self._path)


def atomic_open(file, mode: str = 'r', *args, **kwargs):
    """``open`` whose plain write modes ('w', 'wb', 'wt') write through a temporary
    file renamed into place on close; every other use is ``builtins.open``."""
    if isinstance(file, (str, os.PathLike)) and mode in ('w', 'wb', 'wt'):
        return _AtomicFile(file, mode, *args, **kwargs)
    return builtins.open(file, mode, *args, **kwargs)


def remove_stale_temporary_files(folder: str) -> List[str]:
    """Remove the temporary files of atomic writes in ``folder`` whose writing process
    is gone (a run killed while saving); return their paths."""
    removed = []
    for path in glob.glob(osp.join(glob.escape(folder), '.*.tmp-*')):
        match = TEMPORARY_PATTERN.match(osp.basename(path))
        if match is None or _process_alive(int(match['pid'])):
            continue
        _discard(path)
        removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _DeferredRemovals:
    """Stands in for a CheckpointHook's ``file_backend`` while it saves: records
    ``remove`` / ``rmtree`` calls instead of running them, delegates the rest."""

    def __init__(self, backend):
        self._backend = backend
        self.pending: List[Tuple[str, str]] = []

    def remove(self, path) -> None:
        self.pending.append(('remove', path))

    def rmtree(self, path) -> None:
        self.pending.append(('rmtree', path))

    def __getattr__(self, name):
        return getattr(self._backend, name)


def _removals_after_saving(method):
    """Wrap a CheckpointHook saving method so that the files it removes are removed
    only once it has saved (and not at all if saving raised). A file the hook names
    as its latest or best checkpoint afterwards is never removed."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        backend = self.file_backend
        proxy = _DeferredRemovals(backend)
        self.file_backend = proxy
        try:
            result = method(self, *args, **kwargs)
        finally:
            self.file_backend = backend
        kept = {
            self.last_ckpt,
            getattr(self, 'best_ckpt_path', None),
            *getattr(self, 'best_ckpt_path_dict', {}).values()
        }
        for action, path in proxy.pending:
            if path not in kept:
                getattr(backend, action)(path)
        return result

    wrapper.mmseg_fusion_removals_after_saving = True
    return wrapper


def _atomic_put(self, obj: bytes, filepath) -> None:
    """``LocalBackend.put``, written through a temporary file renamed into place."""
    import mmengine
    mmengine.mkdir_or_exist(osp.dirname(os.fspath(filepath)))
    write_atomically(filepath, obj, 'wb')


def _atomic_put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
    """``LocalBackend.put_text``, through a temporary file renamed into place."""
    import mmengine
    mmengine.mkdir_or_exist(osp.dirname(os.fspath(filepath)))
    write_atomically(filepath, obj, 'w', encoding=encoding)


def make_checkpoint_saving_atomic() -> None:
    """Patch mmengine's local checkpoint writing as the module docstring says; safe
    to call more than once."""
    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.hooks import checkpoint_hook
    LocalBackend.put = _atomic_put
    LocalBackend.put_text = _atomic_put_text
    # checkpoint_hook.py opens a file in one place: ``last_checkpoint``, for writing.
    checkpoint_hook.open = atomic_open
    hook = checkpoint_hook.CheckpointHook
    for name in ('_save_checkpoint_with_step', '_save_best_checkpoint'):
        method = getattr(hook, name)
        if not getattr(method, 'mmseg_fusion_removals_after_saving', False):
            setattr(hook, name, _removals_after_saving(method))


CHECKPOINT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def _readable_zip(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith('data.pkl') for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _previous_checkpoint(path: str) -> Optional[str]:
    """The newest other ``iter_N.pth`` / ``epoch_N.pth`` next to ``path`` that is a
    complete zip archive, or None."""
    candidates = []
    for other in glob.glob(osp.join(glob.escape(osp.dirname(path) or '.'), '*.pth')):
        match = CHECKPOINT_NAME.match(osp.basename(other))
        if match and osp.abspath(other) != osp.abspath(path):
            candidates.append((int(match[2]), other))
    for _, other in sorted(candidates, reverse=True):
        if _readable_zip(other):
            return other
    return None


def _with_previous(message: str, path: str) -> str:
    previous = _previous_checkpoint(path)
    if previous is None:
        return message
    return (f'{message}; to resume from the previous checkpoint pass --resume '
            f'--cfg-options load_from={previous}')


class ResumeCheckpoint:
    """A checked resume checkpoint: its ``path``, the iteration and epoch its meta
    records, and the shapes of its weights.

    Raises:
        PathNotFoundError: ``path`` does not exist.
        CheckpointMismatchError: the file is truncated, not a PyTorch checkpoint, or
            not an mmengine training checkpoint.
    """

    def __init__(self, path: str, named_by: Optional[str] = None):
        self.path = path
        where = f' (named by {named_by})' if named_by else ''
        if not osp.isfile(path):
            raise PathNotFoundError(
                _with_previous(
                    f'cannot resume: checkpoint {path}{where} does not exist', path))
        if not _readable_zip(path):
            message = (f'cannot resume from {path}{where}: the file is truncated or '
                       'is not a PyTorch checkpoint (no complete zip archive)')
            raise CheckpointMismatchError(_with_previous(message, path))
        checkpoint = self._load(path, where)
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        state_dict = checkpoint.get('state_dict') if isinstance(checkpoint,
                                                                dict) else None
        if not isinstance(meta, dict) or 'iter' not in meta or \
                not isinstance(state_dict, dict):
            held = (
                sorted(checkpoint)[:4]
                if isinstance(checkpoint, dict) else type(checkpoint).__name__)
            raise CheckpointMismatchError(
                f'cannot resume from {path}{where}: it is not an mmengine training '
                f'checkpoint (no meta iteration or state_dict; it holds {held}); to '
                'start a new run from its weights, pass --cfg-options load_from=PATH '
                'without --resume')
        self.iter = int(meta['iter'])
        self.epoch = int(meta.get('epoch', 0))
        self.shapes: Dict[str, tuple] = {
            re.sub(r'^module\.', '', key): tuple(value.shape)
            for key, value in state_dict.items() if hasattr(value, 'shape')
        }

    @staticmethod
    def _load(path: str, where: str):
        import torch
        try:
            return torch.load(path, map_location='cpu', mmap=True, weights_only=True)
        except Exception as error:  # torch raises many types for a bad file
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ''
            raise CheckpointMismatchError(
                _with_previous(
                    f'cannot resume from {path}{where}: the file cannot be read as a '
                    f'checkpoint ({type(error).__name__}: {reason})', path)) from error

    def check_model(self, model) -> None:
        """Raise :class:`CheckpointMismatchError` unless the checkpoint holds a weight
        of the same shape for every parameter and buffer of ``model``."""
        from ..utils.checkpoint_check import unwrap_model
        expected = unwrap_model(model).state_dict()
        missing = [key for key in expected if key not in self.shapes]
        resized = [
            key for key in expected
            if key in self.shapes and self.shapes[key] != tuple(expected[key].shape)
        ]
        if not missing and not resized:
            return
        problems = []
        if missing:
            problems.append(f'{len(missing)} of the model\'s {len(expected)} weights '
                            f'are missing (e.g. {missing[0]})')
        if resized:
            key = resized[0]
            problems.append(f'{len(resized)} have another shape (e.g. {key} '
                            f'{self.shapes[key]} in the checkpoint, '
                            f'{tuple(expected[key].shape)} in the model)')
        raise CheckpointMismatchError(
            f'cannot resume from {self.path}: it is a checkpoint of another model '
            f'({"; ".join(problems)})')


def find_resume_checkpoint(work_dir: str,
                           load_from: Optional[str] = None
                           ) -> Optional[ResumeCheckpoint]:
    """The checkpoint ``--resume`` continues from, checked.

    ``load_from`` (a local file) when given, else the file that
    ``work_dir/last_checkpoint`` names; None when neither exists (the run starts from
    scratch, as mmengine does). Remote ``load_from`` URLs are left to mmengine.

    Raises:
        PathNotFoundError, CheckpointMismatchError: see :class:`ResumeCheckpoint`;
            also for a ``last_checkpoint`` that is empty.
    """
    if load_from:
        if '://' in load_from and not load_from.startswith('file://'):
            return None
        return ResumeCheckpoint(load_from)
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        named = f.read().strip()
    if not named:
        raise CheckpointMismatchError(
            _with_previous(f'cannot resume: {pointer} is empty', pointer))
    return ResumeCheckpoint(named, named_by=pointer)


def check_resume_checkpoint(path: str) -> ResumeCheckpoint:
    """Check that ``path`` is a complete mmengine training checkpoint (see
    :class:`ResumeCheckpoint`)."""
    return ResumeCheckpoint(path)
