"""Numbers in the notebooks' prose (and so in README.md and the docs site) that come from files of the repository:
each is computed here from its source (the Makefile, the packaged YAML configs, the shipped weights, the committed
bench outputs, the package's constants) and must appear in the prose as written. A changed config, a retrained
model or a new bench run that leaves the prose behind fails here, and so does prose edited away from its source."""
import json, re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NBS, BENCH = ROOT/'nbs', ROOT/'bench'

def prose(name: str) -> str:
    "the markdown cells of notebook `name`, joined"
    nb = json.loads((NBS/name).read_text())
    return '\n\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')

def section(text: str, heading: str) -> str:
    "the markdown from `heading` to the next heading of level 2"
    start = text.index(heading)
    end = text.find('\n## ', start + len(heading))
    return text[start:end if end >= 0 else None]

def assert_says(text: str, *fragments: str):
    for f in fragments: assert f in text, f'the prose does not say {f!r}'

def makefile_var(name: str) -> str:
    m = re.search(rf'^{name}\s*\??=\s*(.+)$', (ROOT/'Makefile').read_text(), re.M)
    assert m, name
    return m.group(1).strip()

def commas(n: int) -> str: return f'{n:,}'

# ---------------------------------------------------------------------------------------------------------------------
# make demo: the embedded dataset, its split, the demo config, the extraction

@pytest.fixture(scope='module')
def demo():
    "what `make demo` runs, from the Makefile, the shapes module and demo.yaml"
    from airnets.config import load_config
    from airnets.shapes import CATEGORIES, split_ids
    n = int(makefile_var('DEMO_SHAPES'))
    assert n % len(CATEGORIES) == 0   # the prose's split sizes assume equal classes
    split = split_ids({c: [f'shape_{i:04d}' for i in range(n // len(CATEGORIES))] for c in CATEGORIES}, seed=0)
    res, steps = re.fullmatch(r'-mise_res (\d+) -mise_steps (\d+)', makefile_var('DEMO_MISE')).groups()
    cfg = load_config('demo')
    return dict(n=n, classes=len(CATEGORIES), train=len(split['train']), val=len(split['val']), test=len(split['test']),
                mise=f'{res} x {steps}', res=res, steps=steps, cfg=cfg, minutes=f'{cfg.training.max_minutes:g}')

@pytest.fixture(scope='module')
def demo_parameters():
    from airnets.airnet import count_parameters
    from airnets.config import build_model
    return count_parameters(build_model('demo'))

def test_the_embedded_dataset_split_is_the_one_the_prose_gives(demo):
    assert (demo['n'], demo['classes'], demo['train'], demo['val'], demo['test']) == (120, 15, 75, 15, 30)

def test_readme_make_demo(demo, demo_parameters):
    text = prose('index.ipynb')
    d, c = demo, demo['cfg']
    assert_says(section(text, '`make demo` runs the main job'),
                f"{d['n']} procedural shapes in {d['classes']} ShapeNet-like classes, split {d['train']} / {d['val']} / {d['test']}",
                f'{c.training.pc_samples} input points with noise {c.mode.noisy_obs:g}, {commas(demo_parameters)} parameters',
                f"for at most {d['minutes']} minutes (`training.max_minutes`)",
                f"reconstructs the {d['test']} test shapes with `airnets_generate` (MISE {d['mise']}")

def test_tutorial_end_to_end_make_demo(demo, demo_parameters):
    text, d, c = prose('50_tutorial_end_to_end.ipynb'), demo, demo['cfg']
    assert_says(text, f"--n {d['n']} --seed 0", f"# {d['n']} procedural shapes, {d['classes']} classes, split {d['train']}/{d['val']}/{d['test']}",
                f"--data_root data/shapes       # {d['minutes']} minutes at most",
                f"-mise_res {d['res']} -mise_steps {d['steps']}   # the {d['test']} test shapes",
                f'`make demo` trains the `demo` config instead: {commas(demo_parameters)} parameters, {c.training.pc_samples} input points '
                f'with noise of std {c.mode.noisy_obs:g}, batch {c.training.batch_size}, until {c.training.epochs} epochs or {d["minutes"]} minutes')
    assert 'and ten more ShapeNet-like classes' in text and d['classes'] == 5 + 10   # chairs, tables, airplanes, lamps, mugs and ten more

def test_pipeline_sizes(demo):
    "the sample counts and noise levels of `airnets_prepare`, from its defaults"
    import inspect
    from airnets.prepare import pipeline_steps
    p = inspect.signature(pipeline_steps).parameters
    surface, boundary, sigmas = p['n_surface'].default, p['n_boundary'].default, p['sigmas'].default
    assert_says(prose('50_tutorial_end_to_end.ipynb'), f'{commas(surface)} surface samples', f'{commas(boundary)} boundary samples',
                f'(σ = {sigmas[0]} and {sigmas[1]})')
    assert_says(prose('00_geometry.ipynb'), f'samples {commas(surface)} such points per object as the network\'s input pool and {commas(boundary)} more')
    assert_says(prose('01_prepare.ipynb'), f'`surface_{surface}_samples.npy`', f'{surface:,}'.replace(',', ' ') + ' points drawn uniformly',
                f'IF-Nets draws {boundary:,}'.replace(',', ' ') + ' surface points', f'Run for σ = {sigmas[0]} and σ = {sigmas[1]}',
                f'`airnets_sample_surface [--n {surface}]`', f'[--n {boundary}]')

def test_shapes_fractions_and_classes(demo):
    from airnets.shapes import SPLIT_FRACTIONS
    tr, va, te = (round(100 * f) for f in SPLIT_FRACTIONS)
    assert_says(prose('02_shapes.ipynb'), f'the first {tr}% go to train, the next {va}% to val', 'Fifteen classes teach a model fifteen classes')
    assert demo['classes'] == 15   # "Fifteen"
    assert_says(prose('01_prepare.ipynb'), f'then {va}% go to val, {te}% to test (rounded)')

# ---------------------------------------------------------------------------------------------------------------------
# the configs: which files there are, and the parameter counts and inputs of the README's table

def test_the_configs_row_names_every_packaged_config():
    from airnets.config import CONFIG_DIR
    row = next(l for l in prose('index.ipynb').splitlines() if l.startswith('| [Configs]'))
    named = set(re.findall(r'`([\w+]+)`', row.split('the reference', 1)[1].split('a strict schema')[0]))
    small = {p.stem for p in CONFIG_DIR.glob('*_small.yaml')}
    files = {p.stem for p in CONFIG_DIR.glob('*.yaml')}
    reference = files - small - named
    assert '*_small' in row and named | small | reference == files
    assert re.search(r"the reference's (\w+) YAML configs", row).group(1) == 'nine' and len(reference) == 9, sorted(reference)

@pytest.fixture(scope='module')
def model_table():
    "the README's table of configs: [(names, counts, input)]"
    rows = [l for l in section(prose('index.ipynb'), '## The baselines').splitlines() if l.startswith('| `')]
    out = []
    for r in rows:
        cells = [c.strip() for c in r.strip('|').split('|')]
        out.append((re.findall(r'`(\w+)`', cells[0]), [int(c.replace(',', '')) for c in cells[2].split(' / ')], cells[3]))
    return out

def test_readme_model_table_parameter_counts(model_table):
    from airnets.airnet import count_parameters
    from airnets.config import build_model
    assert len(model_table) == 6
    for names, counts, _ in model_table:
        assert len(names) == len(counts), names
        for name, n in zip(names, counts): assert count_parameters(build_model(name)) == n, name

def test_readme_model_table_inputs(model_table):
    from airnets.config import load_config
    for names, _, inputs in model_table:
        cfgs = [load_config(n) for n in names]
        points = ' / '.join(dict.fromkeys(commas(c.training.pc_samples) for c in cfgs))
        assert inputs.startswith(f'{points} points'), (names, inputs)
        noise = {c.mode.noisy_obs for c in cfgs}
        if noise == {None}: assert 'noise' not in inputs, (names, inputs)
        elif None not in noise and len(noise) == 1: assert f'noise {noise.pop():g}' in inputs, (names, inputs)
        for c in cfgs:
            if c.encoder.type == 'ifnet': assert f'{c.encoder.resolution}³' in inputs, (names, inputs)

# ---------------------------------------------------------------------------------------------------------------------
# the shipped model: its file and the scores stored in it; its bench on ../shared/meshes

@pytest.fixture(scope='module')
def shipped():
    from airnets.checkpoints import pretrained_path
    from airnets.pretrained import pretrained_info
    info = pretrained_info('demo')
    m = re.search(r'\((\d+) train / (\d+) val / (\d+) test shapes, (\d+) classes\)', info['data'])
    return dict(info=info, mb=f"{pretrained_path('demo').stat().st_size / 1e6:.1f} MB", s=info['scores'],
                train=int(m.group(1)), test=int(m.group(3)), classes=int(m.group(4)))

def test_readme_shipped_model(shipped, demo):
    text = section(prose('index.ipynb'), '## Reconstruct your own scan')
    i, s = shipped['info'], shipped['s']
    res, steps = re.fullmatch(r'evaluation_\d+_@(\d+)x(\d+)', s['generation']).groups()
    assert_says(text, f"`airnets/weights/demo.pt`, {shipped['mb']}",
                f"trained for {round(i['training_minutes'])} minutes (the file holds its best validation epoch, {i['epoch']})",
                f"on the {shipped['train']} training shapes of the embedded dataset",
                f"On its {s['objects']} test shapes (MISE {res} x {steps}) it scores IoU {s['iou']:.3f}, Chamfer-L1 {s['chamfer_l1']:.4f}, "
                f"normal consistency {s['normals']:.3f} and F-score {s['f_score_10']:.3f} at 1%",
                f"it has seen {shipped['train']} simple shapes")
    assert (shipped['train'], shipped['test'], shipped['classes']) == (demo['train'], demo['test'], demo['classes'])
    assert f"{res} x {steps}" == demo['mise'] and i['experiment'] == 'demo'

def test_pretrained_page(shipped, demo, demo_parameters):
    i, c = shipped['info'], demo['cfg']
    assert i['parameters'] == demo_parameters
    assert_says(prose('32_pretrained.ipynb'),
                f"{c.training.pc_samples} input points, input noise {c.mode.noisy_obs:g}; {commas(demo_parameters)} parameters, {shipped['mb']})",
                f"`airnets_make_shapes --n {demo['n']} --seed 0`: {shipped['train']} training, {demo['val']} validation and {shipped['test']} "
                f"test shapes of {shipped['classes']} ShapeNet-like classes) for {round(i['training_minutes'])} minutes",
                f"it has seen {shipped['train']} simple shapes", f"from {shipped['train']} shapes and {round(i['training_minutes'])} minutes of training")
    assert_says(prose('51_tutorial_your_scan.ipynb'), f"has seen only {shipped['train']} procedural shapes",
                f'The global `demo` model (`--model demo`) instead takes {c.training.pc_samples} points of the whole cloud',
                f"one encoding of\n{c.training.pc_samples} points for the whole object")

def test_default_model_prose():
    "the default is the crops model general, and what the prose says of it holds for its file"
    from airnets.checkpoints import default_pretrained, pretrained_path
    from airnets.pretrained import load_pretrained
    g = load_pretrained('general')
    assert default_pretrained() == 'general' and g.config.data.crops
    assert_says(prose('51_tutorial_your_scan.ipynb'), f'a typical crop holds the {g.config.training.pc_samples} points the model takes',
                'uses the shipped `general` model (`airnets/weights/general.pt`')
    text = section(prose('index.ipynb'), '## Reconstruct your own scan')
    assert_says(text, f"(`airnets/weights/general.pt`, {pretrained_path('general').stat().st_size / 1e6:.1f} MB)")

@pytest.fixture(scope='module')
def shared_meshes():
    "the mean line of bench/shared_meshes.md and its rows"
    text = (BENCH/'shared_meshes.md').read_text()
    m = re.search(r'Mean over (\d+) meshes \((\d+) not prepared, (\d+) empty\): IoU ([\d.]+), Chamfer-L1 ([\d.]+)', text)
    rows = [l for l in text.splitlines() if l.startswith('| ') and not l.startswith('| mesh')]
    return dict(n=int(m.group(1)), iou=m.group(4), cl1=m.group(5), rows=len(rows))

def test_shared_meshes_numbers(shared_meshes):
    n = shared_meshes['n']
    assert shared_meshes['rows'] == n
    assert_says(section(prose('index.ipynb'), '## Reconstruct your own scan'),
                f"On the {n} real meshes of `../shared/meshes`", f"a mean IoU of {shared_meshes['iou']} and Chamfer-L1 of {shared_meshes['cl1']}")
    assert_says(prose('51_tutorial_your_scan.ipynb'), f'On the {n} real meshes of `../shared/meshes`')
    geometry = prose('00_geometry.ipynb')
    assert_says(geometry, f'holds {n} real meshes', f'of our {n} real test meshes are open')
    # the open ones are counted in two places of the page, which must agree (its cells count them on the meshes)
    assert len(set(re.findall(r'(\d+) of our \d+ real test meshes are open', geometry) + re.findall(r'The other (\d+) real meshes are open', geometry))) == 1

# ---------------------------------------------------------------------------------------------------------------------
# the comparison of the four models: README's table and prose against bench/comparison.json

@pytest.fixture(scope='module')
def comparison():
    return json.loads((BENCH/'comparison.json').read_text())

def test_readme_comparison_table(comparison):
    text = section(prose('index.ipynb'), '## The four models at the same CPU budget')
    a = comparison['args']
    minutes = f"{a['minutes']:g}"
    assert_says(text, f"with {a['points'][0]} and {a['points'][1]} input points and input noise {a['noise']:g}, for {minutes} minutes each on one core",
                f"on the {a['n_test']} test shapes (MISE {a['mise_res']} x {a['mise_steps']})", '| minutes | epochs |')
    if a.get('until_flat'): assert_says(text, f"in steps of {a['minutes'] / 2:g} minutes up to {a['until_flat']:g}")
    table = [[c.strip() for c in l.strip('|').split('|')] for l in text.splitlines() if re.match(r'\| \d', l)]
    rows = {(str(r['points']), r['model'].split(' (')[0]): r for r in comparison['rows']}
    assert len(table) == len(rows) and len({(c[0], c[1].split(' (')[0]) for c in table}) == len(rows)
    for cells in table:
        r, line = rows[cells[0], cells[1].split(' (')[0]], ' | '.join(cells)
        best = f"{r['best_epoch']}" + ('' if r['flattened'] else ' (not flat)')
        assert cells[2:] == [f"{r['minutes']:.0f}", str(r['epochs']), best, f"{r['iou']:.3f}", f"{r['chamfer_l1']:.4f}", f"{r['normals']:.3f}",
                             f"{r['f_score_10']:.3f}", f"{r['empty']}/{r['objects']}"], line

def test_readme_comparison_prose(comparison):
    text = section(prose('index.ipynb'), '## The four models at the same CPU budget')
    iou = {(r['model'], r['points']): f"{r['iou']:.3f}" for r in comparison['rows']}
    assert_says(text, f"IoU {iou['AIR-Net', 300]} against IF-Net's {iou['IF-Net', 300]} with 300 points",
                f"and {iou['AIR-Net', 3000]} against IF-Net's {iou['IF-Net', 3000]} with 3000")
    for p in (300, 3000):   # "AIR-Net comes first at both input sizes", "no model leaves an empty mesh"
        rows = [r for r in comparison['rows'] if r['points'] == p]
        assert max(rows, key=lambda r: r['iou'])['model'] == 'AIR-Net'
    assert all(r['empty'] == 0 for r in comparison['rows'])

def test_the_recipe_page_sorts_every_config_by_its_recipe():
    "the reference's configs keep its recipe (no position_init, momentum 0.1), the package's own use the new one"
    from airnets.config import CONFIG_DIR, load_config
    text = prose('20a_recipe.ipynb')
    m = re.search(r"The packaged configs of the reference \(([^)]*)\) set `position_init: null` and `bn_momentum: 0\.1`.*?"
                  r"the package's own configs \(([^)]*)\) use the new recipe", text)
    reference, own = (set(re.findall(r'`([\w+]+)`', g)) for g in m.groups())
    assert '`*_small`' in m.group(2)
    own |= {p.stem for p in CONFIG_DIR.glob('*_small.yaml')}
    assert reference | own == {p.stem for p in CONFIG_DIR.glob('*.yaml')} and not reference & own
    for n in reference: assert (load_config(n).training.position_init, load_config(n).training.bn_momentum) == (None, 0.1), n
    for n in own: assert load_config(n).training.position_init is not None, n

def test_the_config_page_lists_every_packaged_config():
    "the reference's nine and the package's own, as the config page names them"
    from airnets.config import CONFIG_DIR, load_config
    text = prose('20_config.ipynb')
    m = re.search(r"The packaged configs are the reference's (\w+) and the package's own: (.*?) The list below", text, re.S)
    own = set(re.findall(r'`([\w+]+)`', m.group(2)))
    files = {p.stem for p in CONFIG_DIR.glob('*.yaml')}
    reference = files - own
    assert m.group(1) == 'nine' and len(reference) == 9 and own <= files, sorted(reference)
    assert all(load_config(n).training.position_init is None for n in reference), sorted(reference)

def test_the_reference_schedule_and_the_baselines_learning_rate():
    from airnets.config import load_config
    sparse, dense = load_config('airnet300').training, load_config('airnet3000').training
    t = (sparse.lr, sparse.lr_decay_factor, sparse.lr_decay_interval)
    assert (dense.lr, dense.lr_decay_factor, dense.lr_decay_interval) == t
    assert_says(prose('21_train.ipynb'), f'$\\eta_0$ = `lr` ({t[0]:.0e})'.replace('e-0', 'e-'), f'$\\gamma$ = `lr_decay_factor` ({t[1]:g})',
                f'$T$ = `lr_decay_interval` ({t[2]} epochs; none for the baselines)')
    baselines = [load_config(n).training for n in ('onet', 'convonet', 'convonet_grid', 'ifnet')]
    assert all(b.lr_decay_interval is None for b in baselines)
    assert {b.lr for b in baselines} == {1e-4}
    assert_says(section(prose('index.ipynb'), '## The baselines'), "its baselines at lr 10⁻⁴")

# ---------------------------------------------------------------------------------------------------------------------
# the allocator settings: nbs/21's figures against bench/model_fast.md

def test_allocator_figures():
    text = (BENCH/'model_fast.md').read_text()
    rows = {l.split('|')[1].strip().strip('`'): [c.strip() for c in l.strip().strip('|').split('|')]
            for l in text.splitlines() if l.startswith('| ') and ('none' in l.split('|')[1] or '=' in l.split('|')[1])}
    none, malloc = rows['none'], rows['MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647']
    thp = rows['THP_MEM_ALLOC_ENABLE=1']
    assert_says(prose('21_train.ipynb'), f"the step ran {malloc[4]} as fast, at a peak of {malloc[6]} against {none[6]}",
                f"`THP_MEM_ALLOC_ENABLE=1` (2 MB pages for large tensors) {thp[4]}")

# ---------------------------------------------------------------------------------------------------------------------
# airnets_reconstruct's help: the crops model's input size and the most poses a sparse cloud is read in

def test_reconstruct_help_numbers():
    from airnets.config import load_config
    from airnets.crops import EMPTY_DROP, EMPTY_FROM, MAX_POSES
    from airnets.generate import reconstruct_cli
    doc = ' '.join(reconstruct_cli.__doc__.split())
    assert_says(doc, f'holds the {load_config("general").training.pc_samples} points the model takes', f'up to {MAX_POSES} poses',
                f"at least {EMPTY_FROM:.0%} of the cloud's size", f'by up to a logit of {EMPTY_DROP:g}')
    from fastcore.docments import docments
    assert_says(docments(reconstruct_cli)['poses'], f'(default: 1 to {MAX_POSES}, more for fewer crops)')
    from airnets.crops import ensemble_scales, ensemble_poses, POSE_CROPS
    assert ensemble_scales(POSE_CROPS, 0.1) == 2 and ensemble_poses(POSE_CROPS) == 1 and ensemble_scales(POSE_CROPS // 2, 0.1) == 1
    assert_says(doc, 'a dense one, read in one pose, also by crops twice as large')
    from airnets.crops import STARVED
    assert STARVED == 0.25   # the help's "a quarter of the points the model takes"
    assert_says(docments(reconstruct_cli)['scales'], "(default: 2 scales for a dense cloud read in one pose, one more while a quarter of the coarsest scale's crops hold under a quarter of the points the model takes, else 1)")
