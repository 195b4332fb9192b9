"""Convert nbdev's processed notebooks (`_proc/`, made for Quarto) into MyST-NB sources for Sphinx (`_build/src/`).

Run from anywhere after `python -c "from nbdev.serve import proc_nbs; proc_nbs()"`:

    python docs/prep.py [PROC_DIR] [OUT_DIR]          # defaults: <repo>/_proc  <repo>/_build/src

Per notebook it:
* names the page after nbdev's `output-file` (10_fps.ipynb -> fps.ipynb -> fps.html), as nbdev's site would;
* turns the Quarto front-matter raw cell back into a `# title` heading and a `> description` quote;
* maps the Quarto cell options `#| echo/output/include: false` and `#| code-fold: true` to MyST-NB cell tags and
  drops the `#|` lines; `#| output: asis` cells (show_doc) become markdown cells, so that API headings are real
  sections (page ToC, search, `#name` anchors);
* replaces a plotly figure's JSON (`application/vnd.plotly.v1+json`) by a plain `<div>` + `Plotly.newPlot` call that
  uses the page's local plotly.min.js (docs/conf.py adds it), and drops inlined plotly.js / empty outputs and widget
  state (both would pull scripts from CDNs);
* rewrites nbdev doc links (`<doc_host><doc_baseurl>/fps.html#sym`) and links to other notebooks (`10_fps.ipynb`,
  `fps.html`) into MyST document links (`fps.ipynb#sym`);
* keeps only the notebook metadata that myst-nb needs, with a Python kernelspec / language_info if missing;
* adds hidden toctrees built from `nbs/sidebar.yml` to the index page (every page, sorted, without a sidebar.yml);
  a page that the sidebar does not list is built as an orphan page (reachable by links, not in the sidebar).
Notebooks left in `_proc/` whose source notebook is gone from nbs/ are ignored (proc_nbs never prunes its cache).
"""
import configparser, re, shutil, sys
from pathlib import Path, PurePosixPath

import nbformat, yaml
from nbformat.v4 import new_markdown_cell

ROOT = Path(__file__).resolve().parents[1]
PLOTLY_MIME = 'application/vnd.plotly.v1+json'
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
FALSE_TAG = {'echo': 'remove-input', 'output': 'remove-output', 'include': 'remove-cell'}
OPTION_RE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
COPY_SUFFIXES = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp', '.csv', '.json', '.txt'}


def settings():
    cp = configparser.ConfigParser()
    cp.read(ROOT/'settings.ini')
    return cp['DEFAULT']


def split_front_matter(nb):
    "Remove nbdev's leading `---` yaml raw cell from `nb` and return its fields (empty dict when there is none)."
    if not nb.cells or nb.cells[0].cell_type != 'raw': return {}
    m = re.match(r'\s*---\s*\n(.*?)\n---\s*$', nb.cells[0].source, re.S)
    if m is None: return {}
    del nb.cells[0]
    return yaml.safe_load(m.group(1)) or {}


def cell_options(src):
    "Split the leading `#| key: value` lines off a code cell: ({key: value}, remaining source)."
    lines, opts = src.splitlines(), {}
    i = 0
    while i < len(lines):
        m = OPTION_RE.match(lines[i])
        if m is None: break
        opts[m.group(1)] = m.group(2)
        i += 1
    return opts, '\n'.join(lines[i:])


def plotly_div(fig_json):
    "A figure's JSON as an html fragment that needs only a global `Plotly` (no embedded plotly.js, no MathJax CDN)."
    import plotly.io as pio
    return pio.to_html(fig_json, include_plotlyjs=False, include_mathjax=False, full_html=False, validate=False)


def clean_output(out):
    "The output to keep (possibly rewritten), or None to drop it."
    data = out.get('data')
    if data is None: return out                                      # stream, error
    data = dict(data)
    if PLOTLY_MIME in data:                                          # plotly_mimetype renderer (the recommended one)
        return nbformat.from_dict({**out, 'data': {'text/html': plotly_div(data[PLOTLY_MIME])}})
    html = data.get('text/html', '')
    if isinstance(html, list): html = ''.join(html)
    if 'window.PlotlyConfig' in html and 'plotly-graph-div' not in html:
        return None                                                  # 'notebook' renderer's inlined plotly.js
    if WIDGET_MIME in data:                                          # keep the plain-text fallback of a widget
        data.pop(WIDGET_MIME)
    if not data: return None                                         # execnb's empty result after a bare `fig`
    return nbformat.from_dict({**out, 'data': data})


def show_doc_markdown(outputs):
    "Markdown of an `#| output: asis` cell (show_doc), adapted for MyST."
    md = '\n\n'.join(''.join(o['data']['text/markdown']) if isinstance(o['data']['text/markdown'], list)
                     else o['data']['text/markdown'] for o in outputs if 'text/markdown' in o.get('data', {}))
    # show_doc starts with a `---` rule; docutils rejects a transition at the start of a section, so drop it
    md = re.sub(r'\A\s*---\s*\n', '', md)
    # [source](url){target="_blank" style="float:right; ..."}: MyST keeps classes but not inline styles
    md = re.sub(r'\]\(([^)\s]+)\)\{[^}]*style="float:\s*right[^"]*"[^}]*\}', r'](\1){.nbdev-source target="_blank"}', md)
    # ... and it comes before the heading, i.e. at the end of the previous section: put it under the heading
    md = re.sub(r'\A\s*(\[source\]\([^)\s]+\)\{\.nbdev-source[^}]*\})\s*\n+(#{1,6} [^\n]+)\n', r'\2\n\n\1\n', md)
    return md


def convert_cell(cell):
    if cell.cell_type != 'code': return cell
    opts, src = cell_options(cell.source)
    outputs = cell.get('outputs', [])
    if opts.get('output', '').lower() == 'asis':
        md = show_doc_markdown(outputs)
        return new_markdown_cell(md) if md.strip() else None
    tags = set(cell.metadata.get('tags', []))
    for k, tag in FALSE_TAG.items():
        if opts.get(k, '').lower() == 'false': tags.add(tag)
    if opts.get('code-fold', '').lower() in ('true', 'show'): tags.add('hide-input')
    if 'remove-cell' in tags: return None
    cell.source = src
    if tags: cell.metadata['tags'] = sorted(tags)
    cell.outputs = [o for o in map(clean_output, outputs) if o is not None]
    return cell


class Links:
    "Rewrites links that point at other pages of this site into MyST document links."
    def __init__(self, pages, site_url):
        self.pages, self.site_url = pages, site_url   # pages: {nbs-relative source path: page path (no suffix)}
        self.by_page = {str(p): p for p in pages.values()}

    def target(self, frm, ref):
        "Page path for `ref` (a notebook or .html path, relative to page `frm`), or None when it is not ours."
        if re.match(r'^[a-zA-Z][\w+.-]*:', ref) or ref.startswith('/'): return None
        parts = []
        for x in (PurePosixPath(frm).parent/ref).parts:       # normalise a/../b, ./b
            if x == '..':
                if not parts: return None
                parts.pop()
            elif x != '.': parts.append(x)
        if not parts: return None
        p = PurePosixPath(*parts)
        if p.suffix == '.ipynb':
            return self.pages.get(str(p)) or self.by_page.get(str(p.with_suffix('')))
        if p.suffix == '.html': return self.by_page.get(str(p.with_suffix('')))
        return None

    def rel(self, frm, page):
        up = len(PurePosixPath(frm).parts) - 1
        return '../'*up + f'{page}.ipynb'

    def __call__(self, frm, md):
        def site_link(m):     # absolute nbdev doc link, e.g. (https://airnets.github.io/airnets/fps.html#sym)
            page = self.by_page.get(m.group(1))
            return f'({self.rel(frm, page)}{m.group(2) or ""})' if page else m.group(0)
        def rel_link(m):      # relative link to a notebook or page of this site
            page = self.target(frm, m.group(1))
            return f'({self.rel(frm, page)}{m.group(2) or ""})' if page else m.group(0)
        if self.site_url:
            md = re.sub(r'\(' + re.escape(self.site_url) + r'/([^)#\s]+)\.html(#[^)\s]*)?\)', site_link, md)
        return re.sub(r'\(([^)#\s]+\.(?:ipynb|html))(#[^)\s]*)?\)', rel_link, md)


def sidebar_entries(sidebar, pages):
    "[(caption or None, [page, ...]), ...] from Quarto's sidebar.yml (None when there is no sidebar)."
    if not sidebar.exists(): return None
    cfg = yaml.safe_load(sidebar.read_text()) or {}
    sb = (cfg.get('website') or {}).get('sidebar') or {}
    if isinstance(sb, list): sb = sb[0] if sb else {}
    by_page = {str(p): p for p in pages.values()}
    def page_of(item):
        ref = item.get('href') if isinstance(item, dict) else item
        if not isinstance(ref, str): return None
        while ref.startswith('./'): ref = ref[2:]
        return pages.get(ref) or by_page.get(re.sub(r'\.(ipynb|html|qmd|md)$', '', ref))
    groups, loose = [], []
    for item in sb.get('contents') or []:
        if isinstance(item, dict) and 'contents' in item:
            groups.append((item.get('section') or item.get('text'), [p for p in map(page_of, item['contents'] or []) if p]))
        elif page_of(item): loose.append(page_of(item))
    return [(None, loose)] + groups


def toctree_markdown(groups):
    blocks = []
    for caption, docs in groups:
        docs = [str(d) for d in docs if str(d) != 'index']
        if not docs: continue
        head = ':hidden:\n' + (f':caption: {caption}\n' if caption else '')
        blocks.append('```{toctree}\n' + head + '\n' + '\n'.join(docs) + '\n```')
    return '\n\n'.join(blocks)


def main(proc=ROOT/'_proc', out=ROOT/'_build'/'src'):
    proc, out = Path(proc), Path(out)
    cfg = settings()
    nbs_path = ROOT/cfg.get('nbs_path', 'nbs')
    if not proc.is_dir(): sys.exit(f'prep: {proc} not found: run `python -c "from nbdev.serve import proc_nbs; proc_nbs()"` first')
    site_url = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')

    pages, nbs = {}, {}
    for src in sorted(proc.rglob('*.ipynb')):
        rel = src.relative_to(proc)
        if any(x.startswith(('.', '_')) for x in rel.parts[:-1]): continue
        if not (nbs_path/rel).exists():
            print(f'prep: skipping {rel} (left in {proc.name}/ but no longer in {nbs_path.name}/)'); continue
        nb = nbformat.read(src, as_version=4)
        fm = split_front_matter(nb)
        if fm.get('draft') is True: continue
        stem = Path(fm['output-file']).stem if fm.get('output-file') else re.sub(r'^\d+[a-z]?_', '', src.stem)
        page = PurePosixPath(*rel.parts[:-1], stem)
        title = fm.get('title') or stem
        head = f'# {title}' + (f"\n\n> {fm['description']}" if fm.get('description') else '')
        nb.cells = [new_markdown_cell(head)] + [c for c in map(convert_cell, nb.cells) if c is not None]
        # notebook metadata: myst-nb needs the language for syntax highlighting (nbdev_clean may strip it) and turns
        # any other key into page front matter; saved ipywidgets state would make it load require.js from a CDN
        nb.metadata = nbformat.from_dict({
            'kernelspec': nb.metadata.get('kernelspec') or {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
            'language_info': nb.metadata.get('language_info') or {'name': 'python', 'pygments_lexer': 'ipython3'}})
        pages[rel.as_posix()], nbs[page] = page, nb
    if not nbs: sys.exit(f'prep: no notebooks in {proc}')

    groups = sidebar_entries(proc/'sidebar.yml', pages)
    if groups is None: groups = [(None, sorted(nbs, key=str))]
    listed = {str(p) for _, docs in groups for p in docs} | {'index'}
    index = PurePosixPath('index')
    if index not in nbs: sys.exit('prep: no index page (nbs/index.ipynb) to hold the table of contents')
    toc = toctree_markdown(groups)
    if toc: nbs[index].cells.append(new_markdown_cell(toc))
    for page, nb in nbs.items():
        if str(page) not in listed:
            print(f'prep: note: {page} is not in sidebar.yml; built as a page outside the sidebar')
            nb.metadata['orphan'] = True

    links = Links(pages, site_url)
    if out.exists(): shutil.rmtree(out)
    for page, nb in nbs.items():
        for c in nb.cells:
            if c.cell_type == 'markdown': c.source = links(str(page), c.source)
        dst = out/f'{page}.ipynb'
        dst.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dst)
    for f in proc.rglob('*'):                  # images and data files that the notebooks reference
        if f.is_file() and f.suffix.lower() in COPY_SUFFIXES:
            dst = out/f.relative_to(proc)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)
    print(f'prep: {len(nbs)} notebooks -> {out}')


if __name__ == '__main__':
    main(*sys.argv[1:3])
