"""End to end: the console scripts as a user runs them (a fresh process, files on disk, exit codes)."""
import json, re, shutil, subprocess, sys
from pathlib import Path

import pytest

def run(*args, **kw):
    exe = shutil.which(args[0]) or pytest.skip(f'{args[0]} is not installed (run `make setup`)')
    return subprocess.run([exe, *args[1:]], capture_output=True, text=True, timeout=300, **kw)

def test_fps_demo_writes_results(tmp_path):
    out = tmp_path/'demo'
    r = run('airnets_fps_demo', '--out', str(out), '--n_points', '4000', '--n_anchors', '150', '--seed', '3')
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ['fps_demo.html', 'fps_demo.png', 'summary.json']  # no temp files left
    s = json.loads((out/'summary.json').read_text())
    assert (s['n_points'], s['n_anchors'], s['seed']) == (4000, 150, 3)
    assert s['identical_to_reference'] is True
    assert 0 < s['covering_radius_fps'] < s['covering_radius_random']
    assert (out/'fps_demo.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    html = (out/'fps_demo.html').read_text()
    assert 'Plotly.newPlot' in html and not re.search(r'<script[^>]+src="https?:', html)  # plotly.js inlined: offline
    assert json.loads(r.stdout[:r.stdout.rindex('}') + 1]) == s

def test_fps_demo_rerun_replaces_outputs(tmp_path):
    out = tmp_path/'demo'
    for seed in ('1', '2'):
        assert run('airnets_fps_demo', '--out', str(out), '--n_points', '2000', '--n_anchors', '50', '--seed', seed,
                   '--no_reference').returncode == 0
    assert json.loads((out/'summary.json').read_text())['seed'] == 2
    assert 'identical_to_reference' not in json.loads((out/'summary.json').read_text())

@pytest.mark.parametrize('args', [('--n_anchors', '0'), ('--n_points', '100', '--n_anchors', '200')])
def test_fps_demo_bad_arguments(tmp_path, args):
    r = run('airnets_fps_demo', '--out', str(tmp_path/'x'), *args)
    assert r.returncode == 2
    assert '--n_anchors' in r.stderr and not (tmp_path/'x').exists()
