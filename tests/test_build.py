"""setup.py fails with a message that says what to install, instead of a traceback from deep inside a build."""
import os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def setup_py(*args, pre='pass', env=None):
    "run `setup.py args` in a fresh interpreter, after executing `pre` (e.g. to hide a module)"
    code = f"import runpy, sys; {pre}; sys.argv = ['setup.py', *{list(args)!r}]; runpy.run_path('setup.py', run_name='__main__')"
    return subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})

def test_metadata_from_settings_ini():
    r = setup_py('--name', '--version', env={'AIRNETS_NO_TORCH_EXT': '1'})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ['airnets', '0.0.1']

def test_missing_torch_says_what_to_install():
    r = setup_py('--name', pre="sys.modules['torch'] = None")
    assert r.returncode != 0
    assert 'needs `torch`' in r.stderr and 'pip install' in r.stderr and '--no-build-isolation' in r.stderr

def test_missing_compiler_says_what_to_install(tmp_path):
    r = setup_py('--name', env={'PATH': str(tmp_path)})   # an empty PATH: no c++, g++ or clang++
    assert r.returncode != 0
    assert 'needs a C++ compiler' in r.stderr and 'apt-get install g++' in r.stderr

def test_force_cuda_with_cpu_torch_is_refused():
    import pytest, torch
    if torch.version.cuda is not None: pytest.skip('a CUDA build of torch: FORCE_CUDA is legitimate there')
    r = setup_py('--name', env={'FORCE_CUDA': '1'})
    assert r.returncode != 0 and 'CPU-only build' in r.stderr
