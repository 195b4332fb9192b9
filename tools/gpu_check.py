"""The GPU path in one short run (`make gpu-check`): what no CPU-only test can show, checked on a machine with a GPU.

    python tools/gpu_check.py                 # on a GPU machine, with airnets installed (make setup)
    python tools/gpu_check.py --device cpu    # the same steps on the CPU (a dry run of this script; no GPU comparisons)

Steps, each timed, each PASS, FAIL or SKIP with a reason, then a one-screen summary; exit 0 when nothing failed:
 1. the extension: airnets._C is built with its CUDA kernels, and torch sees the GPU;
 2. every `#| cuda` notebook cell (nbdev_test --flags cuda on the notebooks that have one);
 3. airnets_train of the `tiny` model for two epochs on the device: float32, bf16 and fp16 autocast (fp16 with its
    gradient scaler), each with a finite validation loss;
 4. airnets_generate of two test objects and airnets_evaluate / airnets_evaluate_gather of them;
 5. farthest point sampling: the GPU's indices equal the CPU's on the reference fixtures (../shared/fixtures), or on
    a test cloud where the fixtures are absent;
 6. the reference AIR-Nets on the GPU: logits within 1e-4 of the CPU's (fixtures), in float32.
It makes its own small dataset (45 procedural shapes: 15 train, 15 validation, 15 test) in a temporary folder and removes it. Budget: under 8 minutes.

On a machine that cannot reach a package index, carry the wheels airnets needs (see the device notes) and install the
package with `pip install --no-deps --no-build-isolation -e .` before running this.
"""
from __future__ import annotations

import argparse, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent/'shared'/'fixtures'
RESULTS: list = []


def step(name: str):
    "Decorator: run a check, record PASS / FAIL / SKIP with its seconds and a one-line detail"
    def deco(fn):
        def run(*a, **k):
            t = time.perf_counter()
            try:
                out = fn(*a, **k)
                status, detail = ('SKIP', out[5:].strip()) if isinstance(out, str) and out.startswith('SKIP:') else ('PASS', out or '')
            except Exception as e: status, detail = 'FAIL', f'{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ""}'
            RESULTS.append((name, status, time.perf_counter() - t, str(detail)))
            print(f'[{status}] {name} ({time.perf_counter() - t:.0f} s): {detail}', flush=True)
        return run
    return deco


def sh(*args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if r.returncode not in (0,): raise RuntimeError(f'{" ".join(map(str, args[:3]))} ... exit {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}')
    return r


def bin_(name: str) -> str: return str(Path(sys.executable).parent/name)


@step('extension and device')
def check_extension(device: str):
    import torch
    from airnets.fps import fps_backend
    cuda_kernel = fps_backend('cuda') == 'cuda'    # the extension is built with its CUDA kernels
    if device == 'cpu': return f'torch {torch.__version__}; CUDA kernel built: {cuda_kernel} (cpu run)'
    if not torch.cuda.is_available(): raise RuntimeError(f'torch {torch.__version__} sees no GPU (CUDA build: {torch.version.cuda})')
    if not cuda_kernel: raise RuntimeError('airnets._C was built without its CUDA kernels: reinstall on this machine (pip install -e . --no-build-isolation)')
    return f'{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}'


@step('#| cuda notebook cells')
def check_cuda_cells(device: str):
    if device == 'cpu': return 'SKIP: cpu run'
    nbs = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if '#| cuda' in p.read_text())
    for nb in nbs: sh(bin_('nbdev_test'), '--flags', 'cuda', '--path', nb, cwd=ROOT/'nbs', timeout=300)
    return f'{len(nbs)} notebooks: {", ".join(nbs)}'


@step('tiny training: float32, bf16, fp16')
def check_training(device: str, work: Path):
    import torch, yaml
    from airnets.config import load_config
    done = []
    for amp in (None, 'bf16', 'fp16'):
        if amp == 'fp16' and device == 'cpu': continue   # float16 autocast with a scaler is a GPU recipe
        cfg = load_config('tiny').to_dict(); cfg['training'].update(amp=amp, epochs=2)
        f = work/f'tiny_{amp}.yaml'; f.write_text(yaml.safe_dump(cfg))
        sh(bin_('airnets_train'), '-exp_name', f'tiny_{amp}', '-cfg_file', f, '--data_root', work/'shapes', '--device', device, '--quiet', cwd=work)
        ck = torch.load(work/'experiments'/f'tiny_{amp}'/'checkpoints'/'checkpoint_epoch_2.tar', map_location='cpu', weights_only=True)
        val = ck['history'][-1]['val_loss']
        if not val == val or val > 5: raise RuntimeError(f'amp={amp}: validation loss {val}')
        done.append(f'{amp or "fp32"} val {val:.3f}')
    return ', '.join(done)


@step('generate and evaluate two objects')
def check_generation(device: str, work: Path):
    sh(bin_('airnets_generate'), '-exp_name', 'tiny_None', '--data_root', work/'shapes', '-mise_res', 16, '-mise_steps', 1, '--threshold', 0.3,
       '--shard', '0/8', '--device', device, '--quiet', cwd=work)
    gen = next((work/'experiments'/'tiny_None').glob('evaluation_*/generation'))
    sh(bin_('airnets_evaluate'), '-generation_path', gen, '--workers', 0, '--n_surface', 20000, '--n_iou', 100000, '--quiet', cwd=work)
    r = subprocess.run([bin_('airnets_evaluate_gather'), '-generation_path', str(gen)], capture_output=True, text=True, cwd=work)
    if r.returncode not in (0, 1): raise RuntimeError(r.stderr.strip()[-300:])
    n = len(list(gen.glob('*/*/eval.json')))
    if n != 2: raise RuntimeError(f'{n} objects evaluated, expected 2')
    return f'2 objects generated on {device} and evaluated'


def _fixtures():
    import torch
    from torch.torch_version import TorchVersion
    for p in sorted(FIXTURES.glob('reference_airnet*.pt')):
        with torch.serialization.safe_globals([TorchVersion]): yield p, torch.load(p, map_location='cpu', weights_only=True)


@step('FPS: GPU indices equal the CPU\'s')
def check_fps(device: str):
    import torch
    from airnets.fps import farthest_point_sample
    from airnets.fps_demo import demo_cloud
    if device == 'cpu': return 'SKIP: cpu run'
    clouds = [fx['inputs']['points'] for _, fx in _fixtures()] or [demo_cloud(3000)[None]]
    for pts in clouds:
        for m in (pts.shape[1] // 6, pts.shape[1] // 3):
            a = farthest_point_sample(pts, m); b = farthest_point_sample(pts.cuda(), m).cpu()
            if not torch.equal(a, b): raise RuntimeError(f'{tuple(pts.shape)} -> {m}: {(a != b).sum().item()} indices differ')
    return f'{len(clouds)} clouds ({"fixtures" if FIXTURES.is_dir() else "test cloud"}), identical'


@step('reference AIR-Nets: GPU logits equal the CPU\'s')
def check_logits(device: str):
    import torch
    from airnets.airnet import AirNet
    from airnets.checkpoints import load_halves, read_weights
    if device == 'cpu': return 'SKIP: cpu run'
    fx = list(_fixtures())
    if not fx: return f'SKIP: {FIXTURES} is absent'
    worst = []
    for p, f in fx:
        m = load_halves(AirNet(f['config']), read_weights(p), p).eval(); x, q = f['inputs']['points'], f['inputs']['queries']
        with torch.no_grad(): cpu = m(x, q); gpu = m.cuda()(x.cuda(), q.cuda()).cpu()
        d = (cpu - gpu).abs().max().item(); worst.append(d)
        if d > 1e-4: raise RuntimeError(f'{p.name}: max |CPU - GPU| = {d:.2e} > 1e-4')
    return f'max |CPU - GPU| {max(worst):.1e} on {len(fx)} fixtures'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cuda', choices=['cuda', 'cpu'], help='cpu: a dry run of the same steps without a GPU')
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    check_extension(a.device)
    check_cuda_cells(a.device)
    work = Path(tempfile.mkdtemp(prefix='airnets-gpu-check-'))
    try:
        sh(bin_('airnets_make_shapes'), '--out', work/'shapes', '--n', 45, '--seed', 0, '--quiet')
        sh(bin_('airnets_prepare'), '--data_root', work/'shapes', '--quiet')
        check_training(a.device, work)
        check_generation(a.device, work)
    finally: shutil.rmtree(work, ignore_errors=True)
    check_fps(a.device)
    check_logits(a.device)
    print(f'\n== gpu-check on {a.device}: {time.perf_counter() - t0:.0f} s')
    for name, status, secs, detail in RESULTS: print(f'{status:4s} {secs:5.0f} s  {name}: {detail}')
    failed = sum(s == 'FAIL' for _, s, _, _ in RESULTS)
    print(f'{sum(s == "PASS" for _, s, _, _ in RESULTS)} passed, {failed} failed, {sum(s == "SKIP" for _, s, _, _ in RESULTS)} skipped')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
