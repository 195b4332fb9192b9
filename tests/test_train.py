"""End to end: `airnets_train` as a user runs it (fresh processes, files on disk, exit codes): training lowers the
validation loss on the embedded shapes, SIGKILL and resume gives the weights of an uninterrupted run, torchrun DDP
on CPU, TensorBoard scalars, and one-line errors with exit code 2 for bad configs."""
import os, re, shutil, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch

BIN = Path(sys.executable).parent
SCRIPT = 'from airnets.train import train_cli; train_cli()'
EPOCHS, DROP, MARGIN = 20, 0.01, 0.02   # the tiny model with its recipe leaves the plateau in about 10 epochs (the reference recipe: about 60)
PLATEAU_EPOCHS_DEMO, PLATEAU_EPOCHS_DEMO3000 = 50, 30   # 100 and 60 steps: measured under 0.85 x constant at about 70 and 30
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}

def train(*args, cwd, timeout=600):
    return subprocess.run([sys.executable, '-c', SCRIPT, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=ENV)

@pytest.fixture(scope='module')
def data_root(shapes45):
    "45 embedded shapes (15 train / 15 val / 15 test), prepared at the pipeline's full sizes (tests/conftest.py)"
    return shapes45

def ckpt(exp, e):
    return torch.load(exp/'checkpoints'/f'checkpoint_epoch_{e}.tar', map_location='cpu', weights_only=True)

def scalars(exp):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(exp/'summary')); acc.Reload()
    return {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()['scalars']}

def constant_predictor_loss(data_root) -> float:
    "An independent yardstick: the best constant prediction's loss, the entropy of the validation labels' inside rate"
    from airnets.datasets import read_split
    occ = np.concatenate([np.load(data_root/o/f'boundary_{s}_samples.npz')['occupancies'] for o in read_split(data_root/'split.npz', 'val') for s in (0.1, 0.01)])
    p = occ.mean(); return -(p * np.log(p) + (1 - p) * np.log(1 - p))

@pytest.mark.slow
def test_training_lowers_validation_loss(data_root, tmp_path):
    r = train('-exp_name', 'learn', '-cfg_file', 'tiny', '-data_type', 'ifnet', '--data_root', data_root, '--epochs', EPOCHS, '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    exp = tmp_path/'experiments'/'learn'
    hist = ckpt(exp, EPOCHS)['history']
    val = np.array([h['val_loss'] for h in hist])
    prior = constant_predictor_loss(data_root)
    print(f'validation loss: epoch 1 {val[0]:.4f}, best {val.min():.4f} (epoch {val.argmin() + 1}), last {val[-1]:.4f}; constant predictor {prior:.4f}')
    assert val[-3:].mean() < val[:3].mean() - DROP
    assert val.min() < prior - MARGIN
    best = __import__('json').loads((exp/'val_min.json').read_text())
    assert best['epoch'] == val.argmin() + 1 and abs(best['val_loss'] - val.min()) < 1e-12
    assert f"best epoch {best['epoch']}" in r.stdout
    s = scalars(exp)
    assert sorted(s) == ['learning rate', 'training loss batch avg', 'training loss last batch', 'val loss batch avg']
    assert [st for st, _ in s['val loss batch avg']] == list(range(1, EPOCHS + 1))
    np.testing.assert_allclose([v for _, v in s['val loss batch avg']], val, rtol=1e-6)

PLATEAU_STEPS, PLATEAU_FRACTION = 200, 0.85

@pytest.mark.slow
@pytest.mark.parametrize('config,epochs', [('demo', PLATEAU_EPOCHS_DEMO), ('demo3000', PLATEAU_EPOCHS_DEMO3000)])
def test_the_recipe_leaves_the_plateau_within_200_steps(data_root, tmp_path, config, epochs):
    "demo and demo3000 with their packaged recipe, from scratch: the validation loss falls under 0.85 x the constant predictor's within 200 optimizer steps"
    r = train('-exp_name', config, '-cfg_file', config, '--data_root', data_root, '--epochs', epochs, '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    hist = ckpt(tmp_path/'experiments'/config, epochs)['history']
    assert hist[-1]['steps'] <= PLATEAU_STEPS and [h['steps'] for h in hist] == [2 * e for e in range(1, epochs + 1)]  # 15 shapes, batch 8: 2 steps an epoch
    prior = constant_predictor_loss(data_root)
    below = [h['steps'] for h in hist if h['val_loss'] < PLATEAU_FRACTION * prior]
    print(f"{config}: constant predictor {prior:.4f}; validation loss " + ', '.join(f"{h['val_loss']:.3f}@{h['steps']}" for h in hist[4::5]) +
          f"; first under {PLATEAU_FRACTION} x constant at step {below[0] if below else None}")
    assert below, f'{config}: best validation loss {min(h["val_loss"] for h in hist):.4f} after {hist[-1]["steps"]} steps, constant predictor {prior:.4f}'

@pytest.mark.slow
def test_sigkill_in_epoch_3_and_resume_gives_the_uninterrupted_weights(data_root, tmp_path):
    args = ['-cfg_file', 'tiny', '--data_root', data_root, '--epochs', 5, '--quiet', '--seed', 7]
    r = train('-exp_name', 'whole', *args, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    exp = tmp_path/'experiments'/'cut'
    p = subprocess.Popen([sys.executable, '-c', SCRIPT, '-exp_name', 'cut', *map(str, args)], cwd=tmp_path, env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while not (exp/'checkpoints'/'checkpoint_epoch_2.tar').exists():
        assert p.poll() is None and time.time() - t0 < 300, 'the run ended before epoch 3'
        time.sleep(0.01)
    time.sleep(0.1)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    done = sorted(f.name for f in (exp/'checkpoints').iterdir() if not f.name.startswith('.'))
    assert done == ['checkpoint_epoch_1.tar', 'checkpoint_epoch_2.tar'], done  # killed in epoch 3
    # what a kill during a checkpoint write leaves behind: a temporary file, and (copied by hand) a truncated checkpoint
    raw = (exp/'checkpoints'/'checkpoint_epoch_2.tar').read_bytes()
    (exp/'checkpoints'/'.checkpoint_epoch_3.tar.123.partial').write_bytes(raw[:1000])
    (exp/'checkpoints'/'checkpoint_epoch_9.tar').write_bytes(raw[:len(raw) // 3])
    r2 = train('-exp_name', 'cut', '--data_root', data_root, '--quiet', '--epochs', 5, '--seed', 7, cwd=tmp_path)  # no -cfg_file: the saved config
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert 'skipping' in r2.stdout and 'checkpoint_epoch_9.tar' in r2.stdout and 'resuming after epoch 2' in r2.stdout
    assert not list((exp/'checkpoints').glob('.*partial'))
    a, b = ckpt(tmp_path/'experiments'/'whole', 5), ckpt(exp, 5)
    for part in ('encoder_state_dict', 'decoder_state_dict'):
        for k, v in a[part].items(): torch.testing.assert_close(b[part][k], v, rtol=1e-5, atol=1e-6, msg=f'{part} {k}')
    np.testing.assert_allclose([h['val_loss'] for h in b['history']], [h['val_loss'] for h in a['history']], rtol=1e-5)
    assert b['lr'] == a['lr'] and b['scheduler_state_dict'] == a['scheduler_state_dict']
    assert [st for st, _ in scalars(exp)['val loss batch avg']] == [1, 2, 3, 4, 5]  # epoch 3's scalars logged once

@pytest.mark.slow   # two training processes and their rendezvous
def test_torchrun_two_processes_on_cpu(data_root, tmp_path):
    script = tmp_path/'train.py'; script.write_text(SCRIPT + '\n')
    r = subprocess.run([str(BIN/'torchrun'), '--standalone', '--nproc_per_node', '2', str(script), '-exp_name', 'ddp', '-cfg_file', 'tiny',
                        '--data_root', str(data_root), '--epochs', '1', '--device', 'cpu', '--quiet'],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    exp = tmp_path/'experiments'/'ddp'
    assert sorted(f.name for f in (exp/'checkpoints').iterdir()) == ['checkpoint_epoch_1.tar']
    c = ckpt(exp, 1)
    assert c['world_size'] == 2 and c['epoch'] == 1 and np.isfinite(c['history'][0]['val_loss'])
    assert r.stdout.count('epoch 1/1:') == 1  # only rank 0 reports
    assert (exp/'config.yaml').is_file() and len(list((exp/'summary').glob('events.*'))) == 1  # only rank 0 writes

def bad(tmp_path, text):
    p = tmp_path/'bad.yaml'; p.write_text(text); return p

TINY = (Path(__file__).resolve().parents[1]/'airnets'/'configs'/'tiny.yaml').read_text()

@pytest.mark.parametrize('case,words', [   # each a fresh process: the first in make test-fast, all in make test
    ('unknown key', ['bad.yaml', 'unknown key `training.lr_decay_intervall`']),
    pytest.param('wrong type', ['bad.yaml', '`training.batch_size`', "'four'"], marks=pytest.mark.slow),
    pytest.param('missing file', ['nosuch.yaml', 'not found'], marks=pytest.mark.slow),
    pytest.param('bad yaml', ['bad.yaml:', 'not valid YAML'], marks=pytest.mark.slow),
])
def test_bad_configs_exit_2_with_one_line(data_root, tmp_path, case, words):
    cfg = {'unknown key': lambda: bad(tmp_path, TINY.replace('lr_decay_interval', 'lr_decay_intervall')),
           'wrong type': lambda: bad(tmp_path, TINY.replace('batch_size: 4', 'batch_size: four')),
           'missing file': lambda: tmp_path/'nosuch.yaml',
           'bad yaml': lambda: bad(tmp_path, re.sub(r'^  lr: (.*)$', r'  lr: [\1', TINY, flags=re.M))}[case]()
    r = train('-exp_name', 'bad', '-cfg_file', cfg, '--data_root', data_root, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('airnets_train: '), r.stderr
    for w in words: assert w in lines[0], lines[0]
    assert not (tmp_path/'experiments'/'bad'/'checkpoints').exists()

def test_usage_errors(data_root, tmp_path):
    for args, words in ((['-data_type', 'human'], ['human', 'evaluation']),
                        (['-data_type', 'onet', '--data_root', tmp_path/'none'], ['--data_root', 'no such folder']),
                        (['--device', 'cuda:0'] if not torch.cuda.is_available() else ['--device', 'tpu'], ['--device'])):
        r = train('-exp_name', 'u', '-cfg_file', 'tiny', '--data_root', data_root, *args, cwd=tmp_path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        for w in words: assert w in r.stderr, r.stderr

@pytest.mark.slow   # trains an epoch, then two refused runs
def test_checkpoint_of_another_model_or_config_is_refused(data_root, tmp_path):
    assert train('-exp_name', 'a', '-cfg_file', 'tiny', '--data_root', data_root, '--epochs', 1, '--quiet', cwd=tmp_path).returncode == 0
    # the same experiment with another config file
    other = bad(tmp_path, TINY.replace('encoder_attn_dim: 32', 'encoder_attn_dim: 48'))
    r = train('-exp_name', 'a', '-cfg_file', other, '--data_root', data_root, cwd=tmp_path)
    assert r.returncode == 2 and 'encoder.encoder_attn_dim' in r.stderr and 'bad.yaml' in r.stderr and 'config.yaml' in r.stderr, r.stderr
    # another experiment's checkpoint copied into a new experiment of another model
    (tmp_path/'experiments'/'b'/'checkpoints').mkdir(parents=True)
    shutil.copy(tmp_path/'experiments'/'a'/'checkpoints'/'checkpoint_epoch_1.tar', tmp_path/'experiments'/'b'/'checkpoints')
    r = train('-exp_name', 'b', '-cfg_file', other, '--data_root', data_root, cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert 'checkpoint_epoch_1.tar' in r.stderr and 'config tiny' in r.stderr and 'bad.yaml' in r.stderr and 'encoder.encoder_attn_dim' in r.stderr, r.stderr

@pytest.mark.slow
def test_init_weights_warm_starts_and_survives_resume(data_root, tmp_path):
    "--init_weights: a new experiment starts from a weights file (here: a tiny run's checkpoint), records it, and a resume keeps it"
    r = train('-exp_name', 'src', '-cfg_file', 'tiny', '-data_type', 'ifnet', '--data_root', data_root, '--epochs', 3, '--seed', 7, '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    src = tmp_path/'experiments'/'src'/'checkpoints'/'checkpoint_epoch_3.tar'
    r = train('-exp_name', 'warm', '-cfg_file', 'tiny', '-data_type', 'ifnet', '--data_root', data_root, '--epochs', 1, '--init_weights', src, '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f'starting from the weights of {src}' in r.stdout
    a, b = ckpt(tmp_path/'experiments'/'src', 3), ckpt(tmp_path/'experiments'/'warm', 1)
    assert b['init_weights'] == str(src)
    # the source has another seed: a fresh start (seed 0) is far from it, a warm start after one epoch near it
    fresh = train('-exp_name', 'fresh', '-cfg_file', 'tiny', '-data_type', 'ifnet', '--data_root', data_root, '--epochs', 1, '--quiet', cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    c = ckpt(tmp_path/'experiments'/'fresh', 1)
    dist = lambda x, y: sum(float((x['encoder_state_dict'][k].float() - y['encoder_state_dict'][k].float()).norm()) for k in x['encoder_state_dict'] if x['encoder_state_dict'][k].is_floating_point())
    assert dist(a, b) < 0.3 * dist(a, c), (dist(a, b), dist(a, c))
    r = train('-exp_name', 'warm', '-cfg_file', 'tiny', '-data_type', 'ifnet', '--data_root', data_root, '--epochs', 2, '--quiet', cwd=tmp_path)
    assert r.returncode == 0 and 'starting from the weights' not in r.stdout
    assert ckpt(tmp_path/'experiments'/'warm', 2)['init_weights'] == str(src)

@pytest.mark.slow   # two refused runs, each a fresh process that imports torch
def test_init_weights_errors(data_root, tmp_path):
    r = train('-exp_name', 'x', '-cfg_file', 'tiny', '-data_type', 'ifnet', '--data_root', data_root, '--init_weights', 'no_such_model', cwd=tmp_path)
    assert r.returncode == 2 and 'no such file, and no shipped model of that name' in r.stderr, r.stderr
    r = train('-exp_name', 'y', '-cfg_file', 'tiny', '-data_type', 'ifnet', '--data_root', data_root, '--init_weights', 'demo', cwd=tmp_path)
    assert r.returncode == 2 and 'does not fit the config' in r.stderr, r.stderr   # the demo architecture is not tiny's

@pytest.mark.slow
def test_training_on_crops(data_root, tmp_path):
    "A config with data.crops trains on CropDataset through the same command; its loss falls below the constant predictor's"
    import yaml
    cfg = yaml.safe_load((Path(__import__('airnets').__file__).parent/'configs'/'general.yaml').read_text())
    cfg['training'].update(epochs=6, batch_size=4)
    cfg['encoder']['npoints_per_layer'] = [128, 64, 16]; cfg['training']['pc_samples'] = 128
    (tmp_path/'crops.yaml').write_text(yaml.safe_dump(cfg))
    r = train('-exp_name', 'crops', '-cfg_file', tmp_path/'crops.yaml', '-data_type', 'ifnet', '--data_root', data_root, '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    hist = ckpt(tmp_path/'experiments'/'crops', 6)['history']
    assert all(np.isfinite(h['val_loss']) for h in hist)
    assert min(h['train_loss'] for h in hist) < hist[0]['train_loss']
