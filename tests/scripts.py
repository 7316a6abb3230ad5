"""Import the repository's scripts (tools/...) as modules, for in-process tests.

The scripts live outside the package (``tools/`` has no ``__init__.py``), so they are
imported from their file. They import shared code from ``mmseg_fusion`` only, never
each other, so no ``sys.path`` entry is needed.
"""
import importlib.util
from types import ModuleType

from tests.shared_data import REPO


def load_script(relative_path: str) -> ModuleType:
    """Import ``REPO/relative_path`` (e.g. ``'tools/analysis_tools/get_flops.py'``) as
    a module named after the file, without running its ``__main__`` block."""
    path = REPO / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
