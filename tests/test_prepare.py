"""End to end: the data preparation commands (airnets.prepare) run as a user runs them: fresh processes on a data
root on disk, exit codes, byte-identical reruns, SIGKILL and resume, shards, filtering, and the real meshes."""
import os, shutil, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from airnets.prepare import list_objects, object_id, make_split

MESHES = Path(__file__).resolve().parents[2]/'shared'/'meshes'
SMALL = ['--n_surface', '2000', '--n_boundary', '3000']

def cli(name, *args, timeout=600, **kw):
    "Run `airnets.prepare.<name>()` in a fresh interpreter (console scripts exist only after a reinstall)"
    code = f'from airnets.prepare import {name}; {name}()'
    return subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)

def outputs(obj, n_surface=2000, sigmas=('0.1', '0.01')):
    return [*obj.glob('*_scaled.off'), obj/f'surface_{n_surface}_samples.npy', *(obj/f'boundary_{s}_samples.npz' for s in sigmas)]

def prepared(obj, **kw):
    o = outputs(obj, **kw)
    return len(list(obj.glob('*_scaled.off'))) == 1 and all(p.exists() for p in o)

def add(root, cls, oid, fname, write):
    d = root/cls/oid; d.mkdir(parents=True)
    write(d/fname)

def good_meshes(root, copies=1):
    "Five good objects in five formats (the .glb is a scene of two parts)"
    for k in range(copies):
        add(root, 'shapes', f'capsule{k}', 'model.obj', lambda p: trimesh.creation.capsule(height=0.4, radius=0.2).export(p))
        add(root, 'shapes', f'box{k}', 'model.ply', lambda p: trimesh.creation.box([1.0, 2.0, 4.0]).export(p))
        add(root, 'shapes', f'sphere{k}', 'model.stl', lambda p: trimesh.creation.icosphere(3, radius=0.3).export(p))
        add(root, 'more', f'cylinder{k}', 'isosurf.off', lambda p: trimesh.creation.cylinder(0.2, 1.0, sections=48).export(p))
        def scene(p):
            a, b = trimesh.creation.box([1, 1, 1]), trimesh.creation.box([1, 1, 1])
            b.apply_translation([3, 0, 0])
            trimesh.Scene([a, b]).export(p)
        add(root, 'more', f'twoboxes{k}', 'scene.glb', scene)
    return root

BAD = {  # id -> (file, writer, words the reason must contain)
    'empty': ('m.obj', lambda p: p.write_bytes(b''), 'empty'),
    'garbage': ('m.stl', lambda p: p.write_bytes(np.random.default_rng(1).bytes(3000)), 'm.stl'),
    'nan': ('m.obj', lambda p: p.write_text('v 0 0 0\nv 1 0 0\nv 0 nan 1\nf 1 2 3\n'), 'nan'),
    'nofaces': ('m.ply', lambda p: trimesh.PointCloud(np.random.default_rng(2).random((50, 3))).export(p), 'no'),
    'nomesh': ('readme.txt', lambda p: p.write_text('no mesh here'), 'no mesh'),
}

def bad_meshes(root):
    for oid, (fname, write, _) in BAD.items(): add(root, 'bad', oid, fname, write)
    return root

def failures(stdout):
    "{id: reason} from the FAILED lines of a summary"
    return dict(line[len('FAILED '):].split(': ', 1) for line in stdout.splitlines() if line.startswith('FAILED '))

def file_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}

def test_prepare_mixed_root(tmp_path):
    root = bad_meshes(good_meshes(tmp_path/'data'))
    r = cli('prepare_cli', '--data_root', root, '--workers', 2, *SMALL)
    assert r.returncode == 1, r.stdout + r.stderr
    fails = failures(r.stdout)
    assert sorted(fails) == [f'bad/{k}' for k in sorted(BAD)]
    for oid, (fname, _, words) in BAD.items():
        assert words.lower() in fails[f'bad/{oid}'].lower(), fails[f'bad/{oid}']
    assert '5 done, 0 skipped' in r.stdout
    for obj in list_objects(root):
        if obj.parent.name == 'bad': assert not list(obj.glob('*_scaled.off')) and not list(obj.glob('*.np?')); continue
        assert prepared(obj), obj
        m = trimesh.load(next(obj.glob('*_scaled.off')), process=False)
        lo, hi = m.bounds
        np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-7)
        np.testing.assert_allclose((hi - lo).max(), 1, atol=1e-7)
        s = np.load(obj/'surface_2000_samples.npy', allow_pickle=False)
        assert s.shape == (2000, 3) and s.dtype == np.float64
        assert np.abs(trimesh.proximity.ProximityQuery(m).signed_distance(s[:200])).max() < 1e-6  # on the surface
        for sig in (0.1, 0.01):
            with np.load(obj/f'boundary_{sig}_samples.npz', allow_pickle=False) as z:
                assert sorted(z.files) == ['grid_coords', 'occupancies', 'points']
                p, o, g = z['points'], z['occupancies'], z['grid_coords']
            assert p.shape == (3000, 3) and o.shape == (3000,) and o.dtype == bool
            np.testing.assert_array_equal(g, 2 * p[:, [2, 1, 0]])
            if sig == 0.01:  # normal component of the displacement ~ N(0, sigma^2): mean |distance| = 0.8 sigma
                d = np.abs(trimesh.proximity.ProximityQuery(m).signed_distance(p[:300]))
                assert 0.5 * sig < d.mean() < 1.1 * sig, (obj, d.mean())
    assert not list(root.rglob('*.partial'))
    # labels against an analytic check: the box [1, 2, 4] scales to half extents (0.125, 0.25, 0.5)
    with np.load(root/'shapes'/'box0'/'boundary_0.1_samples.npz', allow_pickle=False) as z: p, o = z['points'], z['occupancies']
    gap = (np.array([0.125, 0.25, 0.5]) - np.abs(p))  # > 0 on every axis inside
    clear = np.abs(gap).min(1) > 1e-6
    np.testing.assert_array_equal(o[clear], (gap[clear] > 0).all(1))
    assert 0.2 < o.mean() < 0.8
    # the sphere (radius 0.3 -> 0.5 after scaling; faceted: stay 0.01 away)
    with np.load(root/'shapes'/'sphere0'/'boundary_0.01_samples.npz', allow_pickle=False) as z: p, o = z['points'], z['occupancies']
    r_ = np.linalg.norm(p, axis=1); clear = np.abs(r_ - 0.5) > 0.01
    np.testing.assert_array_equal(o[clear], r_[clear] < 0.5)
    # the split lists exactly the prepared objects
    with np.load(root/'split.npz', allow_pickle=False) as z:
        ids = sorted(str(x) for k in ('train', 'val', 'test') for x in z[k])
    assert ids == sorted(object_id(o) for o in list_objects(root) if o.parent.name != 'bad')
    # a rerun skips everything and changes nothing
    before = file_bytes(root)
    r2 = cli('prepare_cli', '--data_root', root, '--workers', 0, *SMALL)
    assert r2.returncode == 1 and '0 done, 5 skipped' in r2.stdout and len(failures(r2.stdout)) == 5
    assert file_bytes(root) == before

def test_sigkill_and_resume_is_byte_identical(tmp_path):
    a, b = good_meshes(tmp_path/'a', copies=4), good_meshes(tmp_path/'b', copies=4)
    args = ['--n_surface', '2000', '--n_boundary', '40000']
    assert cli('prepare_cli', '--data_root', a, '--workers', 0, *args).returncode == 0
    code = 'from airnets.prepare import prepare_cli; prepare_cli()'
    p = subprocess.Popen([sys.executable, '-c', code, '--data_root', str(b), '--workers', '2', *args],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while not list(b.rglob('boundary_0.01_samples.npz')) and time.time() - t0 < 120 and p.poll() is None: time.sleep(0.01)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    n_done = sum(prepared(o) for o in list_objects(b))
    assert 1 <= n_done < 20, f'not killed half-way ({n_done} of 20 prepared)'
    assert not (b/'split.npz').exists()
    r = cli('prepare_cli', '--data_root', b, '--workers', 2, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f'{n_done} skipped' in r.stdout
    fa, fb = file_bytes(a), file_bytes(b)
    assert sorted(fa) == sorted(fb)
    assert [k for k in fa if fa[k] != fb[k]] == []

def test_shards_cover_everything_once(tmp_path):
    root = bad_meshes(good_meshes(tmp_path/'data'))
    objs = [object_id(o) for o in list_objects(root)]
    seen = []
    for i in range(2):
        r = cli('convert_to_scaled_off_cli', '--data_root', root, '--workers', 1, '--shard', f'{i}/2')
        assert r.returncode == 1, r.stderr
        done = [object_id(o) for o in list_objects(root) if list(o.glob('*_scaled.off'))]
        new = sorted(set(done) - set(seen) - set(failures(r.stdout)))
        part = sorted(set(new) | set(failures(r.stdout)))
        assert part == sorted(objs[i::2])
        assert not set(part) & set(seen)
        seen += part
    assert sorted(seen) == sorted(objs)
    r = cli('prepare_cli', '--data_root', root, '--workers', 0, '--shard', '1/2', *SMALL)  # no split under a shard
    assert r.returncode == 1 and not (root/'split.npz').exists() and 'once all shards are done' in r.stdout

def test_single_dash_flags_and_filter_corrupted(tmp_path):
    root = bad_meshes(good_meshes(tmp_path/'data'))
    assert cli('convert_to_scaled_off_cli', '-data_root', root, '-workers', 0).returncode == 1
    assert cli('sample_surface_cli', '-data_root', root, '-n', 500, '-workers', 0).returncode == 1
    r = cli('boundary_sampling_cli', '-sigma', 0.05, '-n', 700, '-data_root', root, '-workers', 0)
    assert r.returncode == 1 and '5 done' in r.stdout, r.stdout + r.stderr
    with np.load(root/'shapes'/'box0'/'boundary_0.05_samples.npz', allow_pickle=False) as z: assert z['points'].shape == (700, 3)
    make_split(root)  # a split that still lists the bad objects
    r = cli('filter_corrupted_cli', '-file', 'surface_500_samples.npy', '--data_root', root)
    assert r.returncode == 0
    assert sorted(l.split()[1] for l in r.stdout.splitlines() if l.startswith('missing ')) == [f'bad/{k}' for k in sorted(BAD)]
    assert len(list_objects(root)) == 10  # dry run
    r = cli('filter_corrupted_cli', '-file', 'surface_500_samples.npy', '-delete', '--data_root', root)
    assert r.returncode == 0 and r.stdout.count('removed ') == 5
    assert not (root/'bad').exists() or not list((root/'bad').iterdir())
    with np.load(root/'split.npz', allow_pickle=False) as z:
        assert sorted(str(x) for k in z.files for x in z[k]) == sorted(object_id(o) for o in list_objects(root))
    assert len(list_objects(root)) == 5

@pytest.mark.parametrize('name,args,word', [
    ('prepare_cli', ['--shard', '2/2'], '--shard'),
    ('prepare_cli', ['--shard', 'x'], '--shard'),
    ('sample_surface_cli', ['-shard', '0/0'], '--shard'),
    ('boundary_sampling_cli', [], 'sigma'),
    ('prepare_cli', ['--sigmas', '0.1,a'], '--sigmas'),
    ('prepare_cli', ['--bogus', '1'], '--bogus'),
])
def test_bad_usage(tmp_path, name, args, word):
    root = good_meshes(tmp_path/'data')
    r = cli(name, '--data_root', root, *args)
    assert r.returncode == 2 and word in r.stderr, r.stderr
    assert not list(root.rglob('*_scaled.off'))

def test_missing_data_root(tmp_path):
    for name in ('prepare_cli', 'filter_corrupted_cli'):
        r = cli(name, '--data_root', tmp_path/'nope')
        assert r.returncode == 2 and '--data_root' in r.stderr and 'nope' in r.stderr

@pytest.mark.slow
@pytest.mark.skipif(not MESHES.is_dir(), reason='../shared/meshes is absent')
def test_real_meshes(tmp_path):
    "Slow-ish (about a minute on 2 cores): every real mesh is prepared, or reported with a reason"
    root = tmp_path/'data'
    files = sorted(p for p in MESHES.iterdir() if p.suffix.lower() in ('.obj', '.off', '.ply', '.stl', '.glb', '.gltf'))
    assert files
    for p in files:
        d = root/'real'/p.stem; d.mkdir(parents=True); shutil.copy(p, d/p.name)
    r = cli('prepare_cli', '--data_root', root, '--workers', 2, '--n_surface', '2000', '--n_boundary', '5000', '--timeout', 300)
    fails = failures(r.stdout)
    assert r.returncode == (1 if fails else 0), r.stderr   # 1 exactly when a mesh is listed as failed
    for o in list_objects(root):
        oid = object_id(o)
        assert prepared(o) != (oid in fails), oid
        if oid in fails: assert len(fails[oid]) > 10
        else:
            with np.load(o/'boundary_0.01_samples.npz', allow_pickle=False) as z: occ = z['occupancies']
            assert 0.05 < occ.mean() < 0.95, (oid, occ.mean())  # near the surface: both labels common
    assert len(fails) <= len(files) // 4, fails

CRASHY = '''
import os, signal, time
from pathlib import Path
def step(obj_dir):
    if Path(obj_dir).name.startswith('box'): os.kill(os.getpid(), signal.SIGKILL)   # a crash in native code, say
    if Path(obj_dir).name.startswith('sphere'): time.sleep(30)                        # a hung object
    (Path(obj_dir)/'out.txt').write_text('ok')
'''

def test_worker_crash_and_timeout_fail_only_their_object(tmp_path):
    root = good_meshes(tmp_path/'data', copies=2)
    (tmp_path/'crashy.py').write_text(CRASHY)
    code = ('import crashy; from airnets.prepare import run_steps, Step; '
            f's = run_steps({str(root)!r}, [Step("crashy", crashy.step, output="out.txt")], workers=2, timeout=2, progress=False); '
            's.report()')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'PYTHONPATH': str(tmp_path)})
    assert r.returncode == 0, r.stderr
    fails = failures(r.stdout)
    assert sorted(fails) == ['shapes/box0', 'shapes/box1', 'shapes/sphere0', 'shapes/sphere1'], r.stdout
    assert all('worker process died' in fails[f'shapes/box{k}'] for k in range(2))
    assert all('timed out after 2' in fails[f'shapes/sphere{k}'] for k in range(2))
    assert '6 done' in r.stdout

def test_prepared_root_trains_both_data_types(tmp_path):
    "airnets_prepare --onet makes a root that ShapeReconstructionDataset reads as ifnet and as onet data"
    from airnets.datasets import ShapeReconstructionDataset
    root = tmp_path/'root'
    add(root, 'shapes', 'capsule', 'model.obj', lambda p: trimesh.creation.capsule(height=0.4, radius=0.2).export(p))
    add(root, 'shapes', 'sphere', 'model.stl', lambda p: trimesh.creation.icosphere(3, radius=0.3).export(p))
    r = cli('prepare_cli', '--data_root', root, '--workers', 0, '--quiet', '--onet', '--n_surface', 30000, '--n_boundary', 3000)
    assert r.returncode == 0, r.stdout + r.stderr
    split = dict(np.load(root/'split.npz', allow_pickle=False))
    mode = next(m for m in ('train', 'val', 'test') if len(split[m]))
    for data_type in ('ifnet', 'onet'):
        ds = ShapeReconstructionDataset(root, root/'split.npz', mode=mode, data_type=data_type, nsamples_input=300, npoints_decoder=500)
        item = ds[0]
        assert item['inputs'].shape == (300, 3) and item['points'].shape == (500, 3) and item['occupancies'].shape == (500,)
        assert 0.05 < item['occupancies'].mean() < 0.95
    with np.load(root/'shapes'/'sphere'/'points.npz', allow_pickle=False) as z:
        assert z['points'].dtype == np.float16 and z['points'].shape == (100000, 3)
        occ = np.unpackbits(z['occupancies'])[:100000].astype(bool)
        p = z['points'].astype(np.float64)
    r_sphere = np.linalg.norm(p, axis=1)          # the scaled sphere has radius 0.5 (up to faceting)
    ok = np.abs(r_sphere - 0.5) > 0.01
    assert (occ[ok] == (r_sphere[ok] < 0.5)).mean() > 0.999
