"""AIR-Net training and inference speed on the CPU: airnets' optimised blocks against a reference-style path, and the
four models (AIR-Net, ONet, ConvONet, IF-Net) side by side.

What it measures (random weights from a fixed seed, points uniform in [-0.5, 0.5]^3, queries in [-0.55, 0.55]^3):

* airnet300, batch 16, 300 points, 1000 queries, and airnet3000, batch 4, 3000 points, 1000 queries, in training
  mode (BatchNorm on batch statistics): the forward pass with autograd on, as in a training step, and a whole step
  (forward, BCE-with-logits loss on random targets, backward; no optimiser), as samples per second;
* the decoder at inference: airnet3000, one shape, eval mode, 100,000 queries under `torch.inference_mode`, encoded
  once (not timed), as queries per second.

Two implementations, measured in the same run:

* ours: `airnets.attention` as it is (its default implementation, 'fast': linear maps folded before the neighbour
  gather, the softmax over the neighbours and its backward in one autograd Function with C++ kernels, the big products
  through oneDNN, `topk` kNN, chunked cross attention);
* fused (table "fast against fused" only, `--fast`): `with attention.implementation('fused')` and `knn_topk`, the
  previous default (the same folding, the elementwise chain as separate torch ops, products through `mm`, `topk` kNN);
* reference-style: the same module under `with attention.implementation('plain')` (every block runs its `forward_plain`,
  the equations written out as the reference writes them: one linear layer after another on [B, N, k, d] tensors,
  no chunking inside the cross attention) and `airnets.attention.knn` replaced by the reference's kNN, a full
  `argsort` of the distance matrix (`knn_argsort` below). The decoder still splits 100k queries into chunks of
  100k (one chunk), as `AirNetDecoder` does.

Peak memory: every (configuration, implementation, task) runs in a fresh subprocess, and its peak is the growth of
the process's peak resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) from just before the first
forward pass (model and inputs already built) to the end. tracemalloc does not see torch's CPU allocations, so RSS
is the measure; it includes allocator caching, so it is an upper bound on the tensors alive at once.

Every time is the median of `--repeats` runs after one warm-up run. The ratio column is ours / reference-style
throughput (> 1: ours is faster). Run it directly:

    python bench/model.py [--quick] [--repeats N] [--threads T] [--out table.md]

--quick uses small sizes (batch 2, 1000 queries, 20,000 decoder queries) to check that the script works.

The second table ("the four models") builds every model from its packaged full-size config (`build_model`):
airnet300 and airnet3000, onet, convonet (three 64^2 planes), convonet_grid (32^3) and ifnet (128^3 voxel input),
each at its config's input size (300 or 3000 points; IF-Net gets the 3000 points voxelised), batch 4 (--quick: 1),
2000 queries (the baselines' `npoints_decoder`), training mode, and reports samples per second for the forward pass
and for forward+backward, and the peak RSS growth of forward+backward, each in a fresh process. The ratio column is
each model's forward+backward throughput over AIR-Net's (airnet3000, the dense model that the paper compares with the
baselines at 3000 points), measured in the same run. `--models` runs this table alone.

`--fast` runs one table alone: ours ('fast') against 'fused' for airnet3000 (batch 4, 3000 points, 1000 queries) and
demo3000 (its training batch: 8 clouds of 3000 points, 1000 queries each), forward+backward in training mode, with
samples/s, steps/s, the ratio and the peak RSS growth of each, every cell in a fresh process; then the airnet3000 step
of both again under two allocator settings in the environment (`ALLOCATOR_SETTINGS`: PyTorch's transparent huge pages,
glibc keeping freed memory), which save the page faults of fresh large tensors.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not
import airnets.attention as attention  # noqa: E402
from airnets.airnet import AirNet, count_parameters  # noqa: E402
from airnets.config import build_model, load_config  # noqa: E402
from report import cpu_model, emit, render_table  # noqa: E402

SEED = 0
FULL = dict(airnet300=dict(batch=16, points=300, queries=1000), airnet3000=dict(batch=4, points=3000, queries=1000),
            decoder=dict(config='airnet3000', queries=100_000))
QUICK = dict(airnet300=dict(batch=2, points=300, queries=1000), airnet3000=dict(batch=2, points=3000, queries=1000),
             decoder=dict(config='airnet3000', queries=20_000))
IMPLS = ('ours', 'reference-style')
# the ops whose time is matrix products (torch's MKL/oneDNN kernels; the convolution ops are _weight_grad's g.T @ x)
PRODUCT_OPS = {'aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm', 'mkldnn::_linear_pointwise', 'aten::convolution_backward',
               'aten::mkldnn_convolution'}
FAST_SIZES = dict(airnet3000=dict(batch=4, points=3000, queries=1000), demo3000=dict(batch=8, points=3000, queries=1000))
ALL_MODELS = ('airnet300', 'airnet3000', 'onet', 'convonet', 'convonet_grid', 'ifnet')
ALLOCATOR_SETTINGS = (('none', {}), ('THP_MEM_ALLOC_ENABLE=1', {'THP_MEM_ALLOC_ENABLE': '1'}),
                      ('MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647', {'MALLOC_MMAP_MAX_': '0', 'MALLOC_TRIM_THRESHOLD_': '2147483647'}))
MODEL_SIZES = dict(full=dict(batch=4, queries=2000), quick=dict(batch=1, queries=500))
BASE_MODEL = 'airnet3000'


def model_inputs(name: str, batch: int, g: torch.Generator):
    """The model's input for `batch` clouds of its config's size: points in [-0.5, 0.5]^3, voxelised for IF-Net."""
    c = load_config(name)
    pts = torch.rand(batch, c.training.pc_samples, 3, generator=g) - 0.5
    if c.encoder.type != 'ifnet':
        return pts, c.training.pc_samples
    from airnets.datasets import voxelize_nearest
    return torch.from_numpy(__import__('numpy').stack([voxelize_nearest(p.numpy(), c.encoder.resolution) for p in pts])), c.training.pc_samples


def model_worker(task: str, name: str, sizes: dict, repeats: int) -> dict:
    """Forward or forward+backward of a packaged config's model in this (fresh) process."""
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    model = build_model(name).train()
    x, n_points = model_inputs(name, sizes['batch'], g)
    qry = (torch.rand(sizes['batch'], sizes['queries'], 3, generator=g) - 0.5) * 1.1
    tgt = (torch.rand(sizes['batch'], sizes['queries'], generator=g) < 0.5).float()
    base = peak_rss_mb()
    def run():
        out = model(x, qry)
        if task == 'model_step':
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out, tgt)
            model.zero_grad(set_to_none=True)
            loss.backward()
        return out
    run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return dict(seconds=statistics.median(times), runs=repeats, peak_mb=peak_rss_mb() - base, params=count_parameters(model), points=n_points)
COMPILED = 'ours + torch.compile'


def knn_argsort(query: torch.Tensor, ref: torch.Tensor, k: int) -> torch.Tensor:
    """The reference's kNN: sort every row of the full squared-distance matrix, keep the first k."""
    with torch.no_grad():
        return attention.square_distance(query, ref).argsort(-1)[..., :k]


def knn_topk(query: torch.Tensor, ref: torch.Tensor, k: int) -> torch.Tensor:
    """The previous kNN: `topk` of the full squared-distance matrix (before the C++ kNN)."""
    with torch.no_grad():
        return attention.square_distance(query, ref).topk(k, dim=-1, largest=False).indices


def use_impl(impl: str):
    """A context manager that runs airnets.attention's blocks as `impl` (the reference-style kNN is a module global)."""
    if impl in ('ours', COMPILED):
        return contextlib.nullcontext()
    if impl == 'fused':  # as it was: fused blocks, and the kNN as torch's topk of the distance matrix
        attention.knn = knn_topk
        return attention.implementation('fused')
    if impl == 'reference-style':
        attention.knn = knn_argsort
        return attention.implementation('plain')
    raise ValueError(f'unknown implementation {impl!r}; known: {", ".join(IMPLS + ("fused",))}')


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------------------------------------- worker (subprocess)
def worker(task: str, config: str, impl: str, sizes: dict, repeats: int) -> dict:
    """Time one task in this (fresh) process; returns seconds per run, runs and the peak RSS growth in MB."""
    if task.startswith('model_'):
        return model_worker(task, config, sizes, repeats)
    with use_impl(impl):
        return _worker(task, config, impl, sizes, repeats)


def _worker(task: str, config: str, impl: str, sizes: dict, repeats: int) -> dict:
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    model = AirNet(config) if config.startswith('airnet') else build_model(config)  # demo3000: the packaged YAML
    if impl == COMPILED:  # the blocks, not the whole model: FPS and the Python chunk loop stay eager
        for m in model.modules():
            if isinstance(m, (attention.PointTransformerBlock, attention.SetAbstraction, attention.ElementwiseMLP)):
                m.forward = torch.compile(m.forward, dynamic=False)
    if task == 'decoder':
        model.eval()
        pts = torch.rand(1, 3000 if config == 'airnet3000' else 300, 3, generator=g) - 0.5
        qry = (torch.rand(1, sizes['queries'], 3, generator=g) - 0.5) * 1.1
        with torch.inference_mode():
            enc = model.encode(pts)
        base = peak_rss_mb()
        def run():
            with torch.inference_mode():
                return model.decode(qry, enc)
    else:
        model.train()
        pts = torch.rand(sizes['batch'], sizes['points'], 3, generator=g) - 0.5
        qry = (torch.rand(sizes['batch'], sizes['queries'], 3, generator=g) - 0.5) * 1.1
        tgt = (torch.rand(sizes['batch'], sizes['queries'], generator=g) < 0.5).float()
        base = peak_rss_mb()
        if task == 'forward':
            def run(): return model(pts, qry)
        else:
            def run():
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(pts, qry), tgt)
                model.zero_grad(set_to_none=True)
                loss.backward()
                return loss
    t0 = time.perf_counter()
    run()  # warm-up (with torch.compile: the compilation)
    warm = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    out = dict(seconds=statistics.median(times), runs=repeats, peak_mb=peak_rss_mb() - base, warm_up_s=warm)
    if task == 'step':  # one more run under the profiler: the time inside the matrix-product kernels alone
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof: run()
        out['products_s'] = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in PRODUCT_OPS) / 1e6
    return out


def measure(task: str, config: str, impl: str, sizes: dict, repeats: int, threads: int, env: dict | None = None) -> dict:
    """Run `worker` in a fresh Python process (so that its peak RSS is its own), with `env` added to its environment;
    an error becomes {'error': ...}."""
    cmd = [sys.executable, __file__, '--worker', json.dumps(dict(task=task, config=config, impl=impl, sizes=sizes,
                                                                  repeats=repeats, threads=threads))]
    print(f'  {task} {config} {impl} {" ".join(f"{k}={v}" for k, v in (env or {}).items())}...', file=sys.stderr, flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if p.returncode != 0:
        print(p.stderr[-2000:], file=sys.stderr)
        return dict(error=f'exit {p.returncode}')
    return json.loads(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------- formatting


def fmt_rate(r: dict, per_run: int, unit: str) -> str:
    if 'error' in r:
        return r['error']
    rate = per_run / r['seconds']
    num = f'{rate:,.0f}' if rate >= 100 else f'{rate:.2f}'
    return f"{num} {unit} ({r['seconds']:.2f} s/run)"


def fmt_ratio(ours: dict, ref: dict) -> str:
    if 'error' in ours or 'error' in ref:
        return 'n/a'
    return f"{ref['seconds'] / ours['seconds']:.2f}x"


def fmt_mb(r: dict) -> str:
    return 'n/a' if 'error' in r else f"{r['peak_mb'] / 1024:.2f} GB"






def airnet_table(args) -> str:
    """AIR-Net: ours against the reference-style path."""
    sizes = QUICK if args.quick else FULL
    impls = [args.only] if args.only else list(IMPLS)
    res = {}
    for config in ('airnet300', 'airnet3000'):
        for task in ('forward', 'step'):
            for impl in impls:
                res[task, config, impl] = measure(task, config, impl, sizes[config], args.repeats, args.threads)
    if args.compile:
        for config in ('airnet300', 'airnet3000'):
            res['step', config, COMPILED] = measure('step', config, COMPILED, sizes[config], args.repeats, args.threads)
    dec = sizes['decoder']
    for impl in impls:
        res['decoder', dec['config'], impl] = measure('decoder', dec['config'], impl, dec, args.repeats, args.threads)

    header = ['measurement'] + [f'{i}' for i in impls] + (['ours / reference-style'] if len(impls) == 2 else [])
    rows = []
    for config in ('airnet300', 'airnet3000'):
        s = sizes[config]
        what = f"{config} (B={s['batch']}, N={s['points']:,}, Q={s['queries']:,})"
        for task, label in (('forward', 'forward'), ('step', 'forward+backward')):
            rs = [res[task, config, i] for i in impls]
            rows.append([f'{what} {label}'] + [fmt_rate(r, s['batch'], 'samples/s') for r in rs]
                        + ([fmt_ratio(*rs)] if len(rs) == 2 else []))
        rs = [res['step', config, i] for i in impls]
        rows.append([f'{what} peak RSS growth, forward+backward'] + [fmt_mb(r) for r in rs]
                    + ([f"{rs[0]['peak_mb'] / rs[1]['peak_mb']:.2f}x memory" if all('error' not in r for r in rs)
                        else 'n/a'] if len(rs) == 2 else []))
    rs = [res['decoder', dec['config'], i] for i in impls]
    what = f"decoder, {dec['config']}, 1 shape, {dec['queries']:,} queries, eval"
    rows.append([what] + [fmt_rate(r, dec['queries'], 'queries/s') for r in rs] + ([fmt_ratio(*rs)] if len(rs) == 2 else []))
    rows.append([f'{what}, peak RSS growth'] + [fmt_mb(r) for r in rs] + (['-'] if len(rs) == 2 else []))
    if args.compile:
        for config in ('airnet300', 'airnet3000'):
            s, r, o = sizes[config], res['step', config, COMPILED], res['step', config, 'ours']
            rows.append([f"{config} forward+backward, {COMPILED} (compiling: "
                         f"{r.get('warm_up_s', float('nan')):.0f} s)", fmt_rate(r, s['batch'], 'samples/s')]
                        + ['-'] * (len(impls) - 1) + ([f"{fmt_ratio(r, o)} of ours"] if len(impls) == 2 else []))

    return "\n".join(["## AIR-Net: ours against the reference-style path", "",
        render_table(header, rows), "",
        "- forward: training mode with autograd on; forward+backward: forward, BCE-with-logits loss, backward.",
        "- reference-style: `attention.implementation('plain')` (plain block equations) and full-argsort kNN.",
        "- peak RSS growth: ru_maxrss of a fresh process per measurement, from before the first forward to the end.",
    ])


def fast_table(args) -> str:
    """Ours ('fast') against the previous default ('fused'): training steps of airnet3000 and demo3000."""
    res = {}
    for config, s in FAST_SIZES.items():
        for impl in ('fused', 'ours'):
            res[config, impl] = measure('step', config, impl, s, args.repeats, args.threads)
    header = ['forward+backward (training mode)', 'fused (previous default)', 'ours (fast)', 'ours / fused',
              'peak RSS fused', 'peak RSS ours', 'products: fused', 'products: ours', 'bound on ours / fused']
    rows = []
    prod = lambda r: 'n/a' if 'products_s' not in r else f"{r['products_s']:.2f} s"
    for config, s in FAST_SIZES.items():
        f, o = res[config, 'fused'], res[config, 'ours']
        steps = lambda r: 'n/a' if 'error' in r else f"{1 / r['seconds']:.3f} steps/s"
        bound = 'n/a' if 'error' in f or 'products_s' not in o else f"{f['seconds'] / o['products_s']:.2f}x"
        rows.append([f"{config} (B={s['batch']}, N={s['points']:,}, Q={s['queries']:,})",
                     f"{fmt_rate(f, s['batch'], 'samples/s')}, {steps(f)}", f"{fmt_rate(o, s['batch'], 'samples/s')}, {steps(o)}",
                     fmt_ratio(o, f), fmt_mb(f), fmt_mb(o), prod(f), prod(o), bound])
    text = ["## fast against fused (forward+backward)", "", render_table(header, rows), "",
            "- ratio: throughput of ours over fused's (> 1: ours is faster); every cell a fresh process, median of the runs.",
            "- products: the time of one step spent inside the matrix-product kernels (`mm`, `addmm`, oneDNN's linear and "
            "convolution-backward), from one more step under torch's profiler. Ours runs the same products as fused "
            "(the same algebra), through oneDNN; bound: fused's step time over ours' products alone, the most ours / fused "
            "could reach if everything else in ours' step took no time at all.", ""]
    # the allocator: a fresh 100 MB tensor is paid in page faults when it is first written; these settings keep memory mapped
    config, s = 'airnet3000', FAST_SIZES['airnet3000']
    for name, env in ALLOCATOR_SETTINGS[1:]:
        for impl in ('fused', 'ours'):
            res[config, impl, name] = measure('step', config, impl, s, args.repeats, args.threads, env)
    header = ['airnet3000 forward+backward, environment', 'fused', 'ours (fast)', 'ours / fused with no setting',
              'ours / ours with no setting', 'peak RSS fused', 'peak RSS ours']
    rows = []
    for name, _ in ALLOCATOR_SETTINGS:
        f, o = (res[config, i] if name == 'none' else res[config, i, name] for i in ('fused', 'ours'))
        rows.append([f'`{name}`' if name != 'none' else 'none', fmt_rate(f, s['batch'], 'samples/s'), fmt_rate(o, s['batch'], 'samples/s'),
                     fmt_ratio(o, res[config, 'fused']), fmt_ratio(o, res[config, 'ours']), fmt_mb(f), fmt_mb(o)])
    text += ["## The allocator: page faults", "",
             "A tensor of 100 MB that is allocated fresh (glibc returns large blocks to the system when they are freed) is "
             "paid in page faults the first time it is written. Two environment settings, set before Python starts, keep "
             "the memory mapped between steps: PyTorch's `THP_MEM_ALLOC_ENABLE=1` (2 MB transparent huge pages for "
             "large tensors) and glibc's `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...` (large blocks from the heap, "
             "never given back: the process keeps its peak memory).", "",
             render_table(header, rows), ""]
    return "\n".join(text)


def models_table(args) -> str:
    """The four models at their full-size configs: forward and forward+backward throughput, peak memory."""
    sizes = MODEL_SIZES['quick' if args.quick else 'full']
    res = {(t, n): measure(t, n, 'ours', sizes, args.repeats, args.threads) for n in ALL_MODELS for t in ('model_forward', 'model_step')}
    base = res['model_step', BASE_MODEL]
    header = ['model (config)', 'parameters', 'input', 'forward', 'forward+backward', 'peak RSS, forward+backward',
              f'forward+backward vs AIR-Net ({BASE_MODEL})']
    rows = []
    for n in ALL_MODELS:
        f, s = res['model_forward', n], res['model_step', n]
        c = load_config(n)
        inp = f"{c.training.pc_samples:,} points" + (f" -> {c.encoder.resolution}^3 voxels" if c.encoder.type == 'ifnet' else '')
        rows.append([n, f"{s.get('params', 0):,}" if 'error' not in s else 'n/a', inp,
                     fmt_rate(f, sizes['batch'], 'samples/s'), fmt_rate(s, sizes['batch'], 'samples/s'), fmt_mb(s),
                     fmt_ratio(s, base) if n != BASE_MODEL else '1.00x'])
    return "\n".join([f"## The four models (batch {sizes['batch']}, {sizes['queries']:,} queries, training mode)", "",
        render_table(header, rows), "",
        "- full-size packaged configs (the AIR-Nets repo's); IF-Net's input is the cloud voxelised at 128^3 (not timed).",
        f"- the ratio is forward+backward throughput over {BASE_MODEL}'s (> 1: faster than AIR-Net).", ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per measurement after the warm-up (default 3)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help=f"torch threads in every measurement (default {torch.get_num_threads()})")
    ap.add_argument("--only", choices=['ours', 'reference-style'], help="measure one implementation only")
    ap.add_argument("--compile", action="store_true",
                    help="also measure ours with torch.compile on the encoder's blocks (training rows only)")
    ap.add_argument("--models", action="store_true", help="only the table of the four models")
    ap.add_argument("--fast", action="store_true", help="only the table of ours against the previous default ('fused')")
    ap.add_argument("--out", type=Path, help="also write the table as markdown to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        w = json.loads(args.worker)
        torch.set_num_threads(w['threads'])
        print(json.dumps(worker(w['task'], w['config'], w['impl'], w['sizes'], w['repeats'])))
        return 0
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    load = os.getloadavg()
    start = time.perf_counter()
    parts = []
    if args.fast:
        parts.append(fast_table(args))
    else:
        if not args.models:
            parts.append(airnet_table(args))
        parts.append(models_table(args))
    wall = time.perf_counter() - start
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        f"# Model speed on the CPU ({date})", "",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; {platform.system()} {platform.release()}; "
        f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) at the start, "
        f"{os.getloadavg()[0]:.2f} at the end (other work on the machine distorts the times)",
        f"- Python {platform.python_version()}, torch {torch.__version__}, {args.threads} torch threads; "
        f"median of {args.repeats} runs after a warm-up{'; --quick sizes' if args.quick else ''}", "",
        *parts,
        f"- Whole benchmark: {wall:.0f} s wall time.", "",
    ])
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
