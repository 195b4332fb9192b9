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

# Every console script of settings.ini: --help works, and the reference's single-dash spelling of a flag behaves as the
# double-dash one (here: the same usage error, exit code 2, nothing written), as the CLI contract promises.
import configparser

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_cfg = configparser.ConfigParser(interpolation=None); _cfg.read(ROOT/'settings.ini')
SCRIPTS = sorted(line.split('=')[0].strip() for line in _cfg['DEFAULT']['console_scripts'].split('\n') if line.strip())

def script(name, *args, cwd=None):
    "Run a console script as a user does: from the environment's bin folder (or PATH), in a fresh process"
    exe = BIN/name if (BIN/name).is_file() else shutil.which(name) or pytest.skip(f'{name} is not installed (run `make setup`)')
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)

def test_settings_list_the_commands():
    assert len(SCRIPTS) >= 14 and {'airnets_train', 'airnets_generate', 'airnets_reconstruct', 'airnets_fps_demo'} <= set(SCRIPTS)

# Each command as a fresh process costs an interpreter and the torch import (about 3 s on a loaded 2-core machine): the
# fresh-process checks of every command are marked slow (make test) but for one command each, and `make test-fast` checks
# every command's parser and usage errors in this process, through `cmd.main(argv)`, the same code path minus the process.
FRESH = {'help': 'airnets_train', 'spelling': 'airnets_reconstruct'}   # the commands checked as fresh processes in test-fast too
def fresh(names, which): return [n if n == FRESH[which] else pytest.param(n, marks=pytest.mark.slow) for n in names]

def entry_point(name):
    "the function behind console script `name` (settings.ini)"
    import importlib
    mod, fn = next(l.split('=')[1].strip() for l in _cfg['DEFAULT']['console_scripts'].split('\n') if l.strip().startswith(name + '=')).split(':')
    return getattr(importlib.import_module(mod), fn)

def in_process(name, *args, cwd=None):
    "(exit code, stdout, stderr) of console script `name` run in this process"
    import contextlib, io, os
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        if cwd: os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try: code = entry_point(name).main([*map(str, args)])
            except SystemExit as e: code = e.code
    finally: os.chdir(here)
    return code, out.getvalue(), err.getvalue()

@pytest.mark.parametrize('name', fresh(SCRIPTS, 'help'))
def test_every_command_answers_help(name):
    r = script(name, '--help')
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f'usage: {name}') and '--help' in r.stdout and r.stderr == ''

@pytest.mark.parametrize('name', SCRIPTS)
def test_every_command_answers_help_in_process(name):
    code, out, err = in_process(name, '--help')
    assert code == 0, err
    assert out.startswith(f'usage: {name}') and '--help' in out and err == ''

# one flag per command, and arguments that make the command refuse at once: (flag, value, other arguments, words of the message)
SPELLINGS = {
    'airnets_fps_demo': ('n_anchors', 0, ['--out', '{tmp}/fps'], '1 <= --n_anchors <= --n_points'),
    'airnets_train': ('exp_name', 'a/b', [], 'must be a plain name'),
    'airnets_make_shapes': ('n', 0, ['--out', '{tmp}/shapes'], 'n must be an integer >= 1'),
    'airnets_convert_to_scaled_off': ('data_root', '{tmp}/nowhere', [], 'no such folder'),
    'airnets_sample_surface': ('n', 0, ['--data_root', '{tmp}'], '--n must be >= 1'),
    'airnets_boundary_sampling': ('sigma', -1, ['--data_root', '{tmp}'], 'must be given and > 0'),
    'airnets_filter_corrupted': ('data_root', '{tmp}/nowhere', [], 'no such folder'),
    'airnets_prepare': ('sigmas', 'x', ['--data_root', '{tmp}'], '--sigmas must be comma-separated numbers'),
    'airnets_generate': ('split', 'nope', ['--exp_name', 'x', '--exp_root', '{tmp}'], '--split must be train, val or test'),
    'airnets_reconstruct': ('threshold', 2, ['{tmp}/in.ply', '-o', '{tmp}/out.ply'], '--threshold is a probability'),
    'airnets_evaluate': ('generation_path', '{tmp}/nowhere', [], 'no such folder'),
    'airnets_evaluate_gather': ('generation_path', '{tmp}/nowhere', [], 'no such folder'),
    'airnets_report': ('exp_name', 'nope', ['--exp_root', '{tmp}'], 'does not exist'),
    'airnets_export_weights': ('exp_name', 'nope', ['-o', '{tmp}/w.pt', '--exp_root', '{tmp}'], 'train it first'),
}

def test_every_command_has_a_spelling_case():
    assert sorted(SPELLINGS) == SCRIPTS

@pytest.mark.parametrize('name', fresh(sorted(SPELLINGS), 'spelling'))
def test_one_and_two_dashes_behave_the_same(name, tmp_path):
    flag, value, rest, words = SPELLINGS[name]
    fill = lambda a: str(a).replace('{tmp}', str(tmp_path))
    one, two = (script(name, *map(fill, rest), f'{dashes}{flag}', fill(value), cwd=tmp_path) for dashes in ('-', '--'))
    assert one.returncode == two.returncode == 2, (one.stderr, two.stderr)
    assert one.stderr == two.stderr and one.stdout == two.stdout
    lines = one.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{name}: ') and words in lines[0], one.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], 'a refused command wrote something'

@pytest.mark.parametrize('name', sorted(SPELLINGS))
def test_one_and_two_dashes_behave_the_same_in_process(name, tmp_path):
    flag, value, rest, words = SPELLINGS[name]
    fill = lambda a: str(a).replace('{tmp}', str(tmp_path))
    one, two = (in_process(name, *map(fill, rest), f'{dashes}{flag}', fill(value), cwd=tmp_path) for dashes in ('-', '--'))
    assert one[0] == two[0] == 2, (one[2], two[2])
    assert one[1:] == two[1:]
    lines = one[2].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{name}: ') and words in lines[0], one[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [], 'a refused command wrote something'

def test_a_switch_and_flags_with_one_dash_do_the_work(tmp_path):
    "the same dataset from `-out D -n 2 -seed 1 -workers 0 -quiet` as from the double-dash spelling"
    one = script('airnets_make_shapes', '-out', tmp_path/'one', '-n', 2, '-seed', 1, '-workers', 0, '-quiet')
    two = script('airnets_make_shapes', '--out', tmp_path/'two', '--n', 2, '--seed', 1, '--workers', 0, '--quiet')
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    files = lambda d: sorted((p.relative_to(d).as_posix(), p.read_bytes()) for p in d.rglob('*') if p.is_file())
    assert files(tmp_path/'one') == files(tmp_path/'two') and len(files(tmp_path/'one')) >= 3
    assert one.stderr == two.stderr == ''   # -quiet is the switch --quiet: no progress bar

@pytest.mark.parametrize('flag', ['-no_such_flag', pytest.param('--no_such_flag', marks=pytest.mark.slow)])
def test_an_unknown_flag_is_a_usage_error(flag, tmp_path):
    r = script('airnets_evaluate_gather', flag, 'x', cwd=tmp_path)
    assert r.returncode == 2 and 'unrecognized arguments' in r.stderr, r.stderr

@pytest.mark.parametrize('flag', ['-no_such_flag', '--no_such_flag'])
def test_an_unknown_flag_is_a_usage_error_in_process(flag, tmp_path):
    code, _, err = in_process('airnets_evaluate_gather', flag, 'x', cwd=tmp_path)
    assert code == 2 and 'unrecognized arguments' in err, err

@pytest.mark.parametrize('flag', ['--poses', '--scales'])
def test_reconstruct_refuses_a_pose_or_scale_count_below_one(flag, tmp_path):
    "--poses 0 and --scales 0 are refused at once, in one line, before the cloud is read or anything is written"
    code, _, err = in_process('airnets_reconstruct', tmp_path/'in.ply', '-o', tmp_path/'out.ply', flag, 0)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f'{flag} must be >= 1, got 0' in lines[0], err
    assert list(tmp_path.iterdir()) == []

def test_export_weights_renews_a_weights_file(tmp_path):
    "--weights FILE: one line and exit 2 for a wrong use, never a write over the input; a good call copies the tensors and renews the rows"
    import json, shutil, torch
    from airnets.checkpoints import pretrained_path, read_weights
    src = tmp_path/'general.pt'; shutil.copy(pretrained_path('general'), src)
    before = src.read_bytes()
    bench = tmp_path/'rs.json'
    bench.write_text(json.dumps({'command': 'x', 'date': 'd', 'meshes': 2, 'setting_specs': {'a': {'points': 300, 'noise': 0.0}},
                                 'summary': {'a': {'general': {'iou_mean': 0.5}}}}))
    for args, words in (([], 'one of -exp_name'), (['--weights', src, '-exp_name', 'x'], 'one of -exp_name'),
                        (['--weights', src], 'is the weights file being read'), (['--weights', tmp_path/'none.pt'], 'none.pt: no such file'),
                        (['--weights', src, '--bench', src], 'cannot be read as JSON')):
        out = src if words == 'is the weights file being read' else tmp_path/'new.pt'
        code, _, err = in_process('airnets_export_weights', '-o', out, *args)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, (args, err)
    assert src.read_bytes() == before and not (tmp_path/'new.pt').exists()
    code, out, err = in_process('airnets_export_weights', '--weights', src, '-o', tmp_path/'new.pt', '--bench', bench)
    assert code == 0 and 'real scans: a' in out, out + err
    a, b = (read_weights(p) for p in (src, tmp_path/'new.pt'))
    assert all(torch.equal(a['decoder_state_dict'][k], v) for k, v in b['decoder_state_dict'].items()) and a['config'] == b['config']
    assert b['info']['real_scans']['settings'] == {'a': {'points': 300, 'noise': 0.0, 'iou_mean': 0.5}} and b['info']['data'] == a['info']['data']
