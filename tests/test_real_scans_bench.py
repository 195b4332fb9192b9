"""bench/real_scans.py's candidate weights: --weights LABEL=FILE adds a method that runs airnets_reconstruct with that
file, --flags LABEL=FLAGS adds airnets_reconstruct flags to such a method; a bad LABEL, a missing FILE, or flags for a
label that no --weights names (a shipped method's meshes in --work would be reused without them) are one line and exit
code 2, before any work."""
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT/'bench'/'real_scans.py'


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('spec, says', [('demo=x.pt', 'with a new name as LABEL'), ('no_equals_sign', 'expected LABEL=FILE'),
                                        ('two words=x.pt', 'expected LABEL=FILE'), ('cand={missing}', 'is not a file')])
def test_bad_weights_spec_is_one_line_and_exit_2(tmp_path, spec, says):
    r = run('--meshes', str(tmp_path/'absent'), '--weights', spec.format(missing=tmp_path/'missing.pt'))
    assert r.returncode == 2, r
    last = r.stderr.strip().splitlines()[-1]
    assert '--weights' in last and says in last, last


@pytest.mark.parametrize('spec', ['poisson=--threshold 0.6', 'nobody=--threshold 0.6', 'general=--threshold 0.6', 'no_equals_sign'])
def test_bad_flags_spec_is_one_line_and_exit_2(tmp_path, spec):
    r = run('--meshes', str(tmp_path/'absent'), '--flags', spec)
    assert r.returncode == 2, r
    last = r.stderr.strip().splitlines()[-1]
    assert '--flags' in last and 'expected LABEL=FLAGS for one AIR-Net method named by --weights' in last, last


def test_a_good_spec_passes_and_absent_meshes_skip(tmp_path):
    w = tmp_path/'cand.pt'; w.write_bytes(b'not read here')
    r = run('--meshes', str(tmp_path/'absent'), '--weights', f'cand={w}', '--flags', 'cand=--threshold 0.6 --poses 2')
    assert r.returncode == 0 and 'nothing to measure (skipped)' in r.stdout, r


def test_a_candidate_runs_airnets_reconstruct_with_its_file(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location('bench_real_scans', SCRIPT)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    seen = []
    def run_timed(cmd, timeout, log):
        seen.append([str(c) for c in cmd])
        return dict(rc=1, seconds=0.0, peak_rss_mb=None, timed_out=False)
    monkeypatch.setattr(mod, 'run_timed', run_timed)
    a = SimpleNamespace(weights_files={'cand': '/w/cand.pt', 'thr': '/w/g.pt'}, method_flags={'thr': ['--threshold', '0.6']},
                        timeout=1, poisson_depth=8, poisson_trim=0.0)
    for method in ('cand', 'general', 'thr'):
        r = mod.reconstruct(method, tmp_path/'c.npy', tmp_path/method, a)
        assert r['status'] == 'failed (exit 1)' and r['faces'] == 0   # kept as an empty mesh
    assert seen[0][-2:] == ['--model', '/w/cand.pt'] and seen[0][0].endswith('airnets_reconstruct')
    assert seen[1][-2:] == ['--model', 'general']
    assert seen[2][-4:] == ['--model', '/w/g.pt', '--threshold', '0.6']   # --flags: an inference setting as a method of its own
