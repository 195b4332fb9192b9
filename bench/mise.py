"""Mesh extraction: MISE (airnets.mise, the Cython bookkeeping of csrc/_mise.pyx) against the dense grid, in one table.

What it measures, on the sphere of radius 0.3 as the occupancy function (a numpy signed distance, > 0 inside, used as
the logit; threshold 0), on one core (the process is pinned to one CPU and BLAS/OpenMP get one thread):

* MISE 64 x 2 (the 256^3 lattice) and 64 x 3 (512^3), each against the dense grid of the same lattice, the named
  alternative: nodes evaluated, seconds in the function, seconds of bookkeeping (everything but the function: the
  MISE cycle and `to_dense`, or the dense path's coordinates), marching cubes, and the ratios dense / MISE;
* the MISE bookkeeping alone, split into the query/update cycle and `to_dense` (into a fresh array, which pays the
  kernel's page faults for the big grid, and into a reused one, as `airnets_generate` does from the second shape on).

For scale, ONet's own Cython MISE (im2mesh/utils/libmise), timed on one core of this machine type before the package's
MISE was written, spends 1.21 s on bookkeeping for 64 -> 256 and 4.87 s for 64 -> 512; the package's goal was 0.3 s and
1.2 s. That code is not run here (its licence keeps it out of this repository), so those two figures are quoted, not
measured in the run.

The MISE mesh is checked to equal the dense one, array for array ("same mesh" column).

    python bench/mise.py [--quick] [--repeats N] [--out table.md]

--quick skips the dense 512^3 grid (135 million evaluations, the slowest part).
"""
from __future__ import annotations

import argparse, os, statistics, sys, time
from pathlib import Path

os.environ.setdefault('OMP_NUM_THREADS', '1'); os.environ.setdefault('OPENBLAS_NUM_THREADS', '1'); os.environ.setdefault('MKL_NUM_THREADS', '1')
sys.path.insert(0, str(Path(__file__).parent))
import numpy as np  # noqa: E402
from report import cpu_model, emit, render_table, warn_if_busy  # noqa: E402
from airnets.mise import MISE, dense_grid, grid_to_mesh, lattice_to_world, mise_grid  # noqa: E402

ONET_S = {2: 1.21, 3: 4.87}   # ONet's libmise bookkeeping, timed before the package's MISE existed (64 -> 256, 64 -> 512)
GOAL_S = {2: 0.3, 3: 1.2}    # the package's goal for the same bookkeeping

def sphere(p): return 0.3 - np.linalg.norm(p, axis=-1)

def bookkeeping(depth:int, values:dict, reuse:np.ndarray|None) -> tuple[float, float, float]:
    "seconds of the MISE cycle with a precomputed function (a dict lookup is not timed), to_dense fresh, to_dense reused"
    m, t_cycle = MISE(64, depth), 0.0
    t = time.perf_counter()
    while True:
        q = m.query()
        if not len(q): break
        t_cycle += time.perf_counter() - t
        v = values[depth](q, m.resolution)
        t = time.perf_counter(); m.update(q, v)
    t_cycle += time.perf_counter() - t
    t = time.perf_counter(); g = m.to_dense(np.float32); t_fresh = time.perf_counter() - t
    del g
    t = time.perf_counter(); m.to_dense(np.float32, out=reuse); t_reuse = time.perf_counter() - t
    return t_cycle, t_fresh, t_reuse

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='skip the dense 512^3 grid')
    ap.add_argument('--repeats', type=int, default=3, help='runs of the bookkeeping timing (the median is reported)')
    ap.add_argument('--out', type=Path, default=None, help='also write the report here')
    a = ap.parse_args()
    if hasattr(os, 'sched_setaffinity'): os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    load = warn_if_busy()
    rows, book = [], []
    values = {d: (lambda q, R: sphere(lattice_to_world(q, R))) for d in (2, 3)}
    for depth in (2, 3):
        R = 64 << depth
        gm, sm = mise_grid(sphere, 64, depth)
        t = time.perf_counter(); mm = grid_to_mesh(gm); mc_m = time.perf_counter() - t
        del gm
        row = [f'MISE 64 x {depth}', f'{R}^3', f'{sm.evaluated:,}', f'{sm.fraction:.2%}', f'{sm.seconds_function:.2f}',
               f'{sm.seconds_bookkeeping:.2f}', f'{mc_m:.2f}', f'{sm.seconds_total + mc_m:.2f}', '1.00x', '']
        rows.append(row)
        if a.quick and depth == 3:
            rows.append([f'dense {R}^3', f'{R}^3', f'{(R + 1) ** 3:,}', '100%', 'skipped (--quick)', '', '', '', '', ''])
        else:
            gd, sd = dense_grid(sphere, R)
            t = time.perf_counter(); md = grid_to_mesh(gd); mc_d = time.perf_counter() - t
            del gd
            same = np.array_equal(mm.vertices, md.vertices) and np.array_equal(mm.faces, md.faces)
            row[-1] = 'yes' if same else 'NO'
            rows.append([f'dense {R}^3 (alternative)', f'{R}^3', f'{sd.evaluated:,}', '100%', f'{sd.seconds_function:.2f}',
                         f'{sd.seconds_bookkeeping:.2f}', f'{mc_d:.2f}', f'{sd.seconds_total + mc_d:.2f}',
                         f'{(sd.seconds_total + mc_d) / (sm.seconds_total + mc_m):.1f}x slower', ''])
        reuse = np.empty((R + 1,) * 3, np.float32)
        runs = [bookkeeping(depth, values, reuse) for _ in range(a.repeats)]
        cyc, fresh, reused = (statistics.median(r[i] for r in runs) for i in range(3))
        book.append([f'64 -> {R}', f'{cyc:.3f}', f'{fresh:.3f}', f'{reused:.3f}', f'{cyc + fresh:.2f}', f'{cyc + reused:.2f}',
                     f'{GOAL_S[depth]}', f'{ONET_S[depth]} (quoted)', f'{ONET_S[depth] / (cyc + fresh):.1f}x'])
    lines = [f'# Mesh extraction: MISE against the dense grid (sphere r = 0.3, threshold 0)', '',
             f'{cpu_model()}, one core; numpy {np.__version__}; load average at start {load if load is not None else "n/a"}', '',
             render_table(['method', 'lattice', 'evaluated', 'of dense', 'function s', 'bookkeeping s', 'marching cubes s', 'total s', 'vs MISE', 'same mesh'], rows), '',
             f'MISE bookkeeping alone (no function cost), median of {a.repeats}: the query/update cycle and to_dense (float32)', '',
             render_table(['refinement', 'cycle s', 'to_dense fresh s', 'to_dense reused s', 'total s (fresh)', 'total s (reused)', 'goal s',
                           "ONet's libmise s", 'ONet / ours'], book)]
    emit('\n'.join(lines), a.out)

if __name__ == '__main__': main()
