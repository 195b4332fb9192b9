"""Real scans: the shipped AIR-Net models against Open3D's screened Poisson, on point clouds drawn from the real meshes of ../shared/meshes.

Each mesh of ../shared/meshes is prepared once (airnets_convert_to_scaled_off: centred, longest bounding-box edge 1, the
same `<data>/shared/<name>/` layout as bench/shared_meshes.py, whose prepared folder is reused when it exists). Three
inputs are drawn uniformly on each prepared surface, with a seed fixed per mesh and setting, and written as `.npy`
point clouds:

    a: 300 points, no noise      b: 3000 points, Gaussian noise of std 0.005      c: 30,000 points, no noise

Every method reads that file and writes a mesh, in a subprocess of its own (timed, per-object timeout, peak RSS):

    general   airnets_reconstruct <cloud> -o <mesh> --model general   (the shipped general model; "not available" without
              airnets/weights/general.pt)
    demo      airnets_reconstruct <cloud> -o <mesh> --model demo      (MISE at airnets_reconstruct's defaults)
    poisson   Open3D: normals from the 20 nearest neighbours, oriented by consistent tangent planes (20), screened
              Poisson at depth 8, no density trimming (--poisson_trim q removes the vertices below the q-quantile)

A failed, timed-out or empty reconstruction is kept as an empty mesh (IoU 0, F-score 0, no Chamfer) and the run goes on.
Each mesh is scored by airnets.evaluate.evaluate_object (airnets.metrics.eval_mesh, as airnets_evaluate does): Chamfer-L1
and F-score at 1% on 100k surface samples each way for every mesh, IoU on --iou_points uniform points of the unit box
only where the prepared ground truth is watertight (elsewhere inside is not defined and the IoU is left out). Each output
mesh is also counted: connected components, watertight or not, open (boundary) edges.

    python bench/real_scans.py [--meshes ../shared/meshes] [--work bench/results/real_scans] [--data DIR]
                               [--settings a,b,c] [--methods general,demo,poisson] [--limit N] [--timeout 900]
                               [--iou_points 100000] [--poisson_depth 8] [--poisson_trim 0] [--figure 3]
                               [--overwrite] [--out bench/real_scans.md] [--weights LABEL=FILE ...]
                               [--flags "LABEL=FLAGS" ...]

--weights LABEL=FILE (repeatable) adds a method LABEL that runs `airnets_reconstruct <cloud> -o <mesh> --model FILE`: a
candidate weights file (an exported model, a training checkpoint) measured beside the shipped ones before it ships.
--flags "LABEL=FLAGS" (repeatable) adds airnets_reconstruct flags to the command of a method named by --weights, e.g.
`--weights thr6=airnets/weights/general.pt --flags "thr6=--threshold 0.6"` measures an inference setting of the shipped
general model as its own method.
--limit N takes the first N meshes (for development). Inputs, meshes, per-object run records (run.json) and scores
(eval.json) stay in --work: a second run skips what is there, --overwrite redoes the reconstructions and scores.
The tables (one per setting: method, meshes, mean and median IoU, mean Chamfer-L1, mean F@1%, seconds per object, mean
components, watertight share, empty or failed, peak RSS) are printed and written atomically to --out, with the per-object
rows in the JSON beside it (same name, .json) and a figure (same name, .png): for a few meshes, one row per setting with
the input points, each method's mesh and the ground truth.

Open3D is a bench-only dependency: when `import open3d` fails it is installed here with pip into this interpreter's
environment (never by `make test`); on Debian it also needs libusb-1.0 (installed with apt-get when root). Without
../shared/meshes the script says so and exits 0.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SETTINGS = {'a': dict(points=300, noise=0.0), 'b': dict(points=3000, noise=0.005), 'c': dict(points=30_000, noise=0.0)}
METHODS = ('general', 'demo', 'poisson')
AIRNET_MODELS = ('general', 'demo')  # shipped weights, run through airnets_reconstruct --model <name>
RUN_FILE = 'run.json'  # beside each mesh: exit code, seconds, peak RSS, timeout, mesh counts


def setting_label(s: str) -> str:
    c = SETTINGS[s]
    return f"{c['points']:,} points, " + (f"Gaussian noise std {c['noise']:g}" if c['noise'] else 'no noise')


# ---------------------------------------------------------------------------------------------------------------------
# the Poisson worker: `python bench/real_scans.py _poisson <cloud.npy> <mesh.off> ...`, run as a subprocess (its own
# peak RSS; a crash in native code stays there). Imports nothing heavy: no torch.

def poisson_worker(argv: list) -> int:
    ap = argparse.ArgumentParser(prog='real_scans.py _poisson', description='Open3D screened Poisson on one .npy point cloud')
    ap.add_argument('cloud')
    ap.add_argument('mesh')
    ap.add_argument('--knn', type=int, default=20)
    ap.add_argument('--depth', type=int, default=8)
    ap.add_argument('--trim', type=float, default=0.0, help='remove the vertices below this quantile of the density (0: none)')
    a = ap.parse_args(argv)
    import open3d as o3d
    import trimesh
    from airnets.files import write_atomic
    t = time.perf_counter()
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.load(a.cloud).astype(np.float64)))
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(a.knn))
    pcd.orient_normals_consistent_tangent_plane(a.knn)
    mesh, density = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=a.depth)
    if a.trim > 0:
        density = np.asarray(density)
        mesh.remove_vertices_by_mask(density < np.quantile(density, a.trim))
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.triangles)
    if len(f) == 0:
        print(f'{a.cloud}: Poisson gave an empty mesh', file=sys.stderr)
        return 1
    write_atomic(a.mesh, trimesh.Trimesh(v, f, process=False).export(file_type='off'))
    print(f'{a.mesh}: {len(v)} vertices, {len(f)} faces from {len(pcd.points)} points ({time.perf_counter() - t:.1f} s)')
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# set-up: Open3D (bench-only) and the shipped models

def ensure_open3d() -> str | None:
    "None when `import open3d` works (after installing what is missing where we can), else why not"
    ld = shutil.which('ldconfig') or '/sbin/ldconfig'
    if sys.platform == 'linux' and os.path.exists(ld):
        libs = subprocess.run([ld, '-p'], capture_output=True, text=True).stdout
        if 'libusb-1.0' not in libs:
            if os.geteuid() == 0 and shutil.which('apt-get'):
                print('real_scans: Open3D needs libusb-1.0: apt-get install -y libusb-1.0-0', flush=True)
                cmd = ['apt-get', 'install', '-y', '-q', 'libusb-1.0-0']
                if subprocess.run(cmd).returncode != 0:
                    subprocess.run(['apt-get', 'update', '-q']); subprocess.run(cmd)
            else:
                print('real_scans: Open3D needs libusb-1.0, which is missing: run `sudo apt-get install -y libusb-1.0-0`', flush=True)

    def probe():
        return subprocess.run([sys.executable, '-c', 'import open3d'], capture_output=True, text=True)
    r = probe()
    if r.returncode != 0 and 'No module named' in r.stderr:
        print(f'real_scans: Open3D is not installed: {sys.executable} -m pip install open3d (a bench-only dependency)', flush=True)
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', 'open3d'])
        r = probe()
    if r.returncode == 0: return None
    lines = r.stderr.strip().splitlines()
    return 'import open3d failed: ' + (lines[-1] if lines else f'exit {r.returncode}')


def available_methods(methods: list, weights: dict | None = None) -> dict:
    "method -> None (available) or the reason it is not; `weights` (label -> file) are candidate files, checked by the caller"
    from airnets.pretrained import WEIGHTS_DIR
    out = {}
    for m in methods:
        if m in (weights or {}): out[m] = None
        elif m in AIRNET_MODELS: out[m] = None if (WEIGHTS_DIR/f'{m}.pt').is_file() else f'not available: no airnets/weights/{m}.pt'
        else: out[m] = ensure_open3d()
    return out


# ---------------------------------------------------------------------------------------------------------------------
# the meshes: linked into <data>/shared/<name>/ and normalised (the layout of bench/shared_meshes.py)

def mesh_files(src: Path, limit: int | None) -> list:
    from shared_meshes import MESH_SUFFIXES  # the formats the other bench takes
    found = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
    return found[:limit] if limit else found


def prepare_meshes(files: list, data: Path, timeout: float) -> list:
    "Link each file into its object folder and write the scaled .off where missing; the folders, in order"
    from airnets.prepare import scaled_mesh_path
    folders = []
    for f in files:
        obj = data/'shared'/f.stem
        obj.mkdir(parents=True, exist_ok=True)
        target = obj/f'model{f.suffix.lower()}'
        if not (target.exists() or target.is_symlink()): target.symlink_to(f.resolve())
        folders.append(obj)
    if any(scaled_mesh_path(o) is None for o in folders):
        t = time.perf_counter()
        cmd = [str(Path(sys.executable).parent/'airnets_convert_to_scaled_off'), '--data_root', str(data), '--quiet', '--timeout', str(timeout)]
        subprocess.run(cmd)
        print(f'prepared in {time.perf_counter() - t:.0f} s', flush=True)
    return folders


def draw_cloud(gt, name: str, setting: str, path: Path) -> np.ndarray:
    "The setting's input for one mesh: uniform surface samples (seeded by mesh and setting), plus the noise; written to path"
    from airnets.files import save_npy
    from airnets.geometry import sample_surface
    c = SETTINGS[setting]
    rng = np.random.default_rng([zlib.crc32(name.encode()), ord(setting)])
    pts, _ = sample_surface(gt, c['points'], rng)
    if c['noise']: pts = pts + rng.normal(0.0, c['noise'], pts.shape)
    pts = pts.astype(np.float32)
    save_npy(path, pts)
    return pts


# ---------------------------------------------------------------------------------------------------------------------
# one reconstruction: a timed subprocess, then the output mesh counted

# Run by a small interpreter between this process and the measured one: a child forked straight from this process
# (torch imported, some hundred MB) would carry this process's resident high-water mark into its own ru_maxrss.
PEAK_RSS = ('import resource, subprocess, sys\n'
            'rc = subprocess.run(sys.argv[2:]).returncode\n'
            'open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n'
            'sys.exit(rc if rc >= 0 else 128 - rc)\n')


def run_timed(cmd: list, timeout: float, log: Path) -> dict:
    "Run cmd (in its own process group) with a time limit: exit code, wall seconds, its peak RSS (MB), timed out"
    cmd, rss = [str(c) for c in cmd], log.with_name('peak_rss_kb')
    log.parent.mkdir(parents=True, exist_ok=True)
    rss.unlink(missing_ok=True)
    timed_out = False
    with open(log, 'w') as f:
        f.write('$ ' + shlex.join(cmd) + '\n'); f.flush()
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, '-S', '-c', PEAK_RSS, str(rss), *cmd], stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try: p.wait(timeout)
        except subprocess.TimeoutExpired: timed_out = True
        finally:
            if p.poll() is None:  # timed out or interrupted: the whole group goes
                os.killpg(p.pid, signal.SIGKILL); p.wait()
        seconds = time.perf_counter() - t
    kb = rss.read_text().strip() if rss.is_file() else ''
    rss.unlink(missing_ok=True)
    return dict(rc=p.returncode, seconds=seconds, peak_rss_mb=int(kb) / 1024 if kb.isdigit() else None, timed_out=timed_out)


def mesh_counts(path: Path) -> dict:
    "Faces, connected components, watertight, open (boundary) edges of a mesh file (vertices merged first)"
    import trimesh
    m = trimesh.load(path, force='mesh', process=True)
    if len(getattr(m, 'faces', [])) == 0: return dict(vertices=0, faces=0, components=0, watertight=False, open_edges=0)
    open_edges = len(trimesh.grouping.group_rows(m.edges_sorted, require_count=1))
    return dict(vertices=len(m.vertices), faces=len(m.faces), components=int(m.body_count), watertight=bool(m.is_watertight), open_edges=open_edges)


def reconstruct(method: str, cloud: Path, out: Path, a) -> dict:
    "Run one method on one cloud into out/<MESH_FILE>; an empty mesh is written where it fails; the run record"
    from airnets.files import write_atomic
    from airnets.checkpoints import MESH_FILE
    mesh = out/MESH_FILE
    for stale in (mesh, out/'eval.json', out/'eval.pkl'): stale.unlink(missing_ok=True)
    model = a.weights_files.get(method, method)  # a candidate's file, or a shipped model's name
    if method in AIRNET_MODELS or method in a.weights_files:
        cmd = [Path(sys.executable).parent/'airnets_reconstruct', cloud, '-o', mesh, '--model', model, *a.method_flags.get(method, [])]
    else: cmd = [sys.executable, Path(__file__).resolve(), '_poisson', cloud, mesh, '--depth', a.poisson_depth, '--trim', a.poisson_trim]
    r = run_timed(cmd, a.timeout, out/'reconstruct.log')
    ok = r['rc'] == 0 and mesh.is_file()
    r['status'] = 'ok' if ok else ('timed out' if r['timed_out'] else f"failed (exit {r['rc']})")
    if not ok: write_atomic(mesh, 'OFF\n0 0 0\n')  # scored as empty: IoU 0, as airnets_generate does
    try: r.update(mesh_counts(mesh))
    except Exception as e:  # an unreadable mesh: scored as whatever the evaluator makes of it
        r.update(status=f'unreadable mesh ({type(e).__name__})', faces=None)
    if ok and r.get('faces') == 0: r['status'] = 'empty'
    write_atomic(out/RUN_FILE, json.dumps(r, indent=1))
    return r


def score(out: Path, key: str, data: Path, a) -> dict | None:
    "The object's eval.json, computed by airnets.evaluate.evaluate_object where missing; None where that fails"
    from airnets.checkpoints import EVAL_FILE
    from airnets.evaluate import evaluate_object, read_eval
    if (out/EVAL_FILE).is_file() and not a.overwrite:
        try: return read_eval(out/EVAL_FILE)
        except ValueError: pass
    try: return evaluate_object(out, key, 'ifnet', data, n_iou=a.iou_points)
    except Exception as e:
        print(f'  evaluation failed: {type(e).__name__}: {e}', flush=True)
        return None


def num(v) -> float | None:
    "A metric as JSON wants it: NaN and None are null"
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


# ---------------------------------------------------------------------------------------------------------------------
# tables, figure, report

def summarize(rows: list) -> dict:
    "The table row of one method in one setting"
    def mean(key, rs=rows): v = [r[key] for r in rs if r.get(key) is not None]; return float(np.mean(v)) if v else None
    ious = [r['iou'] for r in rows if r.get('iou') is not None]
    scored = [r for r in rows if r.get('scored')]
    made = [r for r in rows if r.get('faces')]
    return dict(meshes=len(rows), iou_meshes=len(ious), iou_mean=float(np.mean(ious)) if ious else None,
                iou_median=float(np.median(ious)) if ious else None, chamfer_l1_mean=mean('chamfer_l1', scored), f_score_10_mean=mean('f_score_10', scored),
                seconds_mean=mean('seconds'), components_mean=mean('components', made), open_edges_mean=mean('open_edges', made),
                watertight=sum(bool(r.get('watertight')) for r in rows), empty=sum(not r.get('faces') for r in rows),
                failed=sum(r.get('status') not in ('ok', 'empty') for r in rows), unscored=len(rows) - len(scored),
                peak_rss_mb_max=max((r['peak_rss_mb'] for r in rows if r.get('peak_rss_mb')), default=None))


def fmt(v, digits=3) -> str:
    return '-' if v is None else f'{v:.{digits}f}'


def setting_table(s: str, summary: dict, availability: dict) -> str:
    from report import render_table
    head = ['method', 'meshes', 'mean IoU', 'median IoU', 'mean Chamfer-L1', 'mean F@1%', 's/object', 'mean components',
            'mean open edges', 'watertight share', 'empty / failed', 'peak RSS (MB)']
    rows = []
    for m, why in availability.items():
        if why: rows.append([m, why, *[''] * (len(head) - 2)]); continue
        t = summary[s][m]
        rows.append([m, str(t['meshes']), fmt(t['iou_mean']), fmt(t['iou_median']), fmt(t['chamfer_l1_mean'], 4), fmt(t['f_score_10_mean']),
                     fmt(t['seconds_mean'], 1), fmt(t['components_mean'], 1), fmt(t.get('open_edges_mean'), 1), f"{t['watertight'] / max(t['meshes'], 1):.2f}",
                     f"{t['empty']} / {t['failed']}", fmt(t['peak_rss_mb_max'], 0)])
    return render_table(head, rows)


def figure(picks: list, settings: list, methods: list, work: Path, data: Path, path: Path):
    "One row per (mesh, setting): input points, each method's mesh, the ground truth; written atomically as PNG"
    import io
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import trimesh
    from airnets.checkpoints import EVAL_FILE
    from airnets.files import write_atomic
    from airnets.checkpoints import MESH_FILE
    from airnets.prepare import load_scaled_mesh
    from airnets.report import draw_mesh, draw_points
    ncol, nrow, size = len(methods) + 2, len(picks) * len(settings), 2.0
    fig = plt.figure(figsize=(ncol * size, nrow * size))
    i = 0
    for name in picks:
        gt = load_scaled_mesh(data/'shared'/name)
        for s in settings:
            cloud = np.load(work/'inputs'/s/f'{name}.npy')
            draw_points(fig.add_subplot(nrow, ncol, i * ncol + 1, projection='3d'), cloud, box=1.0, title=f'{name} ({s}): {len(cloud):,} points')
            for j, m in enumerate(methods):
                out = work/'generation'/s/m/'shared'/name
                ax = fig.add_subplot(nrow, ncol, i * ncol + j + 2, projection='3d')
                ev = json.loads((out/EVAL_FILE).read_text()) if (out/EVAL_FILE).is_file() else {}
                label = m + ('' if ev.get('chamfer_l1') is None else f" CD-L1 {100 * ev['chamfer_l1']:.2f}e-2")
                if (out/MESH_FILE).is_file(): draw_mesh(ax, trimesh.load(out/MESH_FILE, force='mesh', process=False), box=1.0, title=label)
                else: ax.set_axis_off(); ax.set_title(f'{m}: missing', fontsize=8)
            draw_mesh(fig.add_subplot(nrow, ncol, i * ncol + ncol, projection='3d'), gt, (0.7, 0.7, 0.7), box=1.0, title='ground truth')
            i += 1
    fig.subplots_adjust(0, 0, 1, 1 - 0.3 / (nrow * size), 0, 0.3 / size)  # room for each row's titles
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=90)
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def command_line() -> str:
    threads = os.environ.get('OMP_NUM_THREADS')
    return ('' if threads is None else f'OMP_NUM_THREADS={threads} ') + 'python bench/real_scans.py ' + shlex.join(sys.argv[1:])


def markdown(doc: dict, availability: dict) -> str:
    mc = doc['machine']
    lines = ['# Real scans: the shipped AIR-Net models against screened Poisson', '',
             f"`{doc['command'].strip()}` ({doc['date']}, {mc['host']}: {mc['cores']} cores, {mc['cpu']}"
             + ('' if mc['load'] is None else f", load average {mc['load']:.1f} at the start") + ').', '',
             f"Point clouds drawn uniformly on the {doc['meshes']} meshes of `../shared/meshes` (normalised to a longest bounding-box edge of 1, "
             'seeded per mesh and setting). `general` and `demo`: `airnets_reconstruct <cloud> -o <mesh> --model <name>` at its defaults '
             '(MISE grid: 64 x 2 for the global `demo`, which draws its own input size, training.pc_samples, from the cloud; for the crops '
             'model `general`, refined until a cell is about the point spacing, 128 to 256 cells, with every input point used)'
             + ''.join(f"; `{k}`: the same with `--model {v}`" for k, v in doc['options'].get('weights', {}).items())
             + ''.join(f"; `{k}` with `{' '.join(v)}`" for k, v in doc['options'].get('flags', {}).items()) + '. `poisson`: Open3D, normals from the '
             f"20 nearest neighbours oriented by consistent tangent planes, screened Poisson at depth {doc['options']['poisson_depth']}"
             + (', no density trimming' if not doc['options']['poisson_trim'] else f", vertices below the {doc['options']['poisson_trim']:g}-quantile of the density removed") + '. '
             'Each reconstruction runs in its own process: s/object is its wall time (start-up and model loading included), peak RSS its maximum '
             f"resident memory; time limit {doc['options']['timeout']:g} s per object, a failure or timeout is scored as an empty mesh. "
             "Scores by airnets' evaluator (eval_mesh): Chamfer-L1 (unit box) and F-score at 1% on 100k surface samples each way, over the "
             f"non-empty meshes for Chamfer and all meshes for F (an empty mesh scores 0); IoU on {doc['options']['iou_points']:,} uniform points "
             'of the unit box, only over the meshes whose prepared ground truth is watertight (an empty mesh scores 0). Components, open edges (edges of one face only), watertight: '
             'of each output mesh after merging coincident vertices.', '']
    for s in doc['settings']:
        k = next((t['iou_meshes'] for t in doc['summary'][s].values()), 0)
        lines += [f'## {s}: {setting_label(s)}', '', f"IoU over the {k} of {doc['meshes']} meshes with a watertight ground truth.", '',
                  setting_table(s, doc['summary'], availability), '']
    lines += [f"![input, methods and ground truth]({Path(doc['figure']).name})" if doc.get('figure') else 'No figure.', '',
              f"Per-object rows (run record, mesh counts, scores): `{Path(doc['json']).name}`.", '']
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------------------------------

def main():
    if len(sys.argv) > 1 and sys.argv[1] == '_poisson': sys.exit(poisson_worker(sys.argv[2:]))
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--meshes', default=str(ROOT.parent/'shared'/'meshes'))
    p.add_argument('--work', default='bench/results/real_scans', help='inputs, meshes, run records and scores')
    p.add_argument('--data', default=None, help='the prepared meshes (default: bench/results/shared_meshes/data where it exists, else <work>/data)')
    p.add_argument('--settings', default='a,b,c', help='comma-separated: ' + '; '.join(f'{k}: {setting_label(k)}' for k in SETTINGS))
    p.add_argument('--methods', default=','.join(METHODS), help='comma-separated: ' + ', '.join(METHODS))
    p.add_argument('--limit', type=int, default=None, help='the first N meshes only')
    p.add_argument('--timeout', type=float, default=900, help='seconds per reconstruction')
    p.add_argument('--iou_points', type=int, default=100_000, help='uniform points of the unit box for the IoU')
    p.add_argument('--poisson_depth', type=int, default=8)
    p.add_argument('--poisson_trim', type=float, default=0.0, help='density quantile below which Poisson vertices are removed (0: none)')
    p.add_argument('--figure', type=int, default=3, help='meshes in the figure (0: none)')
    p.add_argument('--overwrite', action='store_true', help='redo the reconstructions and scores that are there')
    p.add_argument('--out', default='bench/real_scans.md', help='the tables (markdown); the JSON and the PNG go beside it')
    p.add_argument('--weights', action='append', default=[], metavar='LABEL=FILE',
                   help='also measure airnets_reconstruct --model FILE as the method LABEL (repeatable)')
    p.add_argument('--flags', action='append', default=[], metavar='LABEL=FLAGS',
                   help="extra airnets_reconstruct flags for the method LABEL of a --weights, e.g. 'thr6=--threshold 0.6' (repeatable)")
    a = p.parse_args()
    a.weights_files = {}
    for w in a.weights:
        label, sep, file = w.partition('=')
        if not sep or not label.isidentifier() or label in METHODS or label in a.weights_files:
            p.error(f'--weights {w!r}: expected LABEL=FILE with a new name as LABEL (letters, digits, _; not {", ".join(METHODS)})')
        if not Path(file).is_file(): p.error(f'--weights {w!r}: {file} is not a file')
        a.weights_files[label] = str(Path(file).absolute())
    a.method_flags = {}
    for f in a.flags:
        label, sep, rest = f.partition('=')
        # a --weights label only: a shipped method's name would reuse the meshes its runs without the flags left in --work
        if not sep or label not in a.weights_files or label in a.method_flags or not rest.strip():
            p.error(f'--flags {f!r}: expected LABEL=FLAGS for one AIR-Net method named by --weights ({", ".join(a.weights_files) or "none given"}), once each')
        a.method_flags[label] = shlex.split(rest)
    settings = [s.strip() for s in a.settings.split(',') if s.strip()]
    methods = [m.strip() for m in a.methods.split(',') if m.strip()]
    bad = [s for s in settings if s not in SETTINGS] + [m for m in methods if m not in METHODS]
    methods += [m for m in a.weights_files if m not in methods]
    if bad or not settings or not methods: p.error(f"unknown or no settings/methods: {', '.join(bad) or '(none)'} (settings {', '.join(SETTINGS)}; methods {', '.join(METHODS)})")
    src = Path(a.meshes)
    if not src.is_dir(): print(f'real_scans: {src} is absent: nothing to measure (skipped)'); return
    sys.path.insert(0, str(ROOT))
    from report import cpu_model, load_average, usable_cores, warn_if_busy
    from airnets.files import write_atomic
    from airnets.checkpoints import MESH_FILE
    from airnets.prepare import load_scaled_mesh
    files = mesh_files(src, a.limit)
    if not files: print(f'real_scans: no meshes in {src} (skipped)'); return
    load = warn_if_busy()
    work = Path(a.work).absolute()
    shared = ROOT/'bench'/'results'/'shared_meshes'/'data'
    data = Path(a.data).absolute() if a.data else shared if shared.is_dir() else work/'data'
    print(f'{len(files)} mesh(es), prepared in {data}; work folder {work}', flush=True)
    availability = available_methods(methods, a.weights_files)
    for m, why in availability.items():
        if why: print(f'{m}: {why}', flush=True)
    run = [m for m in methods if availability[m] is None]
    folders = prepare_meshes(files, data, a.timeout)
    rows, t_start = [], time.perf_counter()
    for obj in folders:
        name = obj.name
        try: gt = load_scaled_mesh(obj)
        except Exception as e: print(f'{name}: not prepared ({type(e).__name__}: {e}); left out', flush=True); continue
        gt_closed = bool(gt.is_watertight)
        for s in settings:
            cloud = work/'inputs'/s/f'{name}.npy'
            if a.overwrite or not cloud.is_file(): draw_cloud(gt, name, s, cloud)
            for m in run:
                out = work/'generation'/s/m/'shared'/name
                if (out/MESH_FILE).is_file() and (out/RUN_FILE).is_file() and not a.overwrite:
                    r = json.loads((out/RUN_FILE).read_text())
                else:
                    r = reconstruct(m, cloud, out, a)
                    print(f"{name} {s} {m}: {r['status']}, {r['seconds']:.1f} s, {r.get('faces') or 0} faces, peak RSS {fmt(r['peak_rss_mb'], 0)} MB", flush=True)
                ev = score(out, f'shared/{name}', data, a)
                row = dict(setting=s, method=m, mesh=name, gt_watertight=gt_closed, **r, scored=ev is not None)
                if ev is not None:
                    row.update({k: num(ev.get(k)) for k in ('iou', 'chamfer_l1', 'chamfer_l2', 'normals', 'f_score_10')}, empty=bool(ev['empty']))
                    if not gt_closed: row['iou_no_inside'], row['iou'] = row['iou'], None  # kept, not summarised: the ground truth has no inside
                rows.append(row)
    summary = {s: {m: summarize([r for r in rows if r['setting'] == s and r['method'] == m]) for m in run} for s in settings}
    out = Path(a.out)
    names = sorted({r['mesh'] for r in rows})
    doc = dict(command=command_line(), date=time.strftime('%Y-%m-%d %H:%M'), machine=dict(host=platform.node() or '?', cores=usable_cores(), cpu=cpu_model(), load=load),
               meshes=len(names), settings=settings, setting_specs={s: SETTINGS[s] for s in settings}, methods={m: availability[m] or 'ok' for m in methods},
               options=dict(timeout=a.timeout, iou_points=a.iou_points, poisson_depth=a.poisson_depth, poisson_trim=a.poisson_trim, n_surface=100_000, weights=a.weights_files, flags=a.method_flags),
               json=str(out.with_suffix('.json')), figure=None, minutes=(time.perf_counter() - t_start) / 60, summary=summary, rows=rows)
    if a.figure and names and run:
        from airnets.report import spread
        try:
            figure(spread(names, a.figure), settings, run, work, data, out.with_suffix('.png'))
            doc['figure'] = str(out.with_suffix('.png'))
        except Exception as e: print(f'figure failed: {type(e).__name__}: {e}', flush=True)
    write_atomic(out.with_suffix('.json'), json.dumps(doc, indent=1, allow_nan=False))
    md = markdown(doc, availability)
    print(md)
    write_atomic(out, md)
    print(f'wrote {out}, {out.with_suffix(".json")}' + (f", {doc['figure']}" if doc['figure'] else ''))


if __name__ == '__main__':
    main()
