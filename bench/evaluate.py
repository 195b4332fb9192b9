"""Evaluation: seconds per object for each metric of airnets.metrics, at the reference's sizes, and the agreement with
an independent implementation (point-cloud-utils) on the real meshes of ../shared/meshes.

What it measures, for each mesh of ../shared/meshes (normalised to the unit box; the "prediction" is the mesh simplified
to 5% of its faces and moved by 0.01 along x, so that every metric has something to measure), on one core:

* seconds for each step of `eval_mesh` at the reference's sizes: sampling 100,000 points with normals on each mesh,
  the two KD-tree nearest-neighbour queries with Chamfer-L1/L2, normal consistency and the F-scores (one pass:
  `pointcloud_metrics`), and the IoU on 1,000,000 uniform points (the inside test of both meshes, IF-Net's implicit
  waterproofing);
* the same metrics by point-cloud-utils (`independent_metrics`: its own sampling, KD-tree and fast winding numbers), the
  named alternative, timed in the same run, and the difference of each metric.

    python bench/evaluate.py [--quick] [--out table.md]

--quick uses 6 meshes and 200,000 IoU points. Without ../shared/meshes the script says so and stops.
"""
from __future__ import annotations

import argparse, os, statistics, sys, time
from pathlib import Path

os.environ.setdefault('OMP_NUM_THREADS', '1'); os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
sys.path.insert(0, str(Path(__file__).parent))
import numpy as np  # noqa: E402
from report import cpu_model, emit, render_table, warn_if_busy  # noqa: E402

MESHES = Path(__file__).resolve().parents[2]/'shared'/'meshes'

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='6 meshes, 200,000 IoU points')
    ap.add_argument('--out', type=Path, default=None, help='also write the report here')
    a = ap.parse_args()
    if not MESHES.is_dir(): print(f'bench/evaluate.py: {MESHES} is absent: nothing to measure'); return
    if hasattr(os, 'sched_setaffinity'): os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from airnets.geometry import load_mesh, normalize_mesh, occupancy, sample_surface
    from airnets.metrics import F_THRESHOLDS, independent_metrics, iou, pointcloud_metrics, uniform_points
    from airnets.mise import simplify_mesh
    load = warn_if_busy()
    n_surface, n_iou = 100_000, (200_000 if a.quick else 1_000_000)
    names = sorted(p.name for p in MESHES.iterdir() if p.suffix.lower() in ('.obj', '.ply', '.stl', '.off', '.glb'))
    if a.quick: names = names[:6]
    rows, times, diffs = [], {k: [] for k in ('sample', 'surface', 'iou', 'total', 'pcu')}, {k: [] for k in ('chamfer_l1', 'normals', 'f_score_10', 'iou')}
    for name in names:
        try: gt = normalize_mesh(load_mesh(MESHES/name))[0]
        except Exception as e: rows.append([name, f'skipped: {e}'] + [''] * 9); continue
        pred = simplify_mesh(gt, max(200, len(gt.faces) // 20)); pred.apply_translation([0.01, 0, 0])
        pts = uniform_points(n_iou, 3)
        t0 = time.perf_counter()
        pp, pn = sample_surface(pred, n_surface, 0); gp, gn = sample_surface(gt, n_surface, 1)
        t1 = time.perf_counter(); m = pointcloud_metrics(pp, pn, gp, gn)
        t2 = time.perf_counter(); m['iou'] = iou(occupancy(pred, pts, 'parity'), occupancy(gt, pts, 'parity'))
        t3 = time.perf_counter(); ref = independent_metrics(pred, gt, n_surface, pts)
        t4 = time.perf_counter()
        for k, v in zip(('sample', 'surface', 'iou', 'total', 'pcu'), (t1 - t0, t2 - t1, t3 - t2, t3 - t0, t4 - t3)): times[k].append(v)
        for k in diffs: diffs[k].append(m[k] - ref[k])
        rows.append([name, f'{len(gt.faces):,}', 'yes' if gt.is_watertight else 'no', f'{t1 - t0:.2f}', f'{t2 - t1:.2f}', f'{t3 - t2:.2f}', f'{t3 - t0:.2f}', f'{t4 - t3:.2f}',
                     f"{m['chamfer_l1']:.5f} / {ref['chamfer_l1']:.5f}", f"{m['f_score_10']:.4f} / {ref['f_score_10']:.4f}", f"{m['iou']:.4f} / {ref['iou']:.4f}"])
    med = lambda k: statistics.median(times[k]) if times[k] else float('nan')
    lines = [f'# Evaluation: seconds per object and agreement with point-cloud-utils ({len(names)} meshes of ../shared/meshes)', '',
             f'{cpu_model()}, one core; {n_surface:,} surface samples per mesh, {n_iou:,} IoU points; load average at start {load if load is not None else "n/a"}', '',
             render_table(['mesh', 'faces', 'watertight', 'sample s', 'Chamfer+NC+F s', 'IoU s', 'ours total s', 'point-cloud-utils s',
                           'Chamfer-L1 ours / pcu', 'F@1% ours / pcu', 'IoU ours / pcu'], rows), '',
             f"median seconds per object: sampling {med('sample'):.2f}, Chamfer + normal consistency + F-scores {med('surface'):.2f}, IoU {med('iou'):.2f}; "
             f"ours {med('total'):.2f} in all, point-cloud-utils {med('pcu'):.2f} ({med('pcu') / med('total'):.2f}x ours)", '',
             'largest |ours - pcu| over the meshes: ' + ', '.join(f'{k} {max(map(abs, v)):.4g}' for k, v in diffs.items() if v) +
             ' (IoU differences on open or multi-part meshes come from the two inside tests: ray parity with waterproofing against winding numbers)']
    emit('\n'.join(lines), a.out)

if __name__ == '__main__': main()
