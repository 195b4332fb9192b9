"""Shared fixtures: the embedded dataset, made and prepared once per test session (about 30 s), read-only for the tests."""
import subprocess, sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

@pytest.fixture(scope='session')
def shapes45(tmp_path_factory) -> Path:
    "45 embedded shapes (15 train / 15 val / 15 test) prepared at the pipeline's full sizes by the commands a user runs; do not write into it"
    root = tmp_path_factory.mktemp('data')/'shapes'
    for cmd in ([str(BIN/'airnets_make_shapes'), '--out', root, '--n', 45, '--seed', 0, '--quiet'],
                [sys.executable, '-c', 'from airnets.prepare import prepare_cli; prepare_cli()', '--data_root', root, '--quiet']):
        r = subprocess.run([*map(str, cmd)], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
    return root

# The files that train or reconstruct run first: tools/test.sh gives each of two pytest-xdist workers a whole file at a
# time, so the long files run side by side and the short ones fill in at the end instead of one long file running alone.
LONG_FILES_FIRST = ('test_train.py', 'test_crops.py', 'test_generate.py', 'test_baselines.py', 'test_hostile.py', 'test_evaluate.py')

def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # a stable sort: each file keeps its own order
