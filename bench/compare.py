"""The four models at the same CPU budget: a small-scale version of the paper's main table (Tables 1 and 2 of Giebenhain & Goldlücke, 3DV 2021).

AIR-Net, ONet, ConvONet (three planes) and IF-Net, each in its CPU-sized packaged config (demo, onet_small,
convonet_small, ifnet_small), are trained on the embedded dataset (`make demo`'s data/shapes) with sparse (300) and
dense (3000) input points and input noise of std 0.005 (the paper's setting), for the same wall-clock budget each
(`training.max_minutes`, counted over resumes), on one CPU thread each, two runs at a time. Each is then generated on
the test split (MISE 64 x 1, a 128^3 grid as ONet's default, the best validation epoch, the inputs drawn with the same seed and noise for every model)
and evaluated with airnets_evaluate (IoU on 1M uniform points, Chamfer-L1/L2 and normal consistency on 100k surface
samples, F-score at 1% of the unit box).

    python bench/compare.py [--minutes 24] [--until_flat 96] [--flat_tol 0.01] [--jobs 2] [--data_root data/shapes] [--out bench/comparison.md]
    make compare                                    # the same, as committed

Everything goes through the command-line tools (airnets_train, airnets_generate, airnets_evaluate,
airnets_evaluate_gather) in fresh processes, under experiments/compare/<model><N>/. It resumes: a finished run is not
retrained (its budget is spent), a generated or evaluated object is skipped, so a killed comparison is continued by
the same command. The table is written atomically to --out (markdown) and beside it as JSON.

AIR-Net's first layer takes all the input points: with 300 points it is the `demo` config ([300, 100, 32] points per
layer), with 3000 the `demo3000` config ([3000, 300, 64], a narrower first block so that a step costs about 2.5x
demo's). Both train with the package's recipe (nbs/20a_recipe: position encoders scaled to their inputs, BatchNorm
momentum 0.3), as do the baselines' CPU configs. The baselines' architectures do not depend on the input size (IF-Net
sees the points voxelised at 32^3).

The JSON beside the table keeps every run's validation curve (cumulative training minutes, validation loss per
epoch), which nbs/52_tutorial_compare draws. A curve has flattened when the last third of its epochs lowered its best
validation loss by less than `--flat_tol` (1%): with `--flat_tol 0` that is "its best epoch is not in the last third".
The tolerance is there because the recipe halves the learning rate every 100 epochs: a long run keeps improving by
ever smaller steps, so its best epoch stays at its end while the curve no longer moves (the table's "last-third gain"
column shows by how much). With `--until_flat MAX`, a run that has not flattened goes on in steps of half the budget
until it has or has trained MAX minutes: every run then gets the budget its own curve asks for (the table's "minutes"
column), a run that flattened early is not given more, and the table says which runs reached MAX without flattening.
The runs that may train longest (AIR-Net's) start first, so that two runs at a time finish together sooner.

Each invocation is logged in `<exp_root>/compare_invocations.json`; the table reports the wall time of all of them.
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT/'bench')]
from airnets.config import load_config  # noqa: E402
from airnets.evaluate import gather  # noqa: E402
from airnets.files import write_atomic  # noqa: E402
from report import cpu_model, usable_cores  # noqa: E402

BASES = {'airnet': 'demo', 'onet': 'onet_small', 'convonet': 'convonet_small', 'ifnet': 'ifnet_small'}
NAMES = {'airnet': 'AIR-Net', 'onet': 'ONet', 'convonet': 'ConvONet (3 planes)', 'ifnet': 'IF-Net'}
AIRNET_CONFIGS = {300: 'demo', 3000: 'demo3000'}  # AIR-Net's config per input size (others: demo with [n, n/10, 32])


def run_config(model: str, n: int, noise: float, minutes: float) -> dict:
    "The config of one run: the model's CPU config with n input points, the noise and the budget"
    d = load_config(AIRNET_CONFIGS.get(n, 'demo') if model == 'airnet' else BASES[model]).to_dict()
    if model == 'airnet' and n not in AIRNET_CONFIGS: d['encoder']['npoints_per_layer'] = [n, max(32, n // 10), 32]
    d['training'].update(pc_samples=n, max_minutes=minutes, epochs=100_000)
    d['mode']['noisy_obs'] = noise
    return d


def bin_(name: str) -> str:
    return str(Path(sys.executable).parent/name)


def sh(args: list, threads: int, log: Path) -> int:
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads)}
    with open(log, 'a') as f:
        f.write(f'$ {" ".join(map(str, args))}\n'); f.flush()
        return subprocess.run([str(a) for a in args], env=env, stdout=f, stderr=subprocess.STDOUT).returncode


def last_third_gain(history: list) -> float | None:
    "How much the last third of the epochs lowered the best validation loss, relative to the best before it"
    losses = [x['val_loss'] for x in history if x.get('val_loss') is not None]
    cut = (2 * len(losses)) // 3
    if cut < 2: return None
    before = min(losses[:cut])
    return max(0.0, (before - min(losses)) / before)


def flattened(history: list, tol: float = 0.01) -> bool:
    "A validation curve has flattened when its last third lowered the best loss by less than `tol` (0: the best epoch is not in the last third)"
    g = last_third_gain(history)
    return g is not None and (g <= tol if tol else g == 0)


def train(name: str, cfg: dict, a) -> int:
    "Train one run to its budget; with --until_flat, go on in steps of half the budget while its curve has not flattened"
    from airnets.checkpoints import read_weights
    from airnets.train import list_checkpoints
    exp = Path(a.exp_root)/name
    exp.mkdir(parents=True, exist_ok=True)
    cfg_file = exp/'compare_config.yaml'
    write_atomic(cfg_file, yaml.safe_dump(cfg, sort_keys=False))
    t, budget = time.perf_counter(), a.minutes
    while True:
        # --max_minutes on the command line: a resumed experiment keeps its saved config, and the budget is the one key a resume may change
        rc = sh([bin_('airnets_train'), '-exp_name', name, '-cfg_file', cfg_file, '--data_root', a.data_root, '--exp_root', a.exp_root,
                 '--max_minutes', budget, '--quiet'], a.threads, exp/'compare.log')
        ck = list_checkpoints(exp)
        log_invocation(a)
        if rc != 0 or not a.until_flat or budget >= a.until_flat or not ck: break
        st = read_weights(ck[-1][1])
        if flattened(st.get('history', []), a.flat_tol): break
        budget = min(a.until_flat, budget + a.minutes / 2)
        print(f'  {name}: not flat after epoch {len(st.get("history", []))} (best {st.get("best_epoch")}); budget now {budget:g} min', flush=True)
    print(f'  trained {name}: exit {rc}, {time.perf_counter() - t:.0f} s', flush=True)
    return rc


def generate(name: str, a) -> Path | None:
    exp = Path(a.exp_root)/name
    rc = sh([bin_('airnets_generate'), '-exp_name', name, '--data_root', a.data_root, '--exp_root', a.exp_root, '-mise_res', a.mise_res,
             '-mise_steps', a.mise_steps, '--quiet'], a.threads, exp/'compare.log')
    gens = sorted(exp.glob(f'evaluation_*_@{a.mise_res}x{a.mise_steps}/generation'), key=lambda p: p.stat().st_mtime)
    if rc not in (0, 1) or not gens: print(f'  {name}: airnets_generate exit {rc}', flush=True); return None
    g = gens[-1]
    sh([bin_('airnets_evaluate'), '-generation_path', g, '--workers', 1, '--quiet'], a.threads, exp/'compare.log')
    sh([bin_('airnets_evaluate_gather'), '-generation_path', g], a.threads, exp/'compare.log')
    log_invocation(a)
    print(f'  generated and evaluated {name}: {g}', flush=True)
    return g


def row(model: str, n: int, name: str, gen: Path | None, a) -> dict:
    import torch
    from airnets.airnet import count_parameters
    from airnets.checkpoints import read_weights
    from airnets.config import config_from_dict, build_model
    from airnets.train import list_checkpoints
    exp = Path(a.exp_root)/name
    r = dict(model=NAMES[model], points=n, run=name)
    ck = list_checkpoints(exp)
    if ck:
        st = read_weights(ck[-1][1])
        h = st.get('history', [])
        mins = list(itertools.accumulate(x['seconds'] / 60 for x in h))
        r.update(epochs=len(h), minutes=round(mins[-1], 2) if mins else 0, best_epoch=st.get('best_epoch'),
                 best_val_loss=st.get('best_val_loss'), parameters=count_parameters(build_model(config_from_dict(st['config'], name))),
                 flattened=flattened(h, a.flat_tol), last_third_gain=last_third_gain(h),
                 curve=dict(minutes=[round(m, 3) for m in mins], val_loss=[x['val_loss'] for x in h], steps=[x.get('steps') for x in h]))
    if gen is not None:
        g = gather(gen)
        o = g['overall']
        r.update(objects=o['objects'], empty=o['empty'], failed=o['failed'],
                 **{k: o[k]['mean'] for k in ('iou', 'chamfer_l1', 'chamfer_l2', 'normals', 'f_score_10')})
    return r


def fmt(v, scale=1.0, digits=3):
    return '-' if v is None else f'{v * scale:.{digits}f}'


def table(rows: list, a, started: str, wall: float) -> str:
    head = ['model', 'input points', 'parameters', 'minutes', 'epochs in budget', 'best epoch', 'last-third gain', 'best val loss', 'IoU', 'Chamfer-L1 (x1e-2)', 'Chamfer-L2 (x1e-4)', 'NC', 'F@1%', 'empty']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in sorted(rows, key=lambda r: (r['points'], -(r.get('iou') or 0))):
        best = f"{r.get('best_epoch', '-')}" + ('' if r.get('flattened', True) else ' (not flat)')
        lines.append('| ' + ' | '.join([r['model'], str(r['points']), f"{r.get('parameters', 0):,}", fmt(r.get('minutes'), digits=1), str(r.get('epochs', '-')), best,
                                         fmt(r.get('last_third_gain'), 100, 2) + ('%' if r.get('last_third_gain') is not None else ''), fmt(r.get('best_val_loss'), digits=4),
                                         fmt(r.get('iou')), fmt(r.get('chamfer_l1'), 100), fmt(r.get('chamfer_l2'), 1e4), fmt(r.get('normals')), fmt(r.get('f_score_10')),
                                         f"{r.get('empty', '-')}/{r.get('objects', '-')}"]) + ' |')
    cmd = 'python bench/compare.py ' + ' '.join(sys.argv[1:])
    return '\n'.join([
        '# The four models at the same CPU budget', '',
        f'`{cmd.strip()}` (or `make compare`), started {started} on {machine()}; wall time {wall:.0f} minutes over all its invocations.', '',
        f'Each model trained for {a.minutes:g} minutes of wall-clock time on one CPU thread (two runs at a time) on the {a.n_train} training shapes of `{a.data_root}`, '
        f'input noise std {a.noise:g}'
        + (f'; a run whose curve had not flattened then went on in steps of {a.minutes / 2:g} minutes until it had, or up to {a.until_flat:g} minutes ("minutes": its training time)' if a.until_flat else '')
        + f'. Each was then reconstructed with MISE {a.mise_res} x {a.mise_steps} from its best validation epoch and evaluated on the {a.n_test} test shapes. '
        'Means over the test objects (an empty mesh counts 0 in IoU and F-score; Chamfer and NC over the non-empty ones); distances in units of the unit box. '
        f'"last-third gain": how much the last third of the epochs lowered the best validation loss; "not flat": it lowered it by more than {a.flat_tol:.0%} '
        '(its curve had not flattened within the budget).', '',
        *lines, ''])


def machine() -> str:
    return f'{platform.node() or "?"} ({cpu_model()}, {usable_cores()} cores)'


_LOG_LOCK = threading.Lock()


def log_invocation(a) -> tuple[str, float]:
    "Bring this invocation's entry in <exp_root>/compare_invocations.json up to date (called as each step ends, so a killed one counts to its last step); the first one's start and the wall minutes of all"
    with _LOG_LOCK:
        f = Path(a.exp_root)/'compare_invocations.json'
        log = [x for x in (json.loads(f.read_text()) if f.is_file() else []) if x['started'] != a.started]
        log.append(dict(started=a.started, machine=machine(), wall_minutes=round((time.perf_counter() - a.t_start) / 60, 1), argv=sys.argv[1:]))
        write_atomic(f, json.dumps(log, indent=1) + '\n')
        return log[0]['started'], sum(x['wall_minutes'] for x in log)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--minutes', type=float, default=24.0, help='training budget per run (wall-clock minutes)')
    p.add_argument('--until_flat', type=float, default=96.0, help='continue a run whose curve has not flattened, in steps of half --minutes, up to this many minutes (0: never)')
    p.add_argument('--flat_tol', type=float, default=0.01, help='a curve has flattened when its last third lowered the best validation loss by less than this fraction')
    p.add_argument('--jobs', type=int, default=2, help='runs at a time')
    p.add_argument('--threads', type=int, default=1, help='torch threads per run')
    p.add_argument('--models', nargs='+', default=list(BASES), choices=list(BASES))
    p.add_argument('--points', nargs='+', type=int, default=[300, 3000])
    p.add_argument('--noise', type=float, default=0.005)
    p.add_argument('--mise_res', type=int, default=64)
    p.add_argument('--mise_steps', type=int, default=1)
    p.add_argument('--data_root', default='data/shapes')
    p.add_argument('--exp_root', default='experiments/compare')
    p.add_argument('--out', default='bench/comparison.md')
    a = p.parse_args()
    if not 0 <= a.flat_tol < 1: p.error(f'--flat_tol {a.flat_tol:g}: a fraction of the best loss is wanted, at least 0 and below 1')
    if not (Path(a.data_root)/'split.npz').is_file(): sys.exit(f'compare: {a.data_root} has no split.npz: run `make demo` (or airnets_make_shapes + airnets_prepare) first')
    import numpy as np
    with np.load(Path(a.data_root)/'split.npz') as z: a.n_train, a.n_test = len(z['train']), len(z['test'])
    a.started, a.t_start = datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S'), time.perf_counter()
    runs = [(m, n, f'{m}{n}') for n in a.points for m in a.models]
    runs.sort(key=lambda r: r[0] != 'airnet')  # the runs that may train longest first (a stable sort keeps the rest in order)
    Path(a.exp_root).mkdir(parents=True, exist_ok=True)
    log_invocation(a)
    print(f'compare: {len(runs)} runs, {a.minutes:g} min each, {a.jobs} at a time', flush=True)
    with ThreadPoolExecutor(a.jobs) as ex:
        list(ex.map(lambda r: train(r[2], run_config(r[0], r[1], a.noise, a.minutes), a), runs))
        gens = list(ex.map(lambda r: generate(r[2], a), runs))
    rows = [row(m, n, name, g, a) for (m, n, name), g in zip(runs, gens)]
    first, wall = log_invocation(a)
    md = table(rows, a, first, wall)
    write_atomic(a.out, md)
    write_atomic(Path(a.out).with_suffix('.json'), json.dumps(dict(started=first, machine=machine(), wall_minutes=round(wall, 1), args=vars(a), rows=rows), indent=1, default=str) + '\n')
    print(md)


if __name__ == '__main__':
    main()
