"""The package's shape: the import graph among airnets' modules (imports at module level and inside functions alike)
has no cycle, and no module imports another module's private names; nor do the benches, tools and tests."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]/'airnets'
MODULES = sorted(p.stem for p in PKG.glob('*.py') if p.stem not in ('__init__', '_modidx'))

def imports(module: str, path: Path | None = None) -> list:
    "(target module, imported names, line) for every import of an airnets module in `module` (or the file `path`), wherever it stands"
    found = []
    for node in ast.walk(ast.parse((path or PKG/f'{module}.py').read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name.split('.')[1], [], node.lineno) for a in node.names if a.name.startswith('airnets.')]
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level == 1 and node.module: found.append((node.module.split('.')[0], names, node.lineno))          # from .m import x
            elif node.level == 1 or node.module == 'airnets': found += [(n, [], node.lineno) for n in names]            # from . import m
            elif node.level == 0 and (node.module or '').startswith('airnets.'): found.append((node.module.split('.')[1], names, node.lineno))
    return found

def graph() -> dict:
    "module -> the airnets modules it imports (compiled extensions such as _C and _mise are leaves, left out)"
    return {m: sorted({t for t, _, _ in imports(m) if t in MODULES and t != m}) for m in MODULES}

def find_cycle(g: dict) -> list | None:
    "A cycle of the graph as [a, b, ..., a], or None"
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for n in g[m]:
            if state.get(n) == 'open': return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)): return c
        state[m] = 'done'; stack.pop()
        return None
    for m in g:
        if m not in state and (c := visit(m)): return c
    return None

def test_the_modules_are_found():
    assert {'cli', 'checkpoints', 'files', 'prepare', 'train', 'generate', 'evaluate', 'pretrained'} <= set(MODULES)
    assert 'cli' in graph()['prepare'] and 'checkpoints' in graph()['train']

def test_the_import_graph_has_no_cycle():
    assert find_cycle(graph()) is None, ' -> '.join(find_cycle(graph()))

def test_the_cycle_finder_finds_cycles():
    assert find_cycle({'a': ['b'], 'b': ['c'], 'c': ['a']}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': ['b', 'c'], 'b': ['c'], 'c': []}) is None

@pytest.mark.parametrize('leaf, allowed', [('cli', set()), ('checkpoints', {'files'}), ('files', set())])
def test_the_plumbing_layers_are_leaves(leaf, allowed):
    assert set(graph()[leaf]) <= allowed, graph()[leaf]

def closure(g: dict, m: str) -> set:
    "every module that `m` imports, directly or through others"
    seen, todo = set(), [m]
    while todo:
        for n in g[todo.pop()]:
            if n not in seen: seen.add(n); todo.append(n)
    return seen

@pytest.mark.parametrize('model', ['fps', 'attention', 'airnet', 'onet', 'convonet', 'ifnet'])
def test_the_models_do_not_pull_in_the_command_line_or_file_layers(model):
    assert not closure(graph(), model) & {'cli', 'files'}, closure(graph(), model)
    assert 'cli' in closure(graph(), 'fps_demo')      # the closure is transitive: the demo's command reaches cli

def test_no_module_imports_another_modules_private_names():
    bad = [f'airnets/{m}.py:{line}: from {t} import {n}' for m in MODULES for t, names, line in imports(m)
           if t in MODULES and t != m for n in names if n.startswith('_')]
    assert not bad, '\n'.join(bad)

SCRIPTS = sorted(p for d in ('bench', 'tools', 'tests') for p in (PKG.parent/d).glob('*.py'))

def test_scripts_use_only_the_public_names_of_airnets():
    "bench/, tools/ and tests/ import neither airnets' compiled extensions (_C, _mise) nor a module's private names"
    assert len(SCRIPTS) > 20 and any(p.name == 'mise.py' for p in SCRIPTS)
    bad = [f'{p.relative_to(PKG.parent)}:{line}: {t} {names}' for p in SCRIPTS for t, names, line in imports('', p)
           if t.startswith('_') or any(n.startswith('_') for n in names)]
    assert not bad, '\n'.join(bad)

def test_importing_airnets_imports_neither_torch_nor_its_modules():
    "`import airnets` is light: the top-level calls (airnets.api) are imported on first use"
    import subprocess, sys
    code = "import sys, airnets; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'trimesh') or m.startswith('airnets.')))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == '[]', r.stdout + r.stderr
