"""README.md from nbs/index.ipynb without Quarto (nbdev_readme needs Quarto, which cannot be installed offline).

Uses nbdev's own notebook processors (front matter, hidden cells, show_doc), then writes GitHub markdown: markdown
cells as they are, code cells fenced, text outputs indented, PNG outputs saved under README_files/.
Run from the repository root: `python tools/readme.py` (`make export` runs it). `--check` exits 1 when README.md is stale.
"""
import base64, sys
from pathlib import Path

from nbdev.config import get_config
from nbdev.frontmatter import FrontmatterProc
from nbdev.process import NBProcessor
from nbdev.processors import (add_links, add_show_docs, clean_magics, clean_show_doc, exec_show_docs, filter_stream_,
                              hide_, hide_line, insert_warning, populate_language, rm_export, rm_header_dash,
                              strip_ansi, strip_hidden_metadata)

def render(fn: Path, img_dir: Path) -> tuple[str, dict]:
    "Markdown for notebook `fn` and the images it refers to ({relative path: png bytes})"
    procs = [FrontmatterProc, populate_language, insert_warning, add_show_docs, strip_ansi, hide_line, filter_stream_,
             rm_header_dash, clean_show_doc, exec_show_docs, rm_export, clean_magics, hide_, add_links, strip_hidden_metadata]
    nb = NBProcessor(fn, procs, process=True).nb
    fm = getattr(nb, 'frontmatter_', {}) or {}
    parts, images = [], {}
    if fm.get('title'): parts.append(f"# {fm['title']}")
    if fm.get('description'): parts.append(f"> {fm['description']}")
    def indent(t): return '    ' + ''.join(t).rstrip('\n').replace('\n', '\n    ')
    for c in nb.cells:
        src = ''.join(c.source).strip()
        if c.cell_type == 'markdown' and src and not src.startswith('<!--'): parts.append(src)
        if c.cell_type != 'code': continue
        if src: parts.append(f'``` python\n{src}\n```')
        for o in c.get('outputs', []):
            if o.output_type == 'stream': parts.append(indent(o.text)); continue
            d = o.get('data', {})
            if 'image/png' in d:
                name = f'{img_dir.name}/figure-{len(images) + 1}.png'
                images[name] = base64.b64decode(''.join(d['image/png']))
                parts.append(f'![]({name})')
            elif 'text/markdown' in d: parts.append(''.join(d['text/markdown']))
            elif 'text/plain' in d: parts.append(indent(d['text/plain']))
    return '\n\n'.join(parts) + '\n', images

if __name__ == '__main__':
    cfg = get_config()
    root = cfg.config_path
    text, images = render(cfg.nbs_path/cfg.get('readme_nb', 'index.ipynb'), root/'README_files')
    files = {root/'README.md': text.encode()} | {root/k: v for k, v in images.items()}
    stale = [p for p, b in files.items() if not p.exists() or p.read_bytes() != b]
    if '--check' in sys.argv:
        if stale: sys.exit(f'README is stale ({", ".join(p.name for p in stale)}): run `python tools/readme.py`')
        sys.exit(0)
    for p, b in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f'.{p.name}.tmp'); tmp.write_bytes(b); tmp.replace(p)
    print(f'wrote README.md ({len(images)} images)')
