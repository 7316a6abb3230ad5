"""User errors of the command-line tools, and the one way the tools report them.

A tool raises a :class:`ToolError` (or one of its subclasses) for a mistake in what the
user asked for: a missing config, checkpoint or data folder, a misspelt config key, a
checkpoint of another model, an output folder that is not empty. :func:`run_cli` turns
it into one line on stderr, ``error: <message>``, and exit status 1, without a
traceback. Anything else (a bug) keeps its traceback.

Each subclass also derives from the built-in exception it refines
(``FileNotFoundError``, ``ValueError``, ...), so callers that catch those keep working.
"""
import sys
from typing import Callable, Optional, Sequence, Tuple, Type

__all__ = [
    'ToolError', 'ConfigError', 'UsageError', 'DataNotFoundError', 'PathNotFoundError',
    'CheckpointMismatchError', 'OutputExistsError', 'PretrainedDownloadError', 'run_cli'
]


class ToolError(Exception):
    """A mistake in a tool's input, reported as one ``error: ...`` line."""


class ConfigError(ToolError, ValueError):
    """The config or ``--cfg-options`` cannot do what was asked (unknown key, no TTA
    pipeline, no evaluator that can write predictions, ...)."""


class UsageError(ToolError, ValueError):
    """A command-line value that cannot be used (an unknown name, a key no log has)."""


class PathNotFoundError(ToolError, FileNotFoundError):
    """A config or checkpoint file given on the command line does not exist."""


class DataNotFoundError(ToolError, FileNotFoundError):
    """A dataset folder a config points at does not exist."""


class CheckpointMismatchError(ToolError, ValueError):
    """A checkpoint cannot be read, or holds the weights of another model."""


class OutputExistsError(ToolError, FileExistsError):
    """An output folder or work dir already holds files a run would overwrite."""


class PretrainedDownloadError(ToolError, ConnectionError):
    """Pretrained weights named by the config could not be downloaded."""


def one_line(message: str) -> str:
    """``message`` with its line breaks and runs of spaces folded into single spaces."""
    return ' '.join(str(message).split())


def run_cli(
    main: Callable[[Optional[Sequence[str]]], object],
    argv: Optional[Sequence[str]] = None,
    catch: Tuple[Type[BaseException], ...] = (ToolError, )
) -> object:
    """Call ``main(argv)``; report an exception of the ``catch`` types as
    ``error: <message>`` on stderr and exit with status 1.

    Args:
        main: the tool's entry point, taking ``argv`` (None: ``sys.argv[1:]``).
        argv: the arguments to pass.
        catch: exception types that are user errors (default: :class:`ToolError`).
            Converters, whose inputs are all user data, also pass ``FileNotFoundError``,
            ``FileExistsError`` and ``ValueError``.

    Returns:
        whatever ``main`` returns.
    """
    try:
        return main(argv)
    except catch as error:
        print(f'error: {one_line(error)}', file=sys.stderr, flush=True)
        sys.exit(1)
