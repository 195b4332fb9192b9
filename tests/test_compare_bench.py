"""bench/compare.py's budget rule: a run whose validation curve has not flattened (its last third lowered the best
loss by more than --flat_tol) goes on, in steps of half the budget, until it has or until --until_flat minutes; without
--until_flat every run gets the same budget. Every invocation is logged, and the table counts the wall time of all."""
import json
import time
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def compare():
    spec = importlib.util.spec_from_file_location('bench_compare', ROOT/'bench'/'compare.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def curve(*losses): return [dict(val_loss=v) for v in losses]


def test_flattened_is_a_last_third_that_gains_less_than_the_tolerance(compare):
    falls_to_20 = curve(*[1 / (i + 1) for i in range(20)], *[0.05] * 10)   # best reached at epoch 20 of 30: flat
    assert compare.last_third_gain(falls_to_20) == 0 and compare.flattened(falls_to_20, 0) and compare.flattened(falls_to_20)
    creeps = curve(*[1.0] * 20, *[0.999 - 0.0005 * i for i in range(10)])  # 0.55% lower in the last third
    assert abs(compare.last_third_gain(creeps) - 0.0055) < 1e-9
    assert compare.flattened(creeps, 0.01) and not compare.flattened(creeps, 0.005) and not compare.flattened(creeps, 0)
    falls = curve(*[1 / (i + 1) for i in range(30)])
    assert compare.last_third_gain(falls) > 0.3 and not compare.flattened(falls)
    assert not compare.flattened([]) and not compare.flattened(curve(1, 0.5)) and compare.last_third_gain(curve(1, 0.5)) is None


def fake_runs(compare, monkeypatch, tmp_path, flat_after):
    "sh() records the budgets; the checkpoint's curve flattens once the budget reaches `flat_after` minutes"
    import airnets.checkpoints, airnets.train
    budgets = []
    def sh(args, threads, log):
        budgets.append(float(args[args.index('--max_minutes') + 1]))
        return 0
    def read_weights(path):
        n = int(budgets[-1])                            # one epoch a minute
        best = n // 2 if budgets[-1] >= flat_after else n   # flat: the loss falls until the middle, then stays
        return dict(history=curve(*[1 / (1 + min(i, best)) for i in range(n)]), best_epoch=best)
    monkeypatch.setattr(compare, 'sh', sh)
    monkeypatch.setattr(airnets.train, 'list_checkpoints', lambda exp: [(1, tmp_path/'ck.tar')])
    monkeypatch.setattr(airnets.checkpoints, 'read_weights', read_weights)
    return budgets


def args(tmp_path, **kw):
    return SimpleNamespace(exp_root=str(tmp_path), data_root='data/shapes', minutes=24.0, threads=1, flat_tol=0.01,
                           started='2026-01-01 00:00:00', t_start=time.perf_counter(), **kw)


def test_until_flat_extends_only_while_not_flat(compare, monkeypatch, tmp_path):
    a = args(tmp_path, until_flat=96.0)
    budgets = fake_runs(compare, monkeypatch, tmp_path, flat_after=48)
    assert compare.train('run', {}, a) == 0
    assert budgets == [24, 36, 48]                   # 24, then steps of 12 until the curve has flattened


def test_until_flat_stops_at_its_cap_and_default_is_one_budget(compare, monkeypatch, tmp_path):
    a = args(tmp_path, until_flat=50.0)
    budgets = fake_runs(compare, monkeypatch, tmp_path, flat_after=1000)
    compare.train('run', {}, a)
    assert budgets == [24, 36, 48, 50]               # never flat: stops at the cap
    budgets.clear(); a.until_flat = None
    compare.train('run', {}, a)
    assert budgets == [24]


def test_invocations_add_up(compare, tmp_path):
    log = tmp_path/'compare_invocations.json'
    log.write_text(json.dumps([dict(started='2026-01-01 00:00:00', machine='m', wall_minutes=30.5, argv=[])]))
    a = args(tmp_path, until_flat=96.0)
    a.started, a.t_start = '2026-01-02 00:00:00', time.perf_counter() - 90   # this one has run 1.5 minutes
    first, wall = compare.log_invocation(a)
    assert first == '2026-01-01 00:00:00' and wall == 32.0
    a.t_start -= 60                                                          # its entry is updated, not added again
    assert compare.log_invocation(a) == (first, 33.0) and len(json.loads(log.read_text())) == 2


def test_a_flat_tolerance_outside_0_to_1_is_refused(compare, monkeypatch, capsys):
    for bad in ('-0.1', '1.5'):
        monkeypatch.setattr('sys.argv', ['compare.py', '--flat_tol', bad])
        with pytest.raises(SystemExit) as e: compare.main()
        assert e.value.code == 2 and f'--flat_tol {float(bad):g}: a fraction' in capsys.readouterr().err
