"""The shipped weights on real meshes: `airnets_reconstruct` on every mesh of ../shared/meshes, surface points as input.

Each mesh is prepared as a training shape would be (airnets_prepare: normalised to a longest bounding-box edge of 1
and centred, made watertight where it is not, 30,000 surface samples), its surface samples are written to a point cloud
file (`points.npy`), and that file is reconstructed by `airnets_reconstruct` with the weights shipped in the package
(no -exp_name, no --model: the default), exactly as a user would run it on a scan. The mesh it writes is then evaluated
against the prepared ground truth by airnets_evaluate's code (IoU on 1M uniform points of the unit box, Chamfer-L1/L2,
normal consistency and F-score on 100k surface samples) and gathered into a table with one row per mesh.

    python bench/shared_meshes.py [--meshes ../shared/meshes] [--work bench/results/shared_meshes] [--model demo]

A mesh that airnets_prepare cannot use is listed as failed and the others go on. Prepared files and reconstructions
are kept in --work, so a second run skips what is done (--overwrite redoes the reconstructions). The table goes to
<work>/evaluation_results.md (and .csv, .pkl) and is printed; a summary with one row per mesh goes to --out
(bench/shared_meshes.md, committed). The mesh files themselves are linked, never copied.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from airnets.evaluate import evaluate_generation, gather, results_markdown, write_results  # noqa: E402
from airnets.files import save_npy, save_npz, write_atomic  # noqa: E402
from airnets.checkpoints import MESH_FILE  # noqa: E402
from airnets.generate import reconstruct_cli  # noqa: E402

MESH_SUFFIXES = ('.obj', '.ply', '.off', '.stl', '.glb', '.gltf')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--meshes', default=str(ROOT.parent/'shared'/'meshes'))
    p.add_argument('--work', default='bench/results/shared_meshes')
    p.add_argument('--model', default=None, help="a shipped model's name or a checkpoint file (default: the shipped demo)")
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--out', default='bench/shared_meshes.md', help='the summary table (markdown, committed)')
    a = p.parse_args()
    src = Path(a.meshes)
    files = sorted(f for f in src.iterdir() if f.suffix.lower() in MESH_SUFFIXES) if src.is_dir() else []
    if not files: sys.exit(f'shared_meshes: no meshes in {src}')
    work = Path(a.work).absolute()
    data = work/'data'
    for f in files:
        d = data/'shared'/f.stem
        d.mkdir(parents=True, exist_ok=True)
        link = d/('model' + f.suffix.lower())
        if not link.exists(): link.symlink_to(f.resolve())
    keys = [f'shared/{f.stem}' for f in files]
    if not (data/'split.npz').is_file():  # every mesh is a test object
        save_npz(data/'split.npz', train=np.array([], dtype='<U1'), val=np.array([], dtype='<U1'), test=np.array(keys))
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent/'airnets_prepare'), '--data_root', str(data), '--quiet', '--timeout', '600'])
    print(f'prepared in {time.perf_counter() - t0:.0f} s', flush=True)
    gen = work/'generation'
    failed, times = [], {}
    for key in keys:
        obj, out = data/key, gen/key
        surf = obj/'surface_30000_samples.npy'
        if not surf.is_file() or not any(obj.glob('*_scaled.off')): failed.append((key, 'not prepared')); continue
        if (out/MESH_FILE).is_file() and not a.overwrite: continue
        save_npy(out/'points.npy', np.load(surf).astype(np.float32))
        save_npz(out/'data.npz', inputs=np.load(surf).astype(np.float32), source=np.asarray(str(obj)))
        t = time.perf_counter()
        msg = io.StringIO()
        with contextlib.redirect_stdout(msg), contextlib.redirect_stderr(msg):
            rc = reconstruct_cli(str(out/'points.npy'), str(out/MESH_FILE), model=a.model)
        times[key] = time.perf_counter() - t
        if rc != 0:  # an empty reconstruction: evaluated as empty (IoU 0), as airnets_generate does
            write_atomic(out/MESH_FILE, 'OFF\n0 0 0\n')
        print(f'{key}: exit {rc}, {times[key]:.1f} s', flush=True)
    s = evaluate_generation(gen, workers=None, overwrite=a.overwrite, progress=False)
    g = gather(gen)
    write_results(g, work, title='The shipped weights on ../shared/meshes (airnets_reconstruct, surface points as input)')
    md = results_markdown(g, 'The shipped weights on ../shared/meshes')
    print(md)
    print('per mesh (IoU, Chamfer-L1 x100):')
    for r in sorted(g['rows'], key=lambda r: r['object']):
        print(f"  {r['object']:<40} {r['iou']:.3f}  {100 * r['chamfer_l1']:.3f}" if r.get('chamfer_l1') == r.get('chamfer_l1') else f"  {r['object']:<40} {r['iou']:.3f}  -")
    if failed: print('not evaluated:', ', '.join(f'{k} ({why})' for k, why in failed))
    o = g['overall']
    f = lambda v, d=3: '-' if v is None or v != v else f'{v:.{d}f}'
    lines = ['# The shipped weights on ../shared/meshes', '',
             f'`python bench/shared_meshes.py` ({time.strftime("%Y-%m-%d")}): `airnets_reconstruct` with the shipped model (`{a.model or "demo"}`, the default) on the 30,000 '
             'surface samples of each prepared mesh (the model draws its input from them), MISE 64 x 2; evaluated against the prepared ground truth '
             '(IoU on 1M uniform points, Chamfer-L1 and normal consistency on 100k surface samples, F-score at 1%), distances in units of the unit box.', '',
             f"Mean over {o['objects']} meshes ({len(failed)} not prepared, {o['empty']} empty): IoU {f(o['iou']['mean'])}, Chamfer-L1 {f(o['chamfer_l1']['mean'], 4)}, "
             f"NC {f(o['normals']['mean'])}, F@1% {f(o['f_score_10']['mean'])}; median IoU {f(o['iou']['median'])}, median Chamfer-L1 {f(o['chamfer_l1']['median'], 4)}.", '',
             '| mesh | IoU | Chamfer-L1 | NC | F@1% |', '|---|---|---|---|---|']
    lines += [f"| {r['object'].split('/', 1)[1]} | {f(r['iou'])} | {f(r.get('chamfer_l1'), 4)} | {f(r.get('normals'))} | {f(r.get('f_score_10'))} |" for r in sorted(g['rows'], key=lambda r: r['object'])]
    lines += [f'| {k.split("/", 1)[1]} | not prepared: {why} | | | |' for k, why in failed]
    write_atomic(a.out, '\n'.join(lines) + '\n')
    print(f'wrote {a.out}')
    if s.failed: print('evaluation failed:', s.failed)
    if times: print(f'reconstruction: {np.mean(list(times.values())):.1f} s per mesh on average')


if __name__ == '__main__':
    main()
