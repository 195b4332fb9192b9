"""Data preparation (airnets.prepare) on the real meshes: seconds per mesh for each step, and the speed of the
inside/outside tests, in two tables.

What it measures:

* Steps: every mesh of `../shared/meshes` (or --meshes) is copied into a temporary data root as
  `<root>/real/<stem>/<file>`, and the pipeline steps run one after the other in this process (one core, no pool),
  at the sizes of the IF-Net pipeline unless told otherwise: `convert_to_scaled_off`, `sample_surface_step`
  (--n_surface, default 30 000 points) and `boundary_sampling` for sigma = 0.1 and 0.01 (--n_boundary, default
  100 000 points each, occupancy method 'auto'). The table gives, per step, the median, mean and maximum seconds
  per mesh over the meshes, and the slowest mesh; with --per_mesh, one row per mesh as well. Each step is timed
  once per mesh (the pipeline runs each step once per mesh too); the first mesh is run once before, untimed, so
  that imports and caches do not land on it.
* Occupancy: labelled points per second of `airnets.geometry.occupancy` with method 'parity' (IF-Net's implicit
  waterproofing: ray crossings counted through a 2D hash) and 'winding' (generalised winding number), on the
  σ = 0.01 boundary points of each mesh (--n_occupancy points, default 100 000), for the watertight meshes only
  (parity's answer is meaningless on open meshes; winding is timed on the same meshes for a fair comparison).
  Given as the median over meshes of points / second (best of --repeats runs per mesh), and the slowest mesh.

Run it with

    python bench/prep.py [--quick] [--per_mesh] [--n_surface N] [--n_boundary N] [--out table.md]

--quick takes every third mesh and 20 000 boundary points. Times are wall-clock on a possibly shared machine:
a load-average warning is printed when other work is running. Without the meshes folder the script says so
and exits with 2.
"""
from __future__ import annotations

import argparse, datetime, platform, shutil, statistics, sys, tempfile, time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not
from airnets.geometry import load_mesh, occupancy, occupancy_method, MESH_SUFFIXES  # noqa: E402
from report import cpu_model, emit, render_table as table, usable_cores, warn_if_busy  # noqa: E402
from airnets.prepare import (convert_to_scaled_off, sample_surface_step, boundary_sampling, list_objects,  # noqa: E402
                             scaled_mesh_path, boundary_file)

MESHES = Path(__file__).resolve().parents[2]/'shared'/'meshes'








def make_root(meshes: list[Path], root: Path) -> list[Path]:
    for p in meshes:
        d = root/'real'/p.stem
        d.mkdir(parents=True)
        shutil.copy(p, d/p.name)
    return list_objects(root)


def run_steps_timed(obj: Path, n_surface: int, n_boundary: int) -> dict:
    "Seconds per step for one object (None where a step failed: the error goes to stderr)"
    steps = [('scaled off', lambda: convert_to_scaled_off(obj)),
             (f'surface {n_surface:,}', lambda: sample_surface_step(obj, n_surface)),
             (f'boundary 0.1 ({n_boundary:,})', lambda: boundary_sampling(obj, 0.1, n_boundary)),
             (f'boundary 0.01 ({n_boundary:,})', lambda: boundary_sampling(obj, 0.01, n_boundary))]
    out = {}
    for name, f in steps:
        t = time.perf_counter()
        try: f()
        except Exception as e:
            print(f'  {obj.name}: {name} failed: {e}', file=sys.stderr)
            out[name] = None
            break
        out[name] = time.perf_counter() - t
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--meshes', type=Path, default=MESHES, help='folder of mesh files (default ../shared/meshes)')
    ap.add_argument('--n_surface', type=int, default=30000)
    ap.add_argument('--n_boundary', type=int, default=100000)
    ap.add_argument('--n_occupancy', type=int, default=100000)
    ap.add_argument('--repeats', type=int, default=3, help='occupancy runs per mesh and method (best counts)')
    ap.add_argument('--quick', action='store_true', help='every third mesh, 20 000 boundary points')
    ap.add_argument('--per_mesh', action='store_true', help='also print one row per mesh')
    ap.add_argument('--out', type=Path, help='also write the tables as markdown to this file')
    a = ap.parse_args(argv)
    if not a.meshes.is_dir():
        print(f'bench/prep.py: --meshes {a.meshes}: no such folder', file=sys.stderr)
        return 2
    files = sorted(p for p in a.meshes.iterdir() if p.suffix.lower() in MESH_SUFFIXES)
    if a.quick: files, a.n_boundary, a.n_occupancy = files[::3], 20000, 20000
    load = warn_if_busy()
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        objs = make_root(files, Path(d)/'data')
        with tempfile.TemporaryDirectory() as w:  # warm-up, untimed
            run_steps_timed(make_root(files[:1], Path(w))[0], 1000, 1000)
        per = {}
        for o in objs:
            print(f'  {o.name} ...', file=sys.stderr, flush=True)
            per[o.name] = run_steps_timed(o, a.n_surface, a.n_boundary)
        step_names = max((list(v.keys()) for v in per.values()), key=len)
        rows = []
        for s in step_names:
            t = {k: v[s] for k, v in per.items() if v.get(s) is not None}
            if not t: continue
            slow = max(t, key=t.get)
            rows.append([s, f'{statistics.median(t.values()):.3f}', f'{statistics.mean(t.values()):.3f}',
                         f'{t[slow]:.3f}', slow, f'{len(t)}/{len(per)}'])
        total = {k: sum(x for x in v.values() if x is not None) for k, v in per.items()}
        rows.append(['all steps', f'{statistics.median(total.values()):.3f}', f'{statistics.mean(total.values()):.3f}',
                     f'{max(total.values()):.3f}', max(total, key=total.get), ''])
        text = [f'# Data preparation on {len(per)} real meshes ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC})', '',
                f'- CPU: {cpu_model()}, {usable_cores()} usable cores; one process, one object at a time'
                + ('' if load is None else f'; load average {load:.2f} at the start'),
                f'- Python {platform.python_version()}, numpy {np.__version__}', '',
                '## Seconds per mesh, per step', '',
                table(['step', 'median s', 'mean s', 'max s', 'slowest mesh', 'meshes'], rows), '']
        if a.per_mesh:
            text += ['', table(['mesh', *step_names], [[k, *(('failed' if v.get(s) is None else f'{v[s]:.3f}') for s in step_names)]
                                                     for k, v in per.items()]), '']
        # occupancy throughput on the watertight meshes
        occ_rows, speed = [], {'parity': {}, 'winding': {}}
        for o in objs:
            if scaled_mesh_path(o) is None or not (o/boundary_file(0.01)).exists(): continue
            mesh = load_mesh(scaled_mesh_path(o))
            if occupancy_method(mesh) != 'parity': continue
            with np.load(o/boundary_file(0.01), allow_pickle=False) as z: pts = z['points']
            pts = np.resize(pts, (a.n_occupancy, 3))
            for m in ('parity', 'winding'):
                best = min(_timed(lambda: occupancy(mesh, pts, method=m)) for _ in range(a.repeats))
                speed[m][o.name] = len(pts) / best
        for m, v in speed.items():
            if not v: continue
            slow = min(v, key=v.get)
            occ_rows.append([m, f'{statistics.median(v.values()):,.0f}', f'{v[slow]:,.0f}', slow, len(v)])
        text += ['## Occupancy: labelled points per second', '',
                 table(['method', 'median points/s', 'slowest points/s', 'slowest mesh', 'watertight meshes'], occ_rows), '',
                 f'- {a.n_occupancy:,} points per mesh (the σ = 0.01 boundary points), best of {a.repeats} runs; the '
                 'time includes any per-mesh set-up (hash or tree building) of the method.',
                 f'- Whole benchmark: {time.perf_counter() - t_all:.1f} s wall time.', '']
    emit('\n'.join(text), a.out)
    return 0


def _timed(f) -> float:
    t = time.perf_counter(); f(); return time.perf_counter() - t


if __name__ == '__main__':
    sys.exit(main())
