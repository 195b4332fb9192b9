# Sphinx configuration of the offline documentation site (used where Quarto / nbdev_docs is not available).
# Sources are the notebooks that docs/prep.py writes to _build/src; tools/build_docs.sh runs
#   python -m sphinx -q -W --keep-going -b html -c docs -d _build/doctrees _build/src _build/html
# The site loads nothing from outside: plotly.min.js comes from the installed plotly package and MathJax 3 from
# the folder that tools/build_docs.sh fills with `npm pack mathjax@3` (_build/vendor/mathjax, or $DOCS_MATHJAX_DIR).
import configparser, os, shutil
from pathlib import Path

from sphinx.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
_cfg = configparser.ConfigParser()
_cfg.read(ROOT/'settings.ini')
_s = _cfg['DEFAULT']

project = _s.get('lib_name', 'airnets')
author = _s.get('author', '')
copyright = _s.get('copyright', '')
version = release = _s.get('version', '')

extensions = ['myst_nb']
exclude_patterns = ['**/.ipynb_checkpoints']

# notebooks: shown with their saved outputs, never executed here
nb_execution_mode = 'off'
nb_render_markdown_format = 'myst'           # show_doc's text/markdown outputs are parsed as MyST
nb_ipywidgets_js = {}                        # no require.js / widget manager from a CDN
myst_enable_extensions = ['dollarmath', 'amsmath', 'attrs_inline', 'colon_fence']
myst_heading_anchors = 4                     # `fps.ipynb#farthest_point_sample` links land on show_doc headings
suppress_warnings = ['myst.header']          # show_doc's ### headings sit directly under the page's # title

# theme: a left sidebar with the sections of nbs/sidebar.yml, scripts in <head> (plotly's inline newPlot needs that)
html_theme = 'sphinx_book_theme'
html_title = project
html_theme_options = {'show_toc_level': 2, 'home_page_in_toc': True}
html_context = {'default_mode': 'light'}     # without it the theme logs a console error in a fresh browser profile
html_static_path = ['_static']
html_css_files = ['nbdev.css']
html_favicon = '_static/favicon.svg'       # also spares browsers a /favicon.ico request (a 404)

# math: MathJax 3 served from _static/mathjax (copied there after the build), never from a CDN
MATHJAX_DIR = Path(os.environ.get('DOCS_MATHJAX_DIR', ROOT/'_build'/'vendor'/'mathjax'))
mathjax_path = 'mathjax/tex-mml-chtml.js'


def _check_vendor(app, config):
    if not (MATHJAX_DIR/'tex-mml-chtml.js').is_file():
        raise ConfigError(f'MathJax 3 not found in {MATHJAX_DIR}: build with `bash tools/build_docs.sh`, which fetches '
                          'it with `npm pack mathjax@3`, or point $DOCS_MATHJAX_DIR at an unpacked es5/ folder')


def _plotly_js(app, pagename, templatename, context, doctree):
    "Only pages with a plotly figure load plotly.min.js (4.8 MB); priority < 500 puts it before the page's scripts."
    if 'plotly-graph-div' in context.get('body', ''): app.add_js_file('plotly.min.js', priority=200)


def _copy_assets(app, exc):
    if exc is not None or app.builder.format != 'html': return
    import plotly
    static = Path(app.outdir)/'_static'
    shutil.copy2(Path(plotly.__file__).parent/'package_data'/'plotly.min.js', static/'plotly.min.js')
    shutil.copytree(MATHJAX_DIR, static/'mathjax', dirs_exist_ok=True)


def setup(app):
    app.connect('config-inited', _check_vendor)
    app.connect('html-page-context', _plotly_js)
    app.connect('build-finished', _copy_assets)
