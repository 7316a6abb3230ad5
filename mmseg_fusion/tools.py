"""Run one of mmseg's own tools with mmseg-fusion's fixes applied first.

    python -m mmseg_fusion.tools TOOL [ARGS ...]
    python -m mmseg_fusion.tools --list

mmsegmentation ships its tools inside the package (``mmseg/.mim/tools``). Some import
``mmseg.models`` before the config's ``custom_imports`` run, which fails under
mmcv-lite (``No module named 'mmcv._ext'``; e.g. ``analysis_tools/get_flops.py``).
This entry point imports :mod:`mmseg_fusion` first (its compat fixes and registered
modules), then runs the tool script unchanged as ``__main__`` with ``ARGS``, so every
tool sees our configs as mmseg's own. TOOL is a name of :data:`MMSEG_TOOLS` or a path
relative to ``mmseg/.mim/tools`` (e.g. ``analysis_tools/get_flops.py``).

Three upstream defects are mended for the tool that hits them, in this process only:

- ``get_flops``: mmseg 1.2.2 passes both ``input_shape`` and ``inputs`` to mmengine
  0.10's ``get_model_complexity_info``, which refuses that; ``inputs`` (the
  preprocessed random image) is kept.
- ``browse_dataset``: it hands the visualizer a non-contiguous image, which OpenCV 5
  refuses to draw on; the image is made contiguous.
- ``analyze_logs`` imports seaborn only to pick a plot style; when seaborn is not
  installed, a stand-in applies matplotlib's copy of that seaborn style instead.
"""
import os.path as osp
import runpy
import sys
import types
from typing import List, Optional, Sequence

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.utils.cli import PathNotFoundError, ToolError, run_cli

# The tools of mmseg 1.2.2 that apply to a segmentor, by name.
MMSEG_TOOLS = {
    'train': 'train.py',
    'test': 'test.py',
    'benchmark': 'analysis_tools/benchmark.py',
    'get_flops': 'analysis_tools/get_flops.py',
    'confusion_matrix': 'analysis_tools/confusion_matrix.py',
    'browse_dataset': 'analysis_tools/browse_dataset.py',
    'analyze_logs': 'analysis_tools/analyze_logs.py',
    'print_config': 'misc/print_config.py',
    'publish_model': 'misc/publish_model.py',
}

USAGE = ('usage: python -m mmseg_fusion.tools TOOL [ARGS ...]   (TOOL: '
         f'{", ".join(MMSEG_TOOLS)}, or a path under mmseg/.mim/tools; '
         'python -m mmseg_fusion.tools TOOL --help for its arguments)')


def mmseg_tools_dir() -> str:
    """The folder of the tools that the installed mmseg ships."""
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')


def tool_script(tool: str) -> str:
    """The path of mmseg's script for ``tool`` (a name or a relative path)."""
    root = mmseg_tools_dir()
    if not osp.isdir(root):
        raise PathNotFoundError(
            f'this mmseg install ships no tools ({root} is missing); install '
            'mmsegmentation from PyPI (pip install mmsegmentation==1.2.2)')
    relative = MMSEG_TOOLS.get(tool, tool)
    path = osp.join(root, relative)
    if not relative.endswith('.py') or not osp.isfile(path):
        raise ToolError(f'unknown tool {tool!r}: {USAGE}')
    return path


def _seaborn_stand_in() -> types.ModuleType:
    """A ``seaborn`` module with the one function mmseg's analyze_logs calls,
    ``set_style(style)``, served by matplotlib's bundled seaborn styles."""
    module = types.ModuleType('seaborn')
    module.__doc__ = ('mmseg_fusion stand-in for seaborn (not installed): only '
                      'set_style, through matplotlib\'s seaborn-v0_8 styles')

    def set_style(style: Optional[str] = None, rc=None) -> None:
        import matplotlib.pyplot as plt
        name = f'seaborn-v0_8-{style}' if style else 'seaborn-v0_8'
        if name in plt.style.available:
            plt.style.use(name)

    module.set_style = set_style
    return module


def _mend_get_flops() -> None:
    import mmengine.analysis as analysis
    original = analysis.get_model_complexity_info
    if getattr(original, 'mended_by_mmseg_fusion', False):
        return

    def get_model_complexity_info(model, input_shape=None, inputs=None, **kwargs):
        if inputs is not None:
            input_shape = None
        return original(model, input_shape=input_shape, inputs=inputs, **kwargs)

    get_model_complexity_info.mended_by_mmseg_fusion = True
    analysis.get_model_complexity_info = get_model_complexity_info


def _mend_browse_dataset() -> None:
    import numpy as np
    from mmseg.visualization import SegLocalVisualizer
    original = SegLocalVisualizer.add_datasample
    if getattr(original, 'mended_by_mmseg_fusion', False):
        return

    def add_datasample(self, name, image, *args, **kwargs):
        return original(self, name, np.ascontiguousarray(image), *args, **kwargs)

    add_datasample.mended_by_mmseg_fusion = True
    SegLocalVisualizer.add_datasample = add_datasample


def _mend_analyze_logs() -> None:
    try:
        import seaborn  # noqa: F401
    except ImportError:
        sys.modules['seaborn'] = _seaborn_stand_in()


MENDS = {
    'get_flops.py': _mend_get_flops,
    'browse_dataset.py': _mend_browse_dataset,
    'analyze_logs.py': _mend_analyze_logs,
}


def main(argv: Optional[Sequence[str]] = None) -> None:
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ('-h', '--help', '--list'):
        print(USAGE)
        return
    script = tool_script(args[0])
    mend = MENDS.get(osp.basename(script))
    if mend is not None:
        mend()
    sys.argv = [script] + args[1:]
    sys.path.insert(0, osp.dirname(script))  # as when the script runs by itself
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    run_cli(main)
