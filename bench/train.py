"""Training throughput and memory on the CPU: airnet300 at batch 16, one process and two-process DDP.

What it measures, on procedural shapes prepared at the pipeline's full sizes (30,000 surface points, 2 x 100,000
boundary points per shape) in a temporary folder: 32 training shapes, so an epoch is 2 optimisation steps of 16
shapes (300 input points, 1000 supervision points each), and 8 validation shapes.

* plain loop (the named alternative): the model, Adam and the BCE loss in a bare PyTorch loop over the same
  DataLoader: no validation, no checkpoints, no TensorBoard, no progress bar;
* Trainer, 1 process: `airnets.train.Trainer.train_epoch` (the same steps, plus what the trainer adds per step:
  loss checks, gradient clipping hooks, the progress bar), with torch using all usable cores;
* Trainer, DDP: `torchrun --nproc_per_node 2` with the gloo backend, the global batch of 16 split 8 + 8, torch
  using usable_cores / 2 threads in each process (the cores are shared, not added).

Each runs in a fresh process (DDP: two), trains one epoch to warm up and times the second; steps per second are
optimisation steps of the global batch of 16. Peak RSS is the process's `ru_maxrss` (for DDP: each process, and
their sum). Ratios: trainer / plain loop (> 1: faster), DDP / one process.

    python bench/train.py [--quick] [--out table.md]

--quick: batch 4 (8 training shapes) to check that the script works.
"""
from __future__ import annotations

import argparse, datetime, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path

from report import cpu_model, emit, render_table, usable_cores, warn_if_busy

HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent

def prepare(root: Path, n_train: int, n_val: int):
    "Make and prepare shapes; write a split with n_train / n_val of them"
    for cmd in ([str(BIN/'airnets_make_shapes'), '--out', str(root), '--n', str(n_train + n_val), '--seed', '0', '--quiet'],
                [str(BIN/'airnets_prepare'), '--data_root', str(root), '--quiet', '--no_split']):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    from airnets.prepare import list_objects, object_id, save_split
    ids = [object_id(o) for o in list_objects(root)]
    (root/'split.npz').unlink(missing_ok=True)
    save_split(root/'split.npz', dict(train=ids[:n_train], val=ids[n_train:], test=ids[n_train:]))

def config(batch: int):
    from airnets.config import load_config
    return load_config('airnet300').replace(batch_size=batch, epochs=2)

def worker(mode: str, data: Path, batch: int, out: Path):
    "Run in a fresh process: train two epochs, time the second; print one JSON line"
    import torch
    from airnets.train import Trainer, init_distributed, occupancy_loss
    d = init_distributed('cpu')
    cfg = config(batch)
    tr = Trainer(cfg, out/f'exp_{mode}', data, dist_info=d, progress=False, log=lambda *a: None)
    steps = len(tr.train_loader)
    if mode == 'plain':  # the same model, loader and optimiser, driven by a bare loop
        model, opt, loader = tr.model, torch.optim.Adam(tr.model.parameters(), lr=cfg.training.lr), tr.train_loader
        def epoch(e):
            model.train(); tr.sampler.set_epoch(e); tr.train_set.set_epoch(e)
            for b in loader:
                opt.zero_grad(); occupancy_loss(model(b['inputs'], b['points']), b['occupancies']).backward(); opt.step()
    else:
        def epoch(e): tr.epoch = e; tr.train_epoch()
    epoch(0)
    t0 = time.perf_counter(); epoch(1); dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (ru_maxrss is KiB on Linux)
    rec = dict(mode=mode, rank=d.rank, world=d.world_size, steps=steps, seconds=dt, peak_rss_gib=rss, threads=torch.get_num_threads())
    (out/f'{mode}_{d.world_size}_{d.rank}.json').write_text(json.dumps(rec))
    if d.active: torch.distributed.destroy_process_group()

def run(mode: str, data: Path, batch: int, out: Path, threads: int, nproc: int = 1) -> list:
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads)}
    args = [str(HERE), '--worker', mode, '--data', str(data), '--batch', str(batch), '--tmp', str(out)]
    cmd = [sys.executable, *args] if nproc == 1 else [str(BIN/'torchrun'), '--standalone', '--nproc_per_node', str(nproc), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode: sys.exit(f'{mode} failed:\n{r.stdout}\n{r.stderr}')
    return [json.loads((out/f'{mode}_{nproc}_{rank}.json').read_text()) for rank in range(nproc)]

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true'); ap.add_argument('--out', type=Path)
    ap.add_argument('--worker'); ap.add_argument('--data', type=Path); ap.add_argument('--batch', type=int); ap.add_argument('--tmp', type=Path)
    a = ap.parse_args()
    if a.worker: return worker(a.worker, a.data, a.batch, a.tmp)
    batch = 4 if a.quick else 16
    cores = usable_cores()
    load = warn_if_busy()
    tmp = Path(tempfile.mkdtemp(prefix='bench_train_'))
    try:
        t0 = time.perf_counter()
        prepare(tmp/'shapes', 2 * batch, 8)
        prep_s = time.perf_counter() - t0
        plain = run('plain', tmp/'shapes', batch, tmp, cores)[0]
        one = run('trainer', tmp/'shapes', batch, tmp, cores)[0]
        ddp = run('trainer', tmp/'shapes', batch, tmp, max(1, cores // 2), nproc=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sps = lambda r: r['steps'] / r['seconds']  # noqa: E731
    d0 = min(ddp, key=lambda r: r['rank'])
    ddp_sps = d0['steps'] / max(r['seconds'] for r in ddp)
    rows = [['plain loop (alternative)', f"{cores} thr", f"{sps(plain):.3f}", f"{batch * sps(plain):.2f}", f"{plain['peak_rss_gib']:.2f}", '1.00x'],
            ['Trainer, 1 process', f"{cores} thr", f"{sps(one):.3f}", f"{batch * sps(one):.2f}", f"{one['peak_rss_gib']:.2f}", f"{sps(one) / sps(plain):.2f}x"],
            ['Trainer, DDP 2 processes (gloo)', f"2 x {d0['threads']} thr", f"{ddp_sps:.3f}", f"{batch * ddp_sps:.2f}",
             ' + '.join(f"{r['peak_rss_gib']:.2f}" for r in sorted(ddp, key=lambda r: r['rank'])) + f" = {sum(r['peak_rss_gib'] for r in ddp):.2f}",
             f"{ddp_sps / sps(plain):.2f}x"]]
    head = (f"# bench/train.py: airnet300 training on the CPU, batch {batch}, 300 input points, 1000 supervision points\n\n"
            f"{datetime.date.today()} · {cpu_model()} · {cores} usable cores · load {load if load is None else round(load, 2)} · "
            f"shapes prepared in {prep_s:.0f} s · second epoch of {plain['steps']} steps timed\n\n")
    text = head + render_table(['run', 'threads', 'steps/s', 'shapes/s', 'peak RSS (GiB)', 'vs plain loop'], rows) + \
        f"\n\nDDP vs one process: {ddp_sps / sps(one):.2f}x the steps per second\n"
    emit(text, a.out)

if __name__ == '__main__':
    main()
