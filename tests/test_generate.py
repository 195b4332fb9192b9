"""End to end: `airnets_generate` and `airnets_reconstruct` as a user runs them (fresh processes, files on disk, exit
codes): the reference's output layout, skipping finished objects, shards, the reference's pretrained layout
(configs.yaml + checkpoints/ckpt.tar), every point cloud format in and mesh format out, the mesh in the input's
coordinates, and one-line errors for bad input."""
import os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
import yaml

pytestmark = pytest.mark.slow   # every test here uses a tiny AIR-Net trained for 25 epochs (the module's fixture)

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
FIXTURES = Path(__file__).resolve().parents[2]/'shared'/'fixtures'
TRAIN = dict(epochs=25)   # the tiny AIR-Net of tests/test_train.py, with its recipe well past the constant predictor's plateau (about 10 epochs)
# ... and is under-confident (its probabilities stay below 0.5), so the surface is taken at p = 0.3 (ONet's default is 0.2)
FAST = ['-mise_res', '16', '-mise_steps', '2', '--threshold', '0.3']

def run(module_cli, *args, cwd, timeout=600):
    mod, fn = module_cli.split(':')
    return subprocess.run([sys.executable, '-c', f'from {mod} import {fn}; {fn}()', *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=ENV)

def generate(*args, cwd): return run('airnets.generate:generate_cli', *args, cwd=cwd)
def reconstruct(*args, cwd): return run('airnets.generate:reconstruct_cli', *args, cwd=cwd)

@pytest.fixture(scope='module')
def work(tmp_path_factory, shapes45):
    "a folder with shapes/ (the 45 prepared embedded shapes of tests/conftest.py, linked) and a tiny AIR-Net trained on them, in experiments/tiny"
    w = tmp_path_factory.mktemp('gen')
    root = w/'shapes'
    root.symlink_to(shapes45, target_is_directory=True)
    from airnets.config import load_config
    cfg = load_config('tiny').to_dict(); cfg['training'].update(TRAIN)
    (w/'tiny_gen.yaml').write_text(yaml.safe_dump(cfg))
    r = run('airnets.train:train_cli', '-exp_name', 'tiny', '-cfg_file', w/'tiny_gen.yaml', '--data_root', root, '--quiet', cwd=w)
    assert r.returncode == 0, r.stdout + r.stderr
    return w

def meshes(gen_dir): return sorted(gen_dir.glob('*/*/surface_reconstruction.off'))

def max_nn_distance(a, b): # the largest distance from a point of a to its nearest point of b
    from scipy.spatial import cKDTree
    return cKDTree(b).query(a)[0].max()

def test_generate_writes_the_reference_layout_skips_finished_objects_and_shards(work):
    from airnets.datasets import read_split
    test_ids = sorted(read_split(work/'shapes'/'split.npz', 'test'))
    best = __import__('json').loads((work/'experiments'/'tiny'/'val_min.json').read_text())['epoch']
    out = work/'experiments'/'tiny'/f'evaluation_{best}_@16x2'/'generation'
    for shard in ('0/2', '1/2'):
        r = generate('-exp_name', 'tiny', *FAST, '-data_type', 'ifnet', '--data_root', work/'shapes', '--shard', shard, '--quiet', cwd=work)
        assert r.returncode == 0, r.stdout + r.stderr
    found = meshes(out)
    assert [p.parent.relative_to(out).as_posix() for p in found] == test_ids           # each test object once, <class>/<id>/
    assert all((p.parent/'data.npz').is_file() for p in found)
    inputs = np.load(found[0].parent/'data.npz')['inputs']
    assert inputs.shape == (64, 3)                                                      # the tiny config's pc_samples
    nonempty = [trimesh.load(p, process=False) for p in found]
    nonempty = [m for m in nonempty if len(m.faces)]
    assert len(nonempty) >= len(found) // 2, f'{len(nonempty)} of {len(found)} meshes are non-empty'
    assert all(np.abs(m.vertices).max() <= 0.51 + 1.02 / 64 / 2 + 1e-4 for m in nonempty)   # AIR-Nets' domain, or a closing cap half a cell (of 64) beyond it
    # a rerun skips everything; a deleted mesh is regenerated alone, the others are not touched
    stamps = {p: p.stat().st_mtime_ns for p in found}
    r = generate('-exp_name', 'tiny', *FAST, '--data_root', work/'shapes', '--quiet', cwd=work)
    assert r.returncode == 0 and '0 meshes written' in r.stdout and '15 skipped' in r.stdout, r.stdout + r.stderr
    before = found[3].read_bytes()
    found[3].unlink()
    r = generate('-exp_name', 'tiny', *FAST, '--data_root', work/'shapes', '--quiet', cwd=work)
    assert r.returncode == 0 and '1 meshes written' in r.stdout and '14 skipped' in r.stdout, r.stdout + r.stderr
    assert all(p.stat().st_mtime_ns == stamps[p] for p in found if p != found[3]) and found[3].is_file()
    assert found[3].read_bytes() == before     # the same input draw and the same model: the same mesh, byte for byte

def test_generate_mcubes_and_a_chosen_checkpoint(work):
    r = generate('-exp_name', 'tiny', '-checkpoint', 5, '-method', 'mcubes', '-mcubes_res', 32, '--data_root', work/'shapes', '--shard', '0/5', '--quiet', cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(meshes(work/'experiments'/'tiny'/'evaluation_5_@32'/'generation')) == 3

@pytest.mark.parametrize('args, message', [
    ([], '-exp_name is required'),
    (['-exp_name', 'nope'], 'not an experiment folder'),
    (['-exp_name', 'tiny', '-checkpoint', 999], 'checkpoint_epoch_999.tar does not exist'),
    (['-exp_name', 'tiny', '-method', 'dense'], '-method must be mise or mcubes'),
    (['-exp_name', 'tiny', '-data_type', 'faust'], '-data_type must be ifnet, onet or human'),
    (['-exp_name', 'tiny', '--shard', '2/2'], '--shard must be i/n'),
    (['-exp_name', 'tiny', '--threshold', '1.5'], 'probability in (0, 1)'),
])
def test_generate_bad_usage_is_one_line_and_exit_2(work, args, message):
    r = generate(*args, '--data_root', work/'shapes', cwd=work)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr

@pytest.mark.skipif(not (FIXTURES/'reference_airnet300.pt').is_file(), reason='../shared/fixtures is absent')
def test_the_reference_pretrained_layout(work):
    "experiments/NAME/configs.yaml + checkpoints/ckpt.tar, as the reference's README has them (its own code crashes here)"
    from torch.torch_version import TorchVersion
    with torch.serialization.safe_globals([TorchVersion]): fx = torch.load(FIXTURES/'reference_airnet300.pt', map_location='cpu', weights_only=True)
    exp = work/'experiments'/'pretrained'
    (exp/'checkpoints').mkdir(parents=True)
    (exp/'configs.yaml').write_text(yaml.safe_dump(fx['config']))
    torch.save({'epoch': 300, 'encoder_state_dict': fx['encoder_state_dict'], 'decoder_state_dict': fx['decoder_state_dict']}, exp/'checkpoints'/'ckpt.tar')
    r = generate('-exp_name', 'pretrained', '-ckpt_name', 'ckpt.tar', '-data_type', 'ifnet', '-mise_res', 8, '-mise_steps', 1,
                 '--data_root', work/'shapes', '--shard', '0/5', '--quiet', cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    out = exp/'evaluation_ckpt_@8x1'/'generation'
    assert len(meshes(out)) == 3
    assert np.load(meshes(out)[0].parent/'data.npz')['inputs'].shape == (300, 3)       # airnet300's input size

SHIFT, SCALE = np.array([1000.0, -250.0, 40.0]), 400.0

@pytest.fixture(scope='module')
def cloud(work):
    "5000 surface points of a test shape, in millimetres and away from the origin, in every format; and the unit-box points"
    from airnets.datasets import read_split
    obj = work/'shapes'/read_split(work/'shapes'/'split.npz', 'test')[0]
    gt = trimesh.load(next(obj.glob('*_scaled.off')), process=False)
    unit = trimesh.sample.sample_surface(gt, 5000, seed=1)[0]
    pts = unit * SCALE + SHIFT
    d = work/'clouds'; d.mkdir()
    np.save(d/'unit.npy', unit); np.save(d/'scan.npy', pts)
    np.savetxt(d/'scan.xyz', np.hstack([pts, np.ones_like(pts)]))          # extra columns (normals) are ignored
    trimesh.PointCloud(pts).export(d/'scan.ply')
    m = gt.copy(); m.vertices = m.vertices * SCALE + SHIFT
    m.export(d/'mesh.off'); m.export(d/'mesh.obj')
    r = reconstruct(d/'unit.npy', '-o', d/'unit.off', '-exp_name', 'tiny', *FAST, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    return d, pts

@pytest.mark.parametrize('src, dst', [('scan.npy', 'out.off'), ('scan.xyz', 'out.ply'), ('scan.ply', 'out.obj'), ('mesh.off', 'out2.ply'), ('mesh.obj', 'out2.off')])
def test_reconstruct_formats_and_the_input_coordinates(work, cloud, src, dst):
    d, pts = cloud
    r = reconstruct(d/src, '-o', d/dst, '-exp_name', 'tiny', *FAST, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    m = trimesh.load(d/dst, force='mesh', process=False)
    assert len(m.faces) > 0
    # the model's domain [-0.51, 0.51]^3 of the normalised input (a closing cap may lie half a cell of 64 beyond it), mapped back:
    # the box around the input's bounding-box centre
    inp = trimesh.load(d/src, process=False).vertices if src.startswith('mesh') else pts
    c, s = (inp.min(0) + inp.max(0)) / 2, np.ptp(inp, 0).max()
    assert (np.abs(m.vertices - c) <= (0.51 + 1.02 / 64 / 2) * s + 1e-4 * s).all()
    if src.startswith('scan'):   # the same points as unit.npy, moved and scaled: the same mesh, moved and scaled (the input is normalised first)
        unit = trimesh.load(d/'unit.off', process=False)
        np.testing.assert_allclose(m.vertices, unit.vertices * SCALE + SHIFT, rtol=0, atol=1e-5 * SCALE)

def test_reconstruct_with_a_checkpoint_file_and_few_points(work, cloud):
    d, pts = cloud
    np.save(d/'few.npy', pts[::125])                                        # 40 points, well spread
    best = __import__('json').loads((work/'experiments'/'tiny'/'val_min.json').read_text())['epoch']
    ck = work/'experiments'/'tiny'/'checkpoints'/f'checkpoint_epoch_{best}.tar'  # our checkpoints carry their config
    r = reconstruct(d/'few.npy', '-o', d/'few.off', '--model', ck, *FAST, cwd=work)
    assert 'fewer than the 64 the model takes: drawing 64 with replacement' in r.stderr, r.stderr
    assert r.returncode == 0 and len(trimesh.load(d/'few.off').faces) > 0, r.stdout + r.stderr

def test_reconstruct_bad_input(work, cloud):
    d, pts = cloud
    bad = work/'bad'; bad.mkdir()
    (bad/'empty.xyz').write_text('')
    p = pts.copy(); p[7] = np.nan; np.save(bad/'nan.npy', p)
    (bad/'scan.pcd').write_text('VERSION .7\n')
    cases = [(bad/'empty.xyz', 'empty.xyz: no points'), (bad/'nan.npy', '1 of 5000 points have NaN or infinite coordinates'),
             (bad/'scan.pcd', "unknown extension '.pcd'"), (bad/'missing.ply', 'missing.ply: no such file')]
    for src, message in cases:
        r = reconstruct(src, '-o', bad/'out.off', '-exp_name', 'tiny', cwd=work)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (src, r.stderr)
    r = reconstruct(d/'scan.npy', '-o', bad/'out.stl', '-exp_name', 'tiny', cwd=work)
    assert r.returncode == 2 and "unknown mesh extension '.stl'" in r.stderr, r.stderr
    r = reconstruct(bad/'nan.npy', '-o', bad/'out.off', '-exp_name', 'tiny', *FAST, '--drop_nonfinite', cwd=work)
    assert r.returncode == 0 and 'dropped 1 of 5000 points' in r.stderr, r.stdout + r.stderr
    assert not list(bad.glob('.*.partial'))

def test_reconstruct_a_model_that_never_predicts_inside(work, cloud):
    d, _ = cloud
    ck = sorted((work/'experiments'/'tiny'/'checkpoints').glob('*.tar'))[-1]
    state = torch.load(ck, map_location='cpu', weights_only=True)
    state['decoder_state_dict']['fc_out.bias'] = torch.full_like(state['decoder_state_dict']['fc_out.bias'], -1e3)
    torch.save(state, work/'never.tar')
    r = reconstruct(d/'scan.npy', '-o', work/'never.off', '--model', work/'never.tar', '-mise_res', 16, cwd=work)
    assert r.returncode == 1 and 'empty mesh: the occupancy never reaches 0.5' in r.stderr, r.stdout + r.stderr
    assert not (work/'never.off').exists()

def test_generate_human_scans(work):
    "-data_type human: every test_scan_*.ply of the folder, normalised as FAUST is, into generation/scans/<name>/"
    from airnets.datasets import read_split
    scans = work/'scans'; scans.mkdir()
    for i, obj in enumerate(read_split(work/'shapes'/'split.npz', 'test')[:2]):
        m = trimesh.load(next((work/'shapes'/obj).glob('*_scaled.off')), process=False)
        m.vertices = m.vertices * 1.7 + 0.3                     # metres, off-centre, like a scan
        m.export(scans/f'test_scan_{i:03d}.ply')
    r = generate('-exp_name', 'tiny', *FAST, '-data_type', 'human', '--data_root', scans, '--quiet', cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    best = __import__('json').loads((work/'experiments'/'tiny'/'val_min.json').read_text())['epoch']
    out = work/'experiments'/'tiny'/f'evaluation_{best}_@16x2'/'generation'/'scans'
    assert sorted(p.name for p in out.iterdir()) == ['test_scan_000', 'test_scan_001']
    d = np.load(out/'test_scan_000'/'data.npz')
    assert d['inputs'].shape == (64, 3) and float(d['scale']) > 1 and np.abs(d['inputs']).max() <= 0.5 + 1e-6

def test_generate_onet_data(work):
    "-data_type onet: the inputs come from ONet's pointcloud.npz (three test objects exported with airnets_prepare --onet)"
    import shutil
    from airnets.datasets import read_split
    from airnets.prepare import save_split
    root = work/'onet'
    objs = read_split(work/'shapes'/'split.npz', 'test')[:3]
    for o in objs: shutil.copytree(work/'shapes'/o, root/o)
    save_split(root/'split.npz', {'test': objs})
    r = subprocess.run([sys.executable, '-c', 'from airnets.prepare import prepare_cli; prepare_cli()', '--data_root', root, '--onet', '--quiet', '--workers', '0'],
                       capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    r = generate('-exp_name', 'tiny', '-mise_res', 12, '-mise_steps', 2, '--threshold', 0.3, '-data_type', 'onet', '--data_root', root, '--quiet', cwd=work)
    assert r.returncode == 0 and '3 meshes written' in r.stdout, r.stdout + r.stderr
    best = __import__('json').loads((work/'experiments'/'tiny'/'val_min.json').read_text())['epoch']
    out = work/'experiments'/'tiny'/f'evaluation_{best}_@12x2'/'generation'
    x = np.load(out/objs[0]/'data.npz')['inputs']
    onet_cloud = np.load(root/objs[0]/'pointcloud.npz')['points']
    assert x.shape == (64, 3) and max_nn_distance(x, onet_cloud) < 1e-6            # the inputs are points of pointcloud.npz

def test_reconstruct_with_the_shipped_weights(work, cloud):
    "no -exp_name and no --model: the default shipped weights (general); --model general names them, --model demo the other; the meshes lie on the input points"
    d, pts = cloud
    r = reconstruct(d/'scan.ply', '-o', d/'shipped.ply', '-mise_res', 16, '-mise_steps', 2, cwd=work)
    assert r.returncode == 0 and 'weights/general.pt' in r.stdout, r.stdout + r.stderr
    r2 = reconstruct(d/'scan.ply', '-o', d/'shipped2.ply', '-mise_res', 16, '-mise_steps', 2, '--model', 'general', cwd=work)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    m = trimesh.load(d/'shipped.ply', process=False)
    np.testing.assert_array_equal(m.vertices, trimesh.load(d/'shipped2.ply', process=False).vertices)
    r3 = reconstruct(d/'scan.ply', '-o', d/'demo.ply', '-mise_res', 32, '--model', 'demo', cwd=work)
    assert r3.returncode == 0 and 'weights/demo.pt' in r3.stdout, r3.stdout + r3.stderr
    from scipy.spatial import cKDTree
    # both shipped models have learned shapes: their surfaces lie near the points, both ways (mean distance < 4% of the object's size; demo
    # measured 1.4% and 2.6% at 128^3; a blob filling the bounding box is about 10% away)
    for mesh in (m, trimesh.load(d/'demo.ply', process=False)):
        assert cKDTree(pts).query(mesh.vertices)[0].mean() < 0.04 * SCALE and cKDTree(mesh.vertices).query(pts)[0].mean() < 0.04 * SCALE
    for args, message in ((['--model', 'nope'], "no shipped weights called 'nope'"), (['--model', 'demo', '-exp_name', 'tiny'], 'not both')):
        r = reconstruct(d/'scan.ply', '-o', d/'x.ply', *args, cwd=work)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr

def test_report_and_export_weights(work, cloud):
    "airnets_evaluate, airnets_report and airnets_export_weights on the tiny experiment, as make demo and make weights run them"
    best = __import__('json').loads((work/'experiments'/'tiny'/'val_min.json').read_text())['epoch']
    gen = work/'experiments'/'tiny'/f'evaluation_{best}_@16x2'/'generation'
    if not gen.is_dir():
        assert generate('-exp_name', 'tiny', *FAST, '--data_root', work/'shapes', '--quiet', cwd=work).returncode == 0
    r = run('airnets.evaluate:evaluate_cli', '-generation_path', gen, '--n_iou', 20000, '--n_surface', 5000, '--workers', 2, '--quiet', cwd=work)
    failed = [l for l in r.stdout.splitlines() + r.stderr.splitlines() if l.startswith('FAILED ')]
    assert r.returncode == (1 if failed else 0), r.stdout + r.stderr   # 1 exactly when an object is listed as failed
    g = run('airnets.evaluate:evaluate_gather_cli', '-generation_path', gen, cwd=work)
    assert g.returncode == (1 if failed else 0), g.stdout + g.stderr
    assert (gen.parent/'evaluation_results.md').is_file()
    r = run('airnets.report:report_cli', '-exp_name', 'tiny', '-generation_path', gen, '--n_gallery', 3, '--n_viewer', 4, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = work/'experiments'/'tiny'/'report'
    assert {'index.html', 'report.md', 'report.json', 'curves.png', 'gallery.png', 'viewer.html', 'plotly.min.js'} <= {p.name for p in rep.iterdir()}
    import json
    facts = json.loads((rep/'report.json').read_text())['facts']
    from airnets.evaluate import list_generated
    assert facts['objects'] == len(list_generated(gen)) >= 15 and facts['epochs'] == TRAIN['epochs'] and facts['best_epoch'] == best   # other tests add objects to this folder
    from airnets.evaluate import gather
    g = gather(gen)
    r = run('airnets.pretrained:export_weights_cli', '-exp_name', 'tiny', '-o', work/'tiny.pt', '--generation_path', gen, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    info = torch.load(work/'tiny.pt', weights_only=True)['info']
    assert info['epoch'] == best and abs(info['scores']['iou'] - g['overall']['iou']['mean']) < 1e-5
    d, _ = cloud
    r = reconstruct(d/'scan.npy', '-o', d/'from_export.off', '--model', work/'tiny.pt', *FAST, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    assert reconstruct(d/'scan.npy', '-o', d/'from_exp.off', '-exp_name', 'tiny', *FAST, cwd=work).returncode == 0
    np.testing.assert_allclose(trimesh.load(d/'from_export.off', process=False).vertices, trimesh.load(d/'from_exp.off', process=False).vertices, atol=1e-6 * SCALE)
    r = run('airnets.pretrained:export_weights_cli', '-exp_name', 'tiny', '-o', work/'bad.pt', '--generation_path', work/'experiments'/'tiny'/'evaluation_0_@16x2'/'generation', cwd=work)
    assert r.returncode == 2 and 'not a generation of checkpoint' in r.stderr, r.stderr
