"""bench/compare.py's budget rule: a run whose validation curve has not flattened goes on, in steps of half the
budget, until it has or until --until_flat minutes; without --until_flat every run gets the same budget."""
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


def test_flattened_is_best_epoch_outside_the_last_third(compare):
    assert compare.flattened([{}] * 30, 20) and not compare.flattened([{}] * 30, 21)
    assert not compare.flattened([], None) and not compare.flattened([{}] * 3, None)


def fake_runs(compare, monkeypatch, tmp_path, flat_after):
    "sh() records the budgets; the checkpoint's curve flattens once the budget reaches `flat_after` minutes"
    import airnets.airnet, airnets.train
    budgets = []
    def sh(args, threads, log):
        budgets.append(float(args[args.index('--max_minutes') + 1]))
        return 0
    def read_weights(path):
        n = int(budgets[-1])                            # one epoch a minute
        best = n // 2 if budgets[-1] >= flat_after else n   # flat: best epoch in the first half
        return dict(history=[{}] * n, best_epoch=best)
    monkeypatch.setattr(compare, 'sh', sh)
    monkeypatch.setattr(airnets.train, 'list_checkpoints', lambda exp: [(1, tmp_path/'ck.tar')])
    monkeypatch.setattr(airnets.airnet, 'read_weights', read_weights)
    return budgets


def test_until_flat_extends_only_while_not_flat(compare, monkeypatch, tmp_path):
    a = SimpleNamespace(exp_root=str(tmp_path), data_root='data/shapes', minutes=24.0, threads=1, until_flat=96.0)
    budgets = fake_runs(compare, monkeypatch, tmp_path, flat_after=48)
    assert compare.train('run', {}, a) == 0
    assert budgets == [24, 36, 48]                   # 24, then steps of 12 until the curve has flattened


def test_until_flat_stops_at_its_cap_and_default_is_one_budget(compare, monkeypatch, tmp_path):
    a = SimpleNamespace(exp_root=str(tmp_path), data_root='data/shapes', minutes=24.0, threads=1, until_flat=50.0)
    budgets = fake_runs(compare, monkeypatch, tmp_path, flat_after=1000)
    compare.train('run', {}, a)
    assert budgets == [24, 36, 48, 50]               # never flat: stops at the cap
    budgets.clear(); a.until_flat = None
    compare.train('run', {}, a)
    assert budgets == [24]
