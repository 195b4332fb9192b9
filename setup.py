"""airnets packaging: nbdev's settings.ini-driven setup, plus the compiled extensions built from csrc/.

Build with torch, numpy, cython, setuptools and wheel already installed (`make setup` does this):
    pip install -e ".[dev]" --no-build-isolation
Environment switches: AIRNETS_NO_TORCH_EXT=1 skips airnets._C, AIRNETS_NO_CYTHON=1 skips the Cython modules,
FORCE_CUDA=1 builds the CUDA kernel on a machine without a GPU (needs a CUDA build of torch and nvcc).
"""
import os, shlex, sys
from configparser import ConfigParser
from pathlib import Path

import setuptools

HERE = Path(__file__).resolve().parent

# ------------------------------------------------------------------ metadata from settings.ini (nbdev's template)
config = ConfigParser(delimiters=['='])
config.read(HERE/'settings.ini', encoding='utf-8')
cfg = config['DEFAULT']
expected = 'version description keywords author author_email'.split() + 'license status min_python audience language'.split()
missing = [o for o in expected if o not in cfg]
if missing: sys.exit(f'settings.ini is missing: {missing}')
setup_cfg = {o: cfg[o] for o in 'version description keywords author author_email'.split()}

statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()
min_python = cfg['min_python']
lic = {'apache2': 'Apache-2.0'}.get(cfg['license'], cfg['license'])
requirements = shlex.split(cfg.get('requirements', ''))
if cfg.get('pip_requirements'): requirements += shlex.split(cfg.get('pip_requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
console_scripts = cfg.get('console_scripts', '').split()
package_data = {cfg['lib_name']: cfg['package_data'].split()} if cfg.get('package_data') else {}

# ------------------------------------------------------------------ compiled extensions (not part of nbdev's template)
lib = cfg['lib_path']
ext_modules, cmdclass = [], {}

def _flag(name): return os.environ.get(name, '0').lower() in ('1', 'true', 'yes')

def _need(module, what):
    try: return __import__(module)
    except ImportError:
        sys.exit(f'airnets: building {what} needs `{module}`, which is not installed. Install it first '
                 f'(`pip install {module}`, or for torch the build for your machine: `pip install torch`), then run '
                 f'`pip install -e . --no-build-isolation`. `make setup` does all of this.')

# (a) Cython modules: every csrc/<name>.pyx becomes airnets.<name> (the MISE kernels and the ray-parity inside test)
pyx = sorted((HERE/'csrc').glob('*.pyx'))
if pyx and not _flag('AIRNETS_NO_CYTHON'):
    _need('Cython', 'the Cython extensions'); np = _need('numpy', 'the Cython extensions')
    from Cython.Build import cythonize
    ext_modules += cythonize([setuptools.Extension(f'{lib}.{p.stem}', [str(p.relative_to(HERE))], language='c++',
                                                   include_dirs=[np.get_include()],
                                                   define_macros=[('NPY_NO_DEPRECATED_API', 'NPY_1_7_API_VERSION')])
                              for p in pyx], compiler_directives={'language_level': 3}, build_dir='build/cython')

# (b) the torch extension airnets._C: CPU kernels always, CUDA kernels when torch is a CUDA build and nvcc exists
if not _flag('AIRNETS_NO_TORCH_EXT'):
    torch = _need('torch', 'airnets._C (farthest point sampling)')
    if not any(os.access(Path(d)/c, os.X_OK) for d in os.environ.get('PATH', '').split(os.pathsep) for c in ('c++', 'g++', 'clang++')):
        sys.exit('airnets: building airnets._C needs a C++ compiler (c++/g++), none is on PATH. '
                 'On Debian/Ubuntu: `apt-get install g++`; on macOS: `xcode-select --install`.')
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension, CUDA_HOME
    if _flag('FORCE_CUDA') and torch.version.cuda is None:
        sys.exit('airnets: FORCE_CUDA=1 but this torch is a CPU-only build (torch.version.cuda is None).')
    with_cuda = torch.version.cuda is not None and CUDA_HOME is not None and (torch.cuda.is_available() or _flag('FORCE_CUDA'))
    # -ffp-contract=off: no fused multiply-add, so distances round exactly like the reference kernel's
    cxx = ['-O3', '-ffp-contract=off'] if sys.platform != 'win32' else ['/O2', '/fp:precise', '/openmp']
    link = []
    if sys.platform.startswith('linux'):  # torch's at::parallel_for is inline OpenMP: without -fopenmp it runs serially.
        cxx, link = cxx + ['-fopenmp'], ['-fopenmp']  # libgomp.so.1 resolves to the copy torch has already loaded
    if with_cuda:
        ext_modules.append(CUDAExtension(f'{lib}._C', ['csrc/fps.cpp', 'csrc/attention.cpp', 'csrc/fps_cuda.cu'], define_macros=[('WITH_CUDA', None)],
                                         extra_compile_args={'cxx': cxx, 'nvcc': ['-O3', '--fmad=false']}, extra_link_args=link))
    else:
        ext_modules.append(CppExtension(f'{lib}._C', ['csrc/fps.cpp', 'csrc/attention.cpp'], extra_compile_args={'cxx': cxx}, extra_link_args=link))
    cmdclass['build_ext'] = BuildExtension

# ------------------------------------------------------------------ setup
setuptools.setup(
    name=cfg['lib_name'],
    license=lic,
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title()] +
                ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=[lib, f'{lib}.*']),
    include_package_data=True,
    install_requires=requirements,
    extras_require={'dev': dev_requirements},
    dependency_links=cfg.get('dep_links', '').split(),
    python_requires='>=' + cfg['min_python'],
    long_description=(HERE/'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': console_scripts, 'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d']},
    package_data=package_data,
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    **setup_cfg)
