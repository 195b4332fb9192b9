"""Hostile inputs, each as a user would hand it over: a fresh process, the exact exit code, the message, and the file
system checked afterwards (nothing written outside its folder, no input destroyed)."""
import hashlib, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}

def run(module_cli, *args, cwd, timeout=600):
    mod, fn = module_cli.split(':')
    return subprocess.run([sys.executable, '-c', f'from {mod} import {fn}; {fn}()', *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=ENV)

def digest(p: Path) -> str: return hashlib.sha256(p.read_bytes()).hexdigest()

def one_line(r, code: int, *words):
    "exit code `code`, exactly one line on stderr, containing every word"
    assert r.returncode == code, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words: assert w in lines[0], lines[0]

SLOW = pytest.mark.slow   # trains, reconstructs several times or waits: make test runs it, make test-fast leaves it out
def fast_first(*params):
    "parameters of which the first is checked in make test-fast too and the others only in make test (each is a fresh process)"
    return [params[0], *(pytest.param(*(p if isinstance(p, tuple) else (p,)), marks=SLOW) for p in params[1:])]

@pytest.fixture(scope='module')
def room(tmp_path_factory, shapes45):
    "a work folder with shapes/ (the prepared embedded shapes, linked), for the tests that need no trained model"
    w = tmp_path_factory.mktemp('hostile')
    (w/'shapes').symlink_to(shapes45, target_is_directory=True)
    return w

@pytest.fixture(scope='module')
def work(room):
    "the work folder with a tiny AIR-Net of one epoch in experiments/tiny (a training run: only slow tests use it)"
    w = room
    r = run('airnets.train:train_cli', '-exp_name', 'tiny', '-cfg_file', 'tiny', '--data_root', w/'shapes', '--epochs', 1, '--quiet', cwd=w)
    assert r.returncode == 0, r.stdout + r.stderr
    return w

def evil_root(work: Path, name: str, **lists) -> Path:
    "a data root whose class folders link to the embedded shapes and whose split.npz holds the given lists"
    root = work/name; root.mkdir()
    for c in (work/'shapes').iterdir():
        if c.is_dir(): (root/c.name).symlink_to(c.resolve(), target_is_directory=True)
    good = np.load(work/'shapes'/'split.npz')
    split = {k: good[k] for k in ('train', 'val', 'test')}
    split.update(lists)
    np.savez(root/'split.npz', **split)
    return root

@SLOW
@pytest.mark.parametrize('bad', ['../../escaped/obj', '/tmp/airnets_abs_escape/obj'])
def test_object_names_that_leave_the_root_are_refused(work, bad):
    root = evil_root(work, f'evil{abs(hash(bad))}', test=np.array([str(np.load(work/'shapes'/'split.npz')['test'][0]), bad]))
    outside = (root/bad).resolve() if not bad.startswith('/') else Path(bad)
    r = run('airnets.generate:generate_cli', '-exp_name', 'tiny', '--data_root', root, '-mise_res', 8, '-mise_steps', 0, '--quiet', cwd=work)
    one_line(r, 2, 'split.npz', repr(bad), 'not a relative path inside the data root')
    assert not outside.exists() and not outside.parent.exists()
    assert not any((work/'experiments'/'tiny').glob('evaluation_*/generation/*/*/surface_reconstruction.off'))
    r = run('airnets.train:train_cli', '-exp_name', 'evil', '-cfg_file', 'tiny', '--data_root', root, '--epochs', 1, '--quiet', cwd=work)
    assert r.returncode == 0, r.stderr  # its training lists are good: the bad name is in `test`, which training never reads
    root2 = evil_root(work, f'evil_train{abs(hash(bad))}', train=np.array([bad]))
    r = run('airnets.train:train_cli', '-exp_name', 'evil2', '-cfg_file', 'tiny', '--data_root', root2, '--epochs', 1, cwd=work)
    one_line(r, 2, 'split.npz', repr(bad))
    assert not (work/'experiments'/'evil2'/'checkpoints').exists()

@pytest.mark.parametrize('case,words', fast_first(
    ('empty train', ['split.npz', "'train' list is empty"]),
    ('object arrays', ['split.npz', 'object arrays']),
    ('numbers', ['split.npz', 'must be a 1-D string array']),
    ('no val list', ['split.npz', 'val']),
    ('missing folder', ['split.npz', "without a folder", "'chair/does_not_exist'"]),
))
def test_bad_splits_stop_training_with_one_line(room, case, words):
    work = room
    lists = {'object arrays': dict(train=np.array(['a/b', 'c/d'], dtype=object)), 'empty train': dict(train=np.array([], dtype=str)),
             'numbers': dict(train=np.arange(3)), 'no val list': {}, 'missing folder': dict(train=np.array(['chair/does_not_exist']))}[case]
    root = evil_root(work, 'split_' + case.replace(' ', '_'), **lists)
    if case == 'no val list':
        z = dict(np.load(root/'split.npz')); z.pop('val'); np.savez(root/'split.npz', **z)
    r = run('airnets.train:train_cli', '-exp_name', 'bad_' + case.replace(' ', '_'), '-cfg_file', 'tiny', '--data_root', root, '--epochs', 1, cwd=work)
    one_line(r, 2, *words)

@SLOW
def test_reconstruct_never_writes_over_its_input(room):
    work = room
    (work/'sub').mkdir(exist_ok=True)
    mesh_scan = work/'scan.ply'
    mesh_scan.write_text('ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\nend_header\n'
                         '0 0 0\n1 0 0\n0 1 0\n0 0 1\n')
    (work/'scan_ply_link.ply').symlink_to(mesh_scan)
    before = digest(mesh_scan)
    for out in (mesh_scan, work/'scan_ply_link.ply', work/'sub'/'..'/'scan.ply'):
        r = run('airnets.generate:reconstruct_cli', mesh_scan, '-o', out, cwd=work)
        one_line(r, 2, '-o', 'is the input point cloud', 'refusing to write over it')
        assert digest(mesh_scan) == before and mesh_scan.is_file() and not mesh_scan.is_symlink()

@SLOW
def test_export_weights_never_replaces_its_checkpoint(work):
    ck = work/'experiments'/'tiny'/'checkpoints'/'checkpoint_epoch_1.tar'
    before = digest(ck)
    r = run('airnets.pretrained:export_weights_cli', '-exp_name', 'tiny', '-o', ck, cwd=work)
    one_line(r, 2, 'checkpoint_epoch_1.tar', 'refusing to replace a training checkpoint')
    assert digest(ck) == before
    r = run('airnets.pretrained:export_weights_cli', '-exp_name', 'tiny', '-o', work/'slim.pt', cwd=work)
    assert r.returncode == 0 and (work/'slim.pt').is_file() and digest(ck) == before

@SLOW
def test_a_diverging_run_stops_with_one_line_and_no_nan_best(room):
    work = room
    cfg = work/'tiny_nan.yaml'
    cfg.write_text((Path(__file__).resolve().parents[1]/'airnets'/'configs'/'tiny.yaml').read_text().replace('  lr: 0.003', '  lr: 1.0e+25'))
    r = run('airnets.train:train_cli', '-exp_name', 'nan', '-cfg_file', cfg, '--data_root', work/'shapes', '--epochs', 3, '--quiet', cwd=work)
    one_line(r, 1, 'epoch 1, step', 'the training loss is nan', 'checkpoints of the epochs before are kept')
    exp = work/'experiments'/'nan'
    assert not (exp/'val_min.json').exists() and not list((exp/'checkpoints').glob('*.tar'))

@pytest.mark.parametrize('edit,words', fast_first(
    (lambda t: t.replace('  type: airnet\n  encoder_attn_dim', '  type: [airnet]\n  encoder_attn_dim'), ['`encoder.type` must be one of', "['airnet']"]),
    (lambda t: t.replace('  lr: 0.003', '  lr: .inf'), ['`training.lr`', 'finite']),
    (lambda t: t.replace('  ckpt: null', '  ckpt: null\n  seed: 123456789012345678901234567890'), ['`training.seed`', 'less than']),
))
def test_config_values_out_of_range_exit_2(room, edit, words):
    work = room
    cfg = work/'bad_value.yaml'
    cfg.write_text(edit((Path(__file__).resolve().parents[1]/'airnets'/'configs'/'tiny.yaml').read_text()))
    r = run('airnets.train:train_cli', '-exp_name', 'badvalue', '-cfg_file', cfg, '--data_root', work/'shapes', '--epochs', 1, cwd=work)
    one_line(r, 2, 'bad_value.yaml', *words)

def test_a_pickled_checkpoint_is_refused_without_advice_to_unpickle(room):
    work = room
    import torch
    bad = work/'pickled.pt'
    torch.save({'encoder_state_dict': {}, 'decoder_state_dict': {}, 'extra': Path('a pickled object')}, bad)
    np.save(work/'cloud.npy', np.random.default_rng(1).normal(size=(300, 3)).astype(np.float32))
    r = run('airnets.generate:reconstruct_cli', work/'cloud.npy', '-o', work/'out.off', '--model', bad, '--cfg_file', 'tiny', cwd=work)
    one_line(r, 2, 'pickled.pt', 'never unpickled')
    assert 'weights_only' not in r.stderr and not (work/'out.off').exists()

@pytest.mark.parametrize('points,words', fast_first(
    ([[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3], [5, 5, 5]], ['collinear']),
    ([[0, 0, 0], [1, 1, 1]], ['2 points cannot enclose a volume']),
    ([[x, y, 0] for x in range(5) for y in range(5)], ['coplanar']),
))
def test_degenerate_clouds_are_refused_with_the_reason(room, points, words):
    work = room
    src = work/'degenerate.xyz'
    src.write_text('\n'.join(' '.join(map(str, p)) for p in points) + '\n')
    r = run('airnets.generate:reconstruct_cli', src, '-o', work/'degenerate.off', cwd=work)
    one_line(r, 2, 'degenerate.xyz', *words)
    assert not (work/'degenerate.off').exists()

@SLOW
def test_unwritable_outputs_are_refused_before_any_work(work):
    np.save(work/'cloud2.npy', np.random.default_rng(2).normal(size=(300, 3)).astype(np.float32))
    (work/'a_folder.off').mkdir(exist_ok=True); (work/'a_file').write_text('x')
    for out, words in ((work/'a_folder.off', ['a_folder.off is a folder']), (work/'a_file'/'out.off', ['a_file is a file, not a folder'])):
        r = run('airnets.generate:reconstruct_cli', work/'cloud2.npy', '-o', out, cwd=work)
        one_line(r, 2, '-o', *words)
    r = run('airnets.train:train_cli', '-exp_name', 'x', '-cfg_file', 'tiny', '--data_root', work/'shapes', '--exp_root', work/'a_file', cwd=work)
    one_line(r, 2, 'a_file is a file, not a folder')
    r = run('airnets.pretrained:export_weights_cli', '-exp_name', 'tiny', '-o', work/'a_folder.off', cwd=work)
    one_line(r, 2, 'is a folder')
    blocker = work/'experiments'/'tiny'/'evaluation_1_@8x0'
    blocker.write_text('in the way')
    r = run('airnets.generate:generate_cli', '-exp_name', 'tiny', '--data_root', work/'shapes', '-mise_res', 8, '-mise_steps', 0, '--quiet', cwd=work)
    one_line(r, 2, 'evaluation_1_@8x0 is a file, not a folder')
    assert blocker.read_text() == 'in the way'

@pytest.mark.parametrize('grid', fast_first(['-mise_res', 1024, '-mise_steps', 1], (['-method', 'mcubes', '-mcubes_res', 1024],)))
def test_a_grid_larger_than_memory_is_refused_with_the_figure(room, grid):
    work = room
    from airnets.generate import available_memory
    if available_memory() is None or available_memory() > 200 * 2**30: pytest.skip('SKIP: memory unknown or over 200 GiB here')
    np.save(work/'cloud3.npy', np.random.default_rng(3).normal(size=(300, 3)).astype(np.float32))
    r = run('airnets.generate:reconstruct_cli', work/'cloud3.npy', '-o', work/'huge.off', *grid, cwd=work)
    one_line(r, 2, 'GiB', 'more than the', 'lower the resolution')
    assert not (work/'huge.off').exists()

@SLOW
def test_an_npz_named_npy_is_named_for_what_it_is(room):
    work = room
    np.savez(work/'archive.npy', points=np.zeros((10, 3)))
    (work/'archive.npy.npz').rename(work/'archive.npy') if (work/'archive.npy.npz').exists() else None
    r = run('airnets.generate:reconstruct_cli', work/'archive.npy', '-o', work/'archive.off', cwd=work)
    one_line(r, 2, 'archive.npy', 'an .npz archive named .npy')

@SLOW
def test_export_weights_of_an_untrained_experiment_names_no_missing_flag(room):
    work = room
    (work/'experiments'/'empty_exp'/'checkpoints').mkdir(parents=True, exist_ok=True)
    (work/'experiments'/'empty_exp'/'config.yaml').write_text((Path(__file__).resolve().parents[1]/'airnets'/'configs'/'tiny.yaml').read_text())
    r = run('airnets.pretrained:export_weights_cli', '-exp_name', 'empty_exp', '-o', work/'e.pt', cwd=work)
    one_line(r, 2, 'train it first')
    assert '-ckpt_name' not in r.stderr

@SLOW
def test_ctrl_c_in_reconstruct_says_nothing_was_written(room):
    work = room
    import signal, time
    sphere = np.random.default_rng(4).normal(size=(20_000, 3))
    np.save(work/'cloud4.npy', (sphere / np.linalg.norm(sphere, axis=1, keepdims=True)).astype(np.float32))
    # the crops model on 20,000 points at 512 cells: tens of seconds of work, mostly in Python-level loops that a signal interrupts at once
    # the child starts with Ctrl-C's default handler, as in a terminal: a job that a non-interactive shell puts in the
    # background inherits SIGINT ignored, and Python then installs no handler (which is the shell's choice, not the command's)
    p = subprocess.Popen([sys.executable, '-c', 'import signal; signal.signal(signal.SIGINT, signal.default_int_handler); '
                          'from airnets.generate import reconstruct_cli; reconstruct_cli()', str(work/'cloud4.npy'),
                          '-o', str(work/'cloud4.off'), '--model', 'general', '-mise_res', '64', '-mise_steps', '3'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=work)
    def cpu_seconds():   # the child's CPU time: a loaded machine slows the wall clock, not the work done before the signal
        fields = Path(f'/proc/{p.pid}/stat').read_text().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    deadline = time.time() + 240
    while p.poll() is None and cpu_seconds() < 8 and time.time() < deadline: time.sleep(0.2)   # past the imports (about 3 s), early in the work
    # a signal that lands while a library is still being imported can be swallowed there (trimesh's optional imports catch
    # BaseException), as a user's first Ctrl-C might be: press it again, as a user would, until the command stops
    for _ in range(6):
        p.send_signal(signal.SIGINT)
        try: out, err = p.communicate(timeout=5); break
        except subprocess.TimeoutExpired: continue
    else: out, err = p.communicate(timeout=300)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == 'airnets_reconstruct: interrupted; nothing was written', err
    assert not (work/'cloud4.off').exists()

def test_make_shapes_never_rewrites_a_split_it_did_not_write(tmp_path):
    root = tmp_path/'mine'; root.mkdir()
    np.savez(root/'split.npz', train=np.array(['a/1']), val=np.array(['a/2']), test=np.array(['a/3']))
    before = digest(root/'split.npz')
    r = subprocess.run([str(Path(sys.executable).parent/'airnets_make_shapes'), '--out', str(root), '--n', '3', '--quiet'],
                       capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    one_line(r, 2, 'mine', 'split.npz that airnets_make_shapes did not write')
    assert digest(root/'split.npz') == before and sorted(p.name for p in root.iterdir()) == ['split.npz']

def test_filter_corrupted_never_follows_links_out_of_the_root(tmp_path):
    outside = tmp_path/'outside'
    for name in ('keep_me', 'class_target/obj'):
        (outside/name).mkdir(parents=True); (outside/name/'precious.txt').write_text('x')
    root = tmp_path/'root'
    (root/'a'/'good').mkdir(parents=True); (root/'a'/'good'/'surface_30000_samples.npy').write_text('x')
    (root/'a'/'bad').mkdir(); (root/'a'/'linked').symlink_to(outside/'keep_me', target_is_directory=True)
    (root/'b').symlink_to(outside/'class_target', target_is_directory=True)
    np.savez(root/'split.npz', train=np.array(['a/good', 'a/bad', 'a/linked', 'b/obj']), val=np.array([], dtype=str), test=np.array([], dtype=str))
    r = subprocess.run([sys.executable, '-c', 'from airnets.prepare import filter_corrupted_cli; filter_corrupted_cli()', '--data_root', str(root), '-delete'],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stdout + r.stderr   # listing and deleting always succeeds
    assert (outside/'keep_me'/'precious.txt').is_file() and (outside/'class_target'/'obj'/'precious.txt').is_file()
    assert not (root/'a'/'bad').exists() and not (root/'a'/'linked').is_symlink() and (root/'a'/'good').is_dir()
    assert 'not deleted' in r.stderr and 'b/obj' in r.stderr
    from airnets.datasets import read_split
    assert read_split(root/'split.npz', 'train') == ['a/good']

def test_prepare_removes_leftover_partial_files_everywhere(tmp_path, shapes45):
    import shutil
    root = tmp_path/'shapes'; shutil.copytree(shapes45, root)
    done_obj = root/np.load(root/'split.npz')['train'][0]
    for p in (root/'.split.npz.123.partial', done_obj/'.boundary_0.1_samples.npz.9.partial'): p.write_bytes(b'half')
    r = subprocess.run([sys.executable, '-c', 'from airnets.prepare import prepare_cli; prepare_cli()', '--data_root', str(root), '--quiet'],
                       capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '0 done' in r.stdout and not list(root.rglob('*.partial'))     # everything was prepared already: only the leftovers went

@SLOW
def test_two_generators_on_one_shard_share_the_work(work):
    import re as _re
    args = [sys.executable, '-c', 'from airnets.generate import generate_cli; generate_cli()', '-exp_name', 'tiny', '--data_root', str(work/'shapes'),
            '-mise_res', '16', '-mise_steps', '1', '--threshold', '0.3', '--shard', '1/2', '--quiet']
    ps = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work, env=ENV) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in ps]
    assert [p.returncode for p in ps] == [0, 0], outs
    done = [int(_re.search(r'(\d+) meshes written', o).group(1)) for o, _ in outs]
    gen = next((work/'experiments'/'tiny').glob('evaluation_1_@16x1/generation'))
    n = len(list(gen.glob('*/*/surface_reconstruction.off')))
    assert n == 7 and sum(done) == n, (done, n, outs)       # 15 test shapes, shard 1/2: objects 1, 3, ..., 13, each made exactly once
    assert not list(gen.rglob('.claim')) and not list(gen.rglob('*.partial'))

BIN = Path(sys.executable).parent

def script(name, *args, cwd, timeout=600):
    "a console script of .venv/bin, in a fresh process"
    return subprocess.run([str(BIN/name), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=ENV)

def test_huge_or_far_meshes_keep_their_vertices_when_welded(tmp_path):
    import trimesh
    root, expected = tmp_path/'far', {'sphere': (642, 1280), 'box': (8, 12)}
    for name, unit in (('sphere', trimesh.creation.icosphere(subdivisions=3)), ('box', trimesh.creation.box())):
        for how in ('unit', 'scaled', 'moved'):
            m = unit.copy()
            if how == 'scaled': m.apply_scale(1e12)
            if how == 'moved': m.apply_translation([1e12, -3e12, 2e12])
            for suffix in ('off', 'obj'):
                (root/name/f'{how}_{suffix}').mkdir(parents=True)
                m.export(root/name/f'{how}_{suffix}'/f'mesh.{suffix}')
    r = script('airnets_convert_to_scaled_off', '--data_root', root, '--workers', 0, '--quiet', cwd=tmp_path)
    assert r.returncode == 0 and r.stderr.strip() == '', r.stdout + r.stderr
    assert r.stdout.startswith('12 done, 0 skipped (already prepared), 0 failed'), r.stdout
    for obj in sorted(p for p in root.glob('*/*')):
        suffix = obj.name.split('_')[-1]
        assert sorted(p.name for p in obj.iterdir()) == sorted([f'mesh.{suffix}', 'mesh_scaled.off']), obj
        m = trimesh.load(obj/'mesh_scaled.off', process=False)
        assert (len(m.vertices), len(m.faces), m.is_watertight) == (*expected[obj.parent.name], True), obj
        assert abs(np.ptp(m.vertices, 0).max() - 1) < 1e-9, obj

@SLOW
def test_ply_output_keeps_survey_coordinates(tmp_path):
    import trimesh
    from airnets.generate import write_mesh
    header = lambda p: p.read_bytes().split(b'end_header')[0].decode()
    d = np.random.default_rng(5).normal(size=(3000, 3)); d /= np.linalg.norm(d, axis=1, keepdims=True)
    np.savetxt(tmp_path/'survey.xyz', d * 40 + [412345.678, 4587654.321, 152.25], fmt='%.6f')   # 40 m across, 400 km and 4600 km out
    np.savetxt(tmp_path/'unit.xyz', d, fmt='%.6f')
    for src, out in (('survey.xyz', 'survey.ply'), ('survey.xyz', 'survey.off'), ('unit.xyz', 'unit.ply')):
        r = script('airnets_reconstruct', src, '-o', out, '--model', 'demo', '-mise_res', 16, '-mise_steps', 0, cwd=tmp_path)   # the global model: quick, and what is tested is the writer
        assert r.returncode == 0 and (tmp_path/out).is_file(), r.stdout + r.stderr
    ply, off = (trimesh.load(tmp_path/n, process=False) for n in ('survey.ply', 'survey.off'))   # OFF is text with full digits
    assert 'property double x' in header(tmp_path/'survey.ply') and 'property float x' in header(tmp_path/'unit.ply')
    assert len(ply.vertices) > 100 and np.array_equal(ply.faces, off.faces)
    assert (np.abs(ply.vertices - off.vertices) / np.abs(off.vertices)).max() <= 1e-9
    assert sorted(p.name for p in tmp_path.iterdir()) == ['survey.off', 'survey.ply', 'survey.xyz', 'unit.ply', 'unit.xyz']
    mesh = trimesh.creation.icosphere(subdivisions=2)
    for offset, kind in ((0.0, 'float'), (4e5 + 0.123, 'double'), (1e39, 'double')):      # 1e39: beyond float32's range
        m = trimesh.Trimesh(mesh.vertices * 30 + offset, mesh.faces, process=False)
        write_mesh(m, tmp_path/'direct.ply')
        back = trimesh.load(tmp_path/'direct.ply', process=False)
        assert f'property {kind} x' in header(tmp_path/'direct.ply') and np.isfinite(back.vertices).all()
        limit = 2.0**-24 * 60 if kind == 'float' else 1e-9 * np.abs(m.vertices).max()   # float32: within its resolution at the mesh's size (60)
        assert np.abs(back.vertices - m.vertices).max() <= limit, offset

@pytest.mark.parametrize('case', fast_first('binary', 'ascii', 'ascii with faces'))
def test_a_truncated_ply_is_refused_with_both_counts(tmp_path, case):
    pts = np.random.default_rng(6).normal(size=(600, 3))
    head = 'ply\nformat {}\nelement vertex 1000\nproperty float x\nproperty float y\nproperty float z\n{}end_header\n'
    src = tmp_path/'trunc.ply'
    if case == 'binary': src.write_bytes(head.format('binary_little_endian 1.0', '').encode() + pts.astype('<f4').tobytes())
    else:
        faces = 'element face 2\nproperty list uchar int vertex_indices\n' if case == 'ascii with faces' else ''
        src.write_text(head.format('ascii 1.0', faces) + ''.join(f'{x:.6f} {y:.6f} {z:.6f}\n' for x, y, z in pts)
                       + ('3 0 1 2\n3 0 2 1\n' if faces else ''))
    before = digest(src)
    r = script('airnets_reconstruct', 'trunc.ply', '-o', 'out.off', cwd=tmp_path)
    one_line(r, 2, 'trunc.ply', 'promises 1000 vertices but it holds 600')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['trunc.ply'] and digest(src) == before

def test_reconstruct_never_writes_over_its_model_or_config(room):
    "the check that guards the point cloud guards every file the command reads: --model and --cfg_file"
    work, pkg = room, Path(__file__).resolve().parents[1]/'airnets'
    np.savetxt(work/'cloud.xyz', np.random.default_rng(0).normal(size=(200, 3)) * 0.2)
    model, cfg = work/'model_copy.ply', work/'config_copy.obj'          # names a user might mistype into -o
    model.write_bytes((pkg/'weights'/'demo.pt').read_bytes()); cfg.write_text((pkg/'configs'/'demo.yaml').read_text())
    before = digest(model), digest(cfg)
    r = run('airnets.generate:reconstruct_cli', work/'cloud.xyz', '-o', model, '--model', model, cwd=work)
    one_line(r, 2, 'model_copy.ply', 'is the --model file', 'refusing to write over it')
    r = run('airnets.generate:reconstruct_cli', work/'cloud.xyz', '-o', cfg, '--model', model, '--cfg_file', cfg, cwd=work)
    one_line(r, 2, 'config_copy.obj', 'is the --cfg_file file', 'refusing to write over it')
    assert (digest(model), digest(cfg)) == before

@pytest.mark.parametrize('kind,words', fast_first(('bytes', 'not a .npy or .npz file'), ('objects', 'holds Python objects')))
def test_unreadable_arrays_are_explained_without_advice_to_unpickle(room, kind, words):
    "NumPy's own message for these suggests allow_pickle; the command says what the file is instead"
    path = room/f'{kind}.npy'
    if kind == 'bytes': path.write_bytes(bytes(range(7, 250)))
    else: np.save(path, np.array([{'x': 1}], dtype=object), allow_pickle=True)
    r = run('airnets.generate:reconstruct_cli', path, '-o', room/f'{kind}.off', cwd=room)
    one_line(r, 2, f'{kind}.npy', words)
    assert 'allow_pickle' not in r.stderr and 'unsafe' not in r.stderr and 'pickle.load' not in r.stderr

def test_export_weights_never_writes_over_its_bench_file(room):
    pkg = Path(__file__).resolve().parents[1]/'airnets'
    bench = room/'scores.pt'                                             # a bench JSON under a name that -o could take
    bench.write_text('{"command": "x"}')
    before = digest(bench)
    r = run('airnets.pretrained:export_weights_cli', '--weights', pkg/'weights'/'demo.pt', '-o', bench, '--bench', bench, cwd=room)
    one_line(r, 2, 'scores.pt', 'is the --bench file', 'refusing to write over it')
    assert digest(bench) == before

def test_a_checkpoint_of_strings_is_refused_by_name_not_by_traceback(room):
    "a weights-only file may hold strings where tensors belong: reconstruct and export_weights name the keys, exit 2, write nothing"
    import torch
    state = torch.load(Path(__file__).resolve().parents[1]/'airnets'/'weights'/'demo.pt', weights_only=True)
    state['encoder_state_dict'] = {k: 'text' for k in state['encoder_state_dict']}
    torch.save(state, room/'strings.pt')
    np.savetxt(room/'cloud.xyz', np.random.default_rng(0).normal(size=(200, 3)) * 0.2)
    r = run('airnets.generate:reconstruct_cli', room/'cloud.xyz', '-o', room/'strings.off', '--model', room/'strings.pt', cwd=room)
    assert r.returncode == 2 and 'not a tensor: ' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
    r = run('airnets.pretrained:export_weights_cli', '--weights', room/'strings.pt', '-o', room/'strings_renewed.pt', cwd=room)
    assert r.returncode == 2 and 'not a tensor: ' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert not (room/'strings.off').exists() and not (room/'strings_renewed.pt').exists()

@pytest.mark.parametrize('record', fast_first('garbage', '{"epoch": "x"}', '{"epoch": [1]}'))
def test_a_damaged_best_epoch_record_is_named(room, record):
    exp = room/'experiments'/'damaged'
    exp.mkdir(parents=True, exist_ok=True)
    (exp/'config.yaml').write_text((Path(__file__).resolve().parents[1]/'airnets'/'configs'/'tiny.yaml').read_text())
    (exp/'val_min.json').write_text(record)
    np.savetxt(room/'cloud.xyz', np.random.default_rng(0).normal(size=(200, 3)) * 0.2)
    r = run('airnets.generate:reconstruct_cli', room/'cloud.xyz', '-o', room/'damaged.off', '-exp_name', 'damaged', cwd=room)
    one_line(r, 2, 'val_min.json', '--checkpoint')

@pytest.mark.parametrize('flag,value,words', fast_first(('--simplify_nfaces', 3, 'must be 0 (never) or at least 4'), ('--simplify_nfaces', -5, 'must be 0 (never) or at least 4'),
                                                       ('--seed', -1, '--seed must be >= 0'), ('-mise_res', 0, '-mise_res must be >= 1')))
def test_extraction_flags_are_checked_before_any_work(room, flag, value, words):
    "refused in one line before the model is read or a point drawn, by airnets_reconstruct and airnets_generate alike"
    np.savetxt(room/'cloud.xyz', np.random.default_rng(0).normal(size=(200, 3)) * 0.2)
    one_line(run('airnets.generate:reconstruct_cli', room/'cloud.xyz', '-o', room/'flags.off', '--model', 'demo', flag, value, cwd=room), 2, words)
    one_line(run('airnets.generate:generate_cli', '-exp_name', 'nothing_here', flag, value, cwd=room), 2, words)

@pytest.mark.parametrize('case,words', fast_first(('huge', 'beyond the 1e+150'), ('folder', 'a folder, not a point cloud file'),
                                                 ('checkpoint', '--checkpoint and --ckpt_name choose among the checkpoints of -exp_name')))
def test_reconstruct_refuses_what_it_cannot_use_in_one_line(room, case, words):
    "a cloud too large for float64 arithmetic (it used to give a mesh of NaN), a folder for a file, an epoch with no experiment"
    pts = np.random.default_rng(0).normal(size=(300, 3)); pts /= np.abs(pts).max()
    src, extra = room/'cloud.xyz', []
    if case == 'huge': src = room/'huge.npy'; np.save(src, pts * 0.9e308)
    else: np.savetxt(src, pts * 0.3)
    if case == 'folder': src = room/'a_folder.xyz'; src.mkdir(exist_ok=True)
    if case == 'checkpoint': extra = ['--model', 'demo', '--checkpoint', 3]
    r = run('airnets.generate:reconstruct_cli', src, '-o', room/f'{case}.off', *extra, cwd=room)
    one_line(r, 2, words)
    assert not (room/f'{case}.off').exists()
