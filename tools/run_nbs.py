"""Run notebooks in place and store their outputs (nbdev 2 has no `nbdev_test --save`), for the docs and README.

    PLOTLY_RENDERER=plotly_mimetype python tools/run_nbs.py nbs/10_fps.ipynb [...]
    nbdev_clean

Cells are skipped exactly as `nbdev_test` skips them: `#| eval: false` always, and cells flagged with any of
settings.ini's `tst_flags` (`notest cuda slow`). execnb's own `exec_nb` ignores these directives, hence this script.
"""
import os, sys
from pathlib import Path

from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.config import get_config
from nbdev.process import extract_directives

SKIP_FLAGS = set(get_config().tst_flags.split())

def skip_cell(cell) -> bool:
    "True for the cells `nbdev_test` would not run"
    if cell.cell_type != 'code': return True
    d = extract_directives(cell, remove=False)
    return d.get('eval:', [''])[0].lower() == 'false' or bool(SKIP_FLAGS & d.keys())

def run_notebook(path: Path):
    path = path.absolute()
    nb = read_nb(path)
    with working_directory(path.parent): CaptureShell(path).run_all(nb, exc_stop=True, preproc=skip_cell)
    tmp = path.with_name(f'.{path.name}.tmp')
    write_nb(nb, tmp)
    os.replace(tmp, path)

if __name__ == '__main__':
    os.environ.setdefault('PLOTLY_RENDERER', 'plotly_mimetype')   # figures as JSON, not 4.8 MB of inlined plotly.js
    for fn in sys.argv[1:]:
        print('running', fn, flush=True)
        run_notebook(Path(fn))
