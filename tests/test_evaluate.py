"""End to end: `airnets_evaluate` and `airnets_evaluate_gather` as a user runs them (fresh processes, files on disk,
exit codes), on a generation folder made by hand so that every answer is known: ground-truth meshes (IoU 1), moved
copies, an empty mesh and a broken file. Also ONet-format and FAUST-style ground truth, --data_root, shards and
resume, and the independent cross-check of the metrics on the real meshes of ../shared/meshes."""
import csv, json, os, pickle, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
MESHES = Path(__file__).resolve().parents[2]/'shared'/'meshes'
SMALL = ['--n_surface', '20000', '--n_iou', '100000']

def run(fn, *args, cwd=None):
    return subprocess.run([sys.executable, '-c', f'from airnets.evaluate import {fn}; {fn}()', *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env=ENV)

@pytest.fixture(scope='module')
def data(tmp_path_factory, shapes45):
    "a work folder, the 45 prepared embedded shapes (tests/conftest.py) and the keys of the 15 test shapes"
    from airnets.datasets import read_split
    return tmp_path_factory.mktemp('eval'), shapes45, read_split(shapes45/'split.npz', 'test')

def hand_made(gen, root, keys, kinds):
    "a generation folder: per key, the ground truth ('itself'), a copy moved by 0.02 ('moved'), an empty mesh or a broken file"
    from airnets.files import save_npz
    from airnets.prepare import load_scaled_mesh
    for key, kind in zip(keys, kinds):
        d = gen/key; d.mkdir(parents=True)
        save_npz(d/'data.npz', inputs=np.zeros((1, 3), np.float32), source=np.asarray(str(root/key)))
        m = load_scaled_mesh(root/key)
        if kind == 'moved': m.apply_translation([0.02, 0, 0])
        if kind == 'broken': (d/'surface_reconstruction.off').write_text('OFF\n3 1 0\n0 0 0\n')
        else: (m if kind != 'empty' else trimesh.Trimesh()).export(d/'surface_reconstruction.off')

KINDS = ['itself', 'moved', 'empty', 'broken'] + ['itself', 'moved'] * 5 + ['itself']

def test_evaluate_shards_resume_and_gather(data):
    w, root, keys = data
    gen = w/'experiments'/'hand'/'evaluation_7_@64x2'/'generation'
    hand_made(gen, root, keys, KINDS)
    for shard, code in (('0/2', 0), ('1/2', 1)):                                                # the broken file (key 3) is in shard 1
        r = run('evaluate_cli', '-reconst', '-generation_path', gen, '-data_type', 'ifnet', '--shard', shard, '--workers', 2, *SMALL, '--quiet')
        assert r.returncode == code and ('FAILED ' + keys[3] in r.stdout) == bool(code), r.stdout + r.stderr
    evals = {k: json.loads((gen/k/'eval.json').read_text()) for k in keys if (gen/k/'eval.json').is_file()}
    assert sorted(evals) == sorted(k for k, kind in zip(keys, KINDS) if kind != 'broken')
    assert all((gen/k/'eval.pkl').is_file() for k in evals)
    for k, kind in zip(keys, KINDS):
        if kind == 'itself': assert evals[k]['iou'] == 1.0 and evals[k]['chamfer_l1'] < 0.01 and evals[k]['f_score_20'] > 0.95   # 20k samples: the noise floor
        if kind == 'moved': assert evals[k]['iou'] < 1 and evals[k]['accuracy'] <= 0.02 + 5e-3
        if kind == 'empty': assert evals[k]['empty'] is True and evals[k]['iou'] == 0 and evals[k]['chamfer_l1'] is None
    r = run('evaluate_cli', '-generation_path', gen, *SMALL, '--quiet')                         # resume: nothing left but the broken one
    assert '0 evaluated, 14 skipped' in r.stdout and r.returncode == 1, r.stdout
    r = run('evaluate_gather_cli', '-generation_path', gen)
    assert r.returncode == 1, r.stdout + r.stderr                                               # one object not evaluated
    out = gen.parent
    md = (out/'evaluation_results.md').read_text()
    assert 'Chamfer-L1 (x1e-2)' in md and 'units of the unit box' in md and 'Not evaluated (1' in md and '## Medians' in md
    assert all(e['distance_unit'].startswith('unit box') for e in evals.values())
    assert '| all (mean) | 14 | 1 | 1 |' in md
    rows = list(csv.DictReader(open(out/'evaluation_results.csv')))
    assert len(rows) == 15 and sum(r['empty'] == 'failed' for r in rows) == 1
    g = pickle.loads((out/'evaluation_results.pkl').read_bytes())                                 # our own file
    ious = [e['iou'] for e in evals.values()]
    assert abs(g['overall']['iou']['mean'] - np.mean(ious)) < 1e-12                              # the empty mesh counts as 0
    assert g['overall']['chamfer_l1']['n'] == 13 and g['overall']['failed'] == 1

@pytest.mark.slow   # six fresh processes
def test_evaluate_data_root_and_bad_usage(data):
    w, root, keys = data
    moved_root = w/'moved_data'
    gen = w/'experiments'/'m'/'evaluation_1_@64x2'/'generation'
    shutil.copytree(root, moved_root)
    hand_made(gen, moved_root, keys[:2], ['itself', 'moved'])
    shutil.rmtree(moved_root)                                                                    # the recorded source is gone
    r = run('evaluate_cli', '-generation_path', gen, *SMALL, '--quiet', '--workers', 0)
    assert r.returncode == 1 and 'give --data_root' in r.stdout, r.stdout + r.stderr
    r = run('evaluate_cli', '-generation_path', gen, '--data_root', root, *SMALL, '--quiet', '--workers', 0)
    assert r.returncode == 0 and '2 evaluated' in r.stdout, r.stdout + r.stderr
    for args, message in [([], '-generation_path is required'), (['-generation_path', w/'nowhere'], 'no such folder'),
                          (['-generation_path', w], 'no <class>/<id>/surface_reconstruction.off'), (['-generation_path', gen, '-data_type', 'x'], '-data_type must be')]:
        r = run('evaluate_cli', *args)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)

def test_evaluate_onet_and_human_ground_truth(data):
    w, root, keys = data
    from airnets.files import save_npz
    from airnets.prepare import load_scaled_mesh, save_split
    # ONet: pointcloud.npz and points.npz of two objects, exported by airnets_prepare --onet
    oroot = w/'onet'
    for k in keys[:2]: shutil.copytree(root/k, oroot/k)
    save_split(oroot/'split.npz', {'test': keys[:2]})
    r = subprocess.run([sys.executable, '-c', 'from airnets.prepare import prepare_cli; prepare_cli()', '--data_root', str(oroot), '--onet', '--quiet', '--workers', '0'],
                       capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    gen = w/'experiments'/'o'/'evaluation_1_@64x2'/'generation'
    hand_made(gen, oroot, keys[:2], ['itself', 'moved'])
    r = run('evaluate_cli', '-generation_path', gen, '-data_type', 'onet', '--n_surface', 20000, '--quiet', '--workers', 0)
    assert r.returncode == 0, r.stdout + r.stderr
    e = json.loads((gen/keys[0]/'eval.json').read_text())
    assert (gen/keys[0]/'evalOnet.pkl').is_file() and e['iou'] > 0.97 and e['chamfer_l1'] < 5e-3     # against ONet's own samples and labels
    # FAUST-style: a scan in metres, its generation normalised with the stored centre and scale
    from airnets.datasets import normalize_scan, scan_normalization
    scans, hgen = w/'scans', w/'experiments'/'h'/'evaluation_1_@64x2'/'generation'
    scans.mkdir()
    m = load_scaled_mesh(root/keys[0]); m.vertices = m.vertices * 1.7 + 0.3; m.export(scans/'test_scan_000.ply')
    c, s = scan_normalization(m.vertices)
    d = hgen/'scans'/'test_scan_000'; d.mkdir(parents=True)
    save_npz(d/'data.npz', inputs=np.zeros((1, 3), np.float32), source=np.asarray(str(scans/'test_scan_000.ply')), center=np.asarray(c), scale=np.asarray(s))
    trimesh.Trimesh(normalize_scan(m.vertices, c, s), m.faces).export(d/'surface_reconstruction.off')
    r = run('evaluate_cli', '-generation_path', hgen, '-data_type', 'human', *SMALL, '--quiet', '--workers', 0)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((d/'eval.json').read_text())['iou'] == 1.0
    r = run('evaluate_gather_cli', '-generation_path', hgen, '-data_type', 'human')
    assert r.returncode == 0 and '| scans | 1 | 0 | 0 | 1.0000' in r.stdout, r.stdout + r.stderr

@pytest.mark.slow
@pytest.mark.skipif(not MESHES.is_dir(), reason='../shared/meshes is absent')
@pytest.mark.parametrize('name', ['spot.obj', 'koala_low_resolution.obj', 'tri_yellow_bell_pepper.ply', 'hammer.obj', 'nefertiti-lowres.obj', 'stuffedtoy.obj'])
def test_metrics_agree_with_point_cloud_utils(name):
    "our eval_mesh against point-cloud-utils' sampling, KD-tree and winding numbers: equal within sampling noise"
    from airnets.geometry import load_mesh, normalize_mesh, occupancy
    from airnets.metrics import F_THRESHOLDS, eval_mesh, independent_metrics, uniform_points
    from airnets.mise import simplify_mesh
    gt = normalize_mesh(load_mesh(MESHES/name))[0]
    pred = simplify_mesh(gt, max(200, len(gt.faces) // 20)); pred.apply_translation([0.01, 0, 0])
    pts = uniform_points(200_000, 3)
    ours = eval_mesh(pred, gt, 100_000, iou_points=pts, iou_occupancy=occupancy(gt, pts))
    ref = independent_metrics(pred, gt, 100_000, pts)
    assert abs(ours['chamfer_l1'] - ref['chamfer_l1']) < 0.02 * ref['chamfer_l1'], (ours, ref)
    assert abs(ours['chamfer_l2'] - ref['chamfer_l2']) < 0.04 * ref['chamfer_l2'], (ours, ref)
    assert abs(ours['normals'] - ref['normals']) < 5e-3
    assert all(abs(ours[k] - ref[k]) < 0.01 for k in F_THRESHOLDS)
    assert abs(ours['iou'] - ref['iou']) < 5e-3

@pytest.mark.slow   # five fresh processes, two of them evaluating
def test_a_bad_eval_json_is_a_failed_object_and_is_evaluated_again(data):
    w, root, keys = data
    gen = w/'experiments'/'badjson'/'evaluation_3_@64x2'/'generation'
    hand_made(gen, root, keys[:4], ['itself'] * 4)
    r = run('evaluate_cli', '-generation_path', gen, *SMALL, '--workers', 0, '--quiet')
    assert r.returncode == 0, r.stdout + r.stderr
    good = json.loads((gen/keys[0]/'eval.json').read_text())
    (gen/keys[0]/'eval.json').write_text('{"iou": 0.9')                                        # truncated
    (gen/keys[1]/'eval.json').write_text(json.dumps({**good, 'iou': 57}))                      # impossible
    (gen/keys[2]/'eval.json').write_text(json.dumps({**good, 'f_score_10': True}))             # true is not 1.0
    r = run('evaluate_gather_cli', '-generation_path', gen)
    assert r.returncode == 1, r.stdout + r.stderr
    for k, why in ((keys[0], 'unreadable'), (keys[1], '`iou` = 57 is impossible'), (keys[2], '`f_score_10` must be a number')):
        assert any(l.startswith(f'FAILED {k}: ') and why in l for l in r.stderr.splitlines()), r.stderr
    assert 'Not evaluated (3' in (gen.parent/'evaluation_results.md').read_text()
    r = run('evaluate_cli', '-generation_path', gen, *SMALL, '--workers', 0, '--quiet')          # the three are evaluated again, the good one skipped
    assert r.returncode == 0 and '3 evaluated, 1 skipped' in r.stdout, r.stdout + r.stderr
    assert run('evaluate_gather_cli', '-generation_path', gen).returncode == 0

KILLER = '''
import os, signal
if os.environ.get('AIRNETS_TEST_KILL_KEY'):      # every process of the test, the pool's workers too, kills itself on that object
    import airnets.evaluate as ev
    _real = ev.evaluate_object
    def _killer(obj_dir, key, *a, **k):
        if key == os.environ['AIRNETS_TEST_KILL_KEY']: os.kill(os.getpid(), signal.SIGKILL)   # as the out-of-memory killer would
        return _real(obj_dir, key, *a, **k)
    ev.evaluate_object = _killer
'''

@pytest.mark.slow   # a pool of evaluating workers, one of them killed
def test_a_killed_worker_fails_only_its_object(data):
    w, root, keys = data
    gen = w/'experiments'/'killed'/'evaluation_1_@64x2'/'generation'
    hand_made(gen, root, keys[:5], ['itself'] * 5)
    (w/'killer').mkdir(exist_ok=True); (w/'killer'/'sitecustomize.py').write_text(KILLER)
    env = {**ENV, 'PYTHONPATH': str(w/'killer'), 'AIRNETS_TEST_KILL_KEY': keys[2]}
    r = subprocess.run([sys.executable, '-c', 'from airnets.evaluate import evaluate_cli; evaluate_cli()', '-generation_path', str(gen),
                        *SMALL, '--workers', '2', '--quiet'], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert '4 evaluated, 0 skipped' in r.stdout and f'FAILED {keys[2]}: the worker process died' in r.stdout, r.stdout + r.stderr
    assert 'Traceback' not in r.stderr and sorted(k for k in keys[:5] if (gen/k/'eval.json').is_file()) == sorted(keys[:5][:2] + keys[:5][3:])
