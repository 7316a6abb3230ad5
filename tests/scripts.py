"""Import the repository's scripts (tools/...) as modules, for in-process tests."""
import importlib.util
import sys
from types import ModuleType

from tests.shared_data import REPO


def load_script(relative_path: str) -> ModuleType:
    """Import ``REPO/relative_path`` with its folder on ``sys.path`` while it imports,
    as when it runs as a script (so it finds its sibling modules)."""
    path = REPO / relative_path
    folder = str(path.parent)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module
