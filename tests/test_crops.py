"""Local reconstruction end to end with the shipped general model: equivariance to translation and scale, one connected
surface from a cloud with a dense and a sparse half, closed output without unsupported components, millions of points
with bounded memory, and the surface snapped onto the points. The dense-and-sparse cloud needs the judge (enclosed regions
no crop reaches decided by the global read; the rims' vote called the inside of the dense half outside) and a third scale
(the sparse half's crops are starved at two): with two scales and the rims it gave 10 pieces, the sparse half swollen."""
import os, resource, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from airnets.pretrained import pretrained_names

# slow: each test reconstructs tens of thousands of points crop by crop with the general model (15 to 30 s apiece on 2 cores)
pytestmark = [pytest.mark.slow, pytest.mark.skipif('general' not in pretrained_names(), reason='SKIP: no shipped general weights (airnets/weights/general.pt)')]
ENV = {**os.environ, 'OMP_NUM_THREADS': '2'}

@pytest.fixture(scope='module')
def general():
    from airnets.generate import Generator
    from airnets.pretrained import load_pretrained
    t = load_pretrained('general', 'cpu')
    return t, Generator(t.model, 'mise', 16, 2)

def box_cloud(n, seed=0):
    "n points on the surface of a 0.8 x 0.5 x 0.3 box with rounded edges, a shape of no training class"
    m = trimesh.creation.box((0.8, 0.5, 0.3))
    return np.asarray(m.sample(n, seed=seed), np.float64)

def reconstruct(general, pts, **kw):
    from airnets.generate import reconstruct_points
    t, gen = general
    return reconstruct_points(pts, gen, t.config, **kw)[0]

def test_equivariant_to_translation_and_scale(general):
    """The field and its extraction commute with moving and scaling the cloud to rounding; the snap onto the points to
    2e-4 of the scale: its weights are continuous at both edges, but a point's closest point on the mesh jumps where two
    faces are equally near, under rounding either one, and moves the vertices near it by a fraction of its offset
    (measured in two runs: 7 of 31,296 coordinates, at most 1.5e-5; 1 coordinate, 5.9e-5; before the edges were made
    continuous, up to 94 vertices and 6e-5)"""
    pts = box_cloud(4000)
    s, T = 37.5, np.array([1e3, -250.0, 12.0])
    for snap, tol in ((False, 1e-6), (True, 2e-4)):
        a = reconstruct(general, pts, snap=snap)
        b = reconstruct(general, pts * s + T, snap=snap)
        assert len(a.faces) > 0 and np.array_equal(a.faces, b.faces)
        np.testing.assert_allclose(b.vertices, a.vertices * s + T, atol=tol * s)

def test_dense_and_sparse_halves_give_one_surface(general):
    "Half of the box sampled 20 times more densely than the other half: crops of very different sizes meet, the surface stays one piece (on airnets_reconstruct's own grid)"
    from airnets.generate import Generator, mise_grid
    pts = box_cloud(40_000, 1)
    keep = (pts[:, 0] < 0) | (np.random.default_rng(0).random(len(pts)) < 0.05)
    t, _ = general
    m = reconstruct((t, Generator(t.model, 'mise', *mise_grid(t.config, pts[keep]))), pts[keep])
    parts = m.split(only_watertight=False)
    print(f'{keep.sum()} points: {len(parts)} component(s), watertight {m.is_watertight}, bounds {m.bounds.round(3).tolist()}')
    assert len(parts) == 1
    assert m.is_watertight
    gt = trimesh.creation.box((0.8, 0.5, 0.3))
    q = np.random.default_rng(0).uniform(-0.5, 0.5, (50_000, 3))
    a, b = gt.contains(q), m.contains(q)
    iou = (a & b).sum() / (a | b).sum()
    print(f'IoU {iou:.3f}')
    assert iou > 0.9   # solid, not a hollow shell (three scales with the rims deciding instead of the judge: 0.62)

def test_box_is_closed_and_has_no_stray_components(general):
    m = reconstruct(general, box_cloud(3000, 2))
    assert len(m.split(only_watertight=False)) == 1 and m.is_watertight
    gt = trimesh.creation.box((0.8, 0.5, 0.3))
    d = np.abs(trimesh.proximity.signed_distance(gt, m.vertices[::10]))
    assert np.median(d) < 0.02, np.median(d)   # the surface lies on the box

def test_surface_moves_onto_the_points(general):
    "By default a crops model's surface is snapped onto the input points: nearer to them, the same closed mesh otherwise"
    pts = box_cloud(3000, 2)
    plain, snapped = reconstruct(general, pts, snap=False), reconstruct(general, pts)
    gap = lambda m: trimesh.proximity.closest_point(m, pts)[1].mean()
    print(f'mean distance of the points to the surface: {gap(plain):.4f} as extracted, {gap(snapped):.4f} snapped')
    assert gap(snapped) < gap(plain) / 1.5
    assert np.array_equal(snapped.faces, plain.faces) and snapped.is_watertight

@pytest.mark.slow
def test_command_takes_two_million_points(tmp_path):
    "airnets_reconstruct --model general takes all of 2,000,000 points and stays within a bounded memory"
    pts = box_cloud(2_000_000, 3).astype(np.float32)
    np.save(tmp_path/'big.npy', pts)
    r = subprocess.run([str(Path(sys.executable).parent/'airnets_reconstruct'), str(tmp_path/'big.npy'), '-o', str(tmp_path/'big.ply'),
                        '--model', 'general', '-mise_res', '16', '-mise_steps', '2'], capture_output=True, text=True, env=ENV, timeout=900)
    assert r.returncode == 0, r.stderr
    assert 'general' in r.stdout and '2000000 points' in r.stdout, r.stdout
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20   # GiB (ru_maxrss is in KiB on Linux)
    print(r.stdout.strip(), f'peak RSS {peak:.2f} GiB')
    assert peak < 3.0
