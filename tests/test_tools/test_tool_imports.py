"""The scripts under tools/ import shared code from the package, never each other by
file name, and never edit sys.path: each imports from its file alone, from any
folder."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared_data import REPO

SCRIPTS = sorted((REPO / 'tools').rglob('*.py'))
SCRIPT_NAMES = {path.stem for path in SCRIPTS}


def script_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def imported_modules(tree: ast.AST):
    """The top-level module names that ``tree`` imports (absolute imports only)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield '.' if node.level else node.module.split('.')[0]


def touches_sys_path(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Attribute) and node.attr == 'path'
        and isinstance(node.value, ast.Name) and node.value.id == 'sys'
        for node in ast.walk(tree))


def test_tools_hold_the_scripts_of_every_kind():
    folders = {path.parent.name for path in SCRIPTS}
    assert {'tools', 'analysis_tools', 'dataset_converters', 'misc'} <= folders


@pytest.mark.parametrize('path', SCRIPTS, ids=script_id)
def test_script_imports_no_sibling_and_leaves_sys_path(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    siblings = set(imported_modules(tree)) & (SCRIPT_NAMES | {'.'})
    assert not siblings, f'{script_id(path)} imports {sorted(siblings)} by file name'
    assert not touches_sys_path(tree), f'{script_id(path)} edits sys.path'


def test_scripts_import_from_their_file_without_sys_path(tmp_path):
    """In a fresh interpreter started elsewhere, with nothing of tools/ on sys.path,
    every script that shares code (the converters and the analysis tools) imports."""
    scripts = [
        p for p in SCRIPTS if p.parent.name in ('dataset_converters', 'analysis_tools')
    ]
    code = ('import importlib.util, sys\n'
            'for path in sys.argv[1:]:\n'
            '    spec = importlib.util.spec_from_file_location("tool", path)\n'
            '    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n'
            'print("imported", len(sys.argv) - 1)\n')
    result = subprocess.run([sys.executable, '-c', code, *map(str, scripts)],
                            cwd=tmp_path,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f'imported {len(scripts)}'
