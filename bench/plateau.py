"""The plateau at the start of training, and the remedies side by side (the picture of nbs/20a_recipe).

The `demo` model (300 input points) and the `demo3000` model (3000) are trained from scratch on the embedded dataset
(`make shapes`: data/shapes, 75 training / 15 validation shapes), with the same seed and the same data draws, once per
recipe, for --steps optimizer steps (batch 8: 10 steps per epoch, the validation loss after each epoch). Every run
goes through `airnets.train.Trainer`, the code `airnets_train` runs; the recipes that are not config keys (an output
bias at the logit of the inside rate, a linear learning-rate warm-up) are applied to the trainer's model and optimiser
before the first step. The constant predictor's loss is the entropy of the validation draws' inside rate.

    python bench/plateau.py [--steps 200] [--jobs 2] [--models demo demo3000] [--out bench/plateau.json]

Writes --out (JSON, atomically; nbs/20a_recipe draws it) and prints, per model and recipe, the validation loss as a
fraction of the constant predictor's after 50, 100 and 200 steps, and the wall seconds per step (validation included),
each run on one thread, --jobs runs at a time.
"""
from __future__ import annotations

import argparse, datetime, json, math, os, platform, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE = dict(position_init=None, bn_momentum=0.1)
RECIPE = 'new recipe (position init + BN momentum 0.3)'
RECIPES = {  # name -> (training keys, extra remedy applied to the trainer)
    'reference recipe': (REFERENCE, None),
    'reference + output bias at logit(inside rate)': (REFERENCE, 'bias'),
    'reference + warm-up (50 steps)': (REFERENCE, 'warmup'),
    'reference + 4x supervision points': ({**REFERENCE, 'npoints_decoder': 4000}, None),
    'BN momentum 0.3': (dict(position_init=None, bn_momentum=0.3), None),
    'position init': (dict(position_init=1.0, bn_momentum=0.1), None),
    RECIPE: (dict(position_init=1.0, bn_momentum=0.3), None),
}
PER_MODEL = {'demo': list(RECIPES), 'demo3000': ['reference recipe', 'position init', RECIPE]}


def run_one(model: str, recipe: str, steps: int, data_root: str) -> dict:
    "One training run in this process: {steps, val_loss, train_loss, seconds_per_step, constant}"
    import numpy as np, torch
    from airnets.config import load_config
    from airnets.train import Trainer
    torch.set_num_threads(1)
    keys, extra = RECIPES[recipe]
    cfg = load_config(model).replace(**keys)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp)/'exp', data_root, progress=False, log=lambda *a: None)
        occ = np.concatenate([tr.val_set[i]['occupancies'] for i in range(len(tr.val_set))])
        p = float(occ.mean()); constant = -(p * math.log(p) + (1 - p) * math.log(1 - p))
        if extra == 'bias':
            q = float(np.concatenate([tr.train_set[i]['occupancies'] for i in range(len(tr.train_set))]).mean())
            with torch.no_grad(): tr.model.decoder.fc_out.bias.fill_(math.log(q / (1 - q)))
        if extra == 'warmup':
            step, base, inner = [0], cfg.training.lr, tr.opt.step
            def warm_step(*a, **k):
                step[0] += 1
                for g in tr.opt.param_groups: g['lr'] = base * min(1.0, step[0] / 50)
                return inner(*a, **k)
            tr.opt.step = warm_step
        tr.config = tr.config.replace(epochs=math.ceil(steps / len(tr.train_loader)))
        t0 = time.perf_counter(); hist = tr.fit()
        secs = time.perf_counter() - t0
    return dict(steps=[h['steps'] for h in hist], val_loss=[h['val_loss'] for h in hist], train_loss=[h['train_loss'] for h in hist],
                seconds_per_step=secs / hist[-1]['steps'], constant=constant)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=200, help='optimizer steps per run')
    p.add_argument('--jobs', type=int, default=2, help='runs at a time (one thread each)')
    p.add_argument('--models', nargs='+', default=list(PER_MODEL), choices=list(PER_MODEL))
    p.add_argument('--data_root', default=str(ROOT/'data'/'shapes'), help='the embedded dataset, prepared (make shapes)')
    p.add_argument('--out', default=str(ROOT/'bench'/'plateau.json'))
    p.add_argument('--one', nargs=2, metavar=('MODEL', 'RECIPE'), help=argparse.SUPPRESS)  # a worker: one run, JSON on stdout
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(run_one(*a.one, a.steps, a.data_root))); return 0
    if not (Path(a.data_root)/'split.npz').is_file(): sys.exit(f'--data_root {a.data_root}: not prepared (run `make shapes`)')
    from airnets.config import load_config
    from airnets.files import write_atomic
    started = datetime.datetime.now().isoformat(timespec='seconds')
    tasks = [(m, r) for m in a.models for r in PER_MODEL[m]]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    def work(task):
        r = subprocess.run([sys.executable, __file__, '--one', *task, '--steps', str(a.steps), '--data_root', a.data_root],
                           capture_output=True, text=True, env=env)
        if r.returncode: print(f'{task}: failed\n{r.stderr[-2000:]}', flush=True); return task, None
        print(f'{task[0]} / {task[1]}: done', flush=True)
        return task, json.loads(r.stdout.strip().splitlines()[-1])
    with ThreadPoolExecutor(a.jobs) as ex: results = list(ex.map(work, tasks))
    out = dict(command='python bench/plateau.py ' + ' '.join(argv if argv is not None else sys.argv[1:]), started=started,
               machine=f'{platform.node() or "?"} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})',
               steps=a.steps, recipe=RECIPE, models={})
    for (m, r), res in results:
        if res is None: continue
        e = out['models'].setdefault(m, dict(points=load_config(m).training.pc_samples, constant=res['constant'], runs={}))
        e['runs'][r] = {k: res[k] for k in ('steps', 'val_loss', 'train_loss', 'seconds_per_step')}
    write_atomic(a.out, json.dumps(out, indent=1) + '\n')
    for m, e in out['models'].items():
        print(f"\n{m} ({e['points']} points; constant predictor {e['constant']:.4f}): validation loss / constant after 50, 100, 200 steps; s/step")
        for r, run in e['runs'].items():
            at = dict(zip(run['steps'], run['val_loss']))
            print(f"  {r:48s}" + ''.join(f"  {at[s] / e['constant']:.3f}" if s in at else '      -' for s in (50, 100, 200)) + f"  {run['seconds_per_step']:.2f}")
    print(f'\nwritten {a.out}')
    return 0 if all(res is not None for _, res in results) else 1


if __name__ == '__main__':
    sys.exit(main())
