"""Package metadata for mmseg-fusion.

mmcv is deliberately not an unconditional requirement: mmcv (compiled) and mmcv-lite
install the same ``mmcv`` import package, so requiring either would replace the other.
``pip install .[lite]`` adds mmcv-lite; users of the compiled mmcv build it first and
then ``pip install .`` (README, "Compiled mmcv").
"""
import os.path as osp
from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name):
    """Requirement lines of ``requirements/{name}.txt``, comments and blanks dropped."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def read_version():
    namespace = {}
    with open(osp.join(HERE, 'mmseg_fusion', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_readme():
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        return f.read()


def extras_require():
    """The extras: lite, optional, tests and lint; 'all' is the first three."""
    extras = {
        name: read_requirements(name)
        for name in ('lite', 'optional', 'tests', 'lint')
    }
    extras['all'] = extras['lite'] + extras['optional'] + extras['tests']
    return extras


setup(
    name='mmseg-fusion',
    version=read_version(),
    description='Fusion and attention blocks for medical image segmentation in '
    'mmsegmentation 1.x',
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.10',
    install_requires=read_requirements('runtime'),
    extras_require=extras_require(),
    zip_safe=False,
)
