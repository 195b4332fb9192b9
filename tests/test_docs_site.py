"""Headless-browser test of the offline documentation site (`_build/html`, built by `bash tools/build_docs.sh`).

The site is served on 127.0.0.1 at a free port and opened in Debian's Chromium (/usr/bin/chromium, or $CHROMIUM)
through Playwright; no browser is ever downloaded. Every request that does not go to that loopback server is aborted
and recorded, so a page that needs the network fails here.

Skips (never fails) when playwright is not importable, when Chromium is absent, or when the site has not been built;
set DOCS_TEST_STRICT=1 to turn those skips into failures (e.g. in CI, after `make docs` and tools/install_chromium.sh).
$DOCS_SITE points the test at another built site.
"""
import functools, http.server, os, re, threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get('DOCS_SITE', ROOT/'_build'/'html'))
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
STRICT = os.environ.get('DOCS_TEST_STRICT', '') not in ('', '0')
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']
PAGES = {'index.html': 'airnets', 'fps.html': 'Farthest point sampling', 'fps_demo.html': 'The FPS demo'}
# every other page of the library: it loads clean too (title, no errors, nothing fetched off the machine, links exist)
OTHER_PAGES = {'api.html': 'The Python API', 'files.html': 'Files', 'cli.html': 'The command line', 'checkpoints.html': 'Checkpoints', 'geometry.html': 'Geometry', 'onet_format.html': 'The ONet data format', 'prepare.html': 'Preparing the data',
               'shapes.html': 'Procedural shapes', 'datasets.html': 'Datasets', 'attention.html': 'Attention blocks',
               'airnet.html': 'AIR-Net', 'onet.html': 'ONet', 'convonet.html': 'ConvONet', 'ifnet.html': 'IF-Net', 'config.html': 'Configs', 'recipe.html': 'The training recipe', 'train.html': 'Training', 'mise.html': 'MISE and meshes', 'generate.html': 'Generation',
               'metrics.html': 'Metrics', 'evaluate.html': 'Evaluation', 'report.html': 'Report', 'pretrained.html': 'Pretrained weights',
               'tutorial_end_to_end.html': 'Tutorial: end to end', 'tutorial_your_scan.html': 'Tutorial: reconstruct your own point cloud',
               'tutorial_compare.html': 'Tutorial: compare the four models', 'crops.html': 'Local reconstruction: crops'}


def _unavailable(why):
    if STRICT: pytest.fail(f'{why} (DOCS_TEST_STRICT is set)', pytrace=False)
    pytest.skip(why, allow_module_level=True)

try:
    from playwright.sync_api import Error as PlaywrightError, sync_playwright
except ImportError:
    _unavailable('playwright is not installed (bash tools/install_chromium.sh, or pip install playwright==1.65.2)')
if not Path(CHROMIUM).is_file():
    _unavailable(f'no Chromium at {CHROMIUM} (bash tools/install_chromium.sh, or set $CHROMIUM)')
if not (SITE/'index.html').is_file():
    _unavailable(f'docs site not built: {SITE/"index.html"} is missing (run `make docs` / bash tools/build_docs.sh)')


@pytest.fixture(scope='module')
def base_url():
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Handler, directory=str(SITE)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_port}/'
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope='module')
def browser():
    with sync_playwright() as p:      # the system Chromium with a fresh temporary profile
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


class Visit:
    "One page opened in the browser, after its scripts (MathJax, plotly) have finished, with what went wrong."
    def __init__(self, browser, base, name):
        self.base, self.errors, self.outside = base, [], []
        self.page = page = browser.new_page(viewport={'width': 1280, 'height': 1000})
        page.set_default_timeout(20_000)
        page.on('console', lambda m: m.type == 'error' and self.errors.append(f'console: {m.text}'))
        page.on('pageerror', lambda e: self.errors.append(f'page error: {e}'))
        page.on('requestfailed', lambda r: r.url.startswith(base) and self.errors.append(f'failed: {r.url} {r.failure}'))
        page.on('response', lambda r: r.status >= 400 and self.errors.append(f'HTTP {r.status}: {r.url}'))
        page.route('**/*', self._route)
        self.response = page.goto(base + name, wait_until='load')   # not 'networkidle': the WebGL page never idles
        # let MathJax and plotly finish; a timeout is recorded as an error here (and reported by the tests)
        self._wait('MathJax never finished typesetting', '.math',
                   lambda: page.wait_for_function('() => window.MathJax?.startup?.promise', timeout=10_000)
                           and page.evaluate('() => MathJax.startup.promise.then(() => true)'))
        self._wait('plotly never drew the figure', '.plotly-graph-div',
                   lambda: page.locator('.js-plotly-plot svg.main-svg').first.wait_for(state='attached', timeout=10_000))
        page.wait_for_timeout(300)                                  # late console errors

    def _wait(self, what, selector, fn):
        if not self.page.locator(selector).count(): return
        try: fn()
        except PlaywrightError as e: self.errors.append(f'{what}: {str(e).splitlines()[0]}')

    def _route(self, route):
        url = route.request.url
        if url.startswith((self.base, 'data:', 'blob:')): route.continue_()
        else:
            self.outside.append(url)
            route.abort()


@pytest.fixture(scope='module')
def visit(browser, base_url):
    seen = {}
    def get(name):
        if name not in seen: seen[name] = Visit(browser, base_url, name)
        return seen[name]
    yield get
    for v in seen.values(): v.page.close()


def _ids(path):
    html = path.read_text(encoding='utf-8', errors='replace')
    return set(re.findall(r'\sid="([^"]+)"', html)) | set(re.findall(r'\sname="([^"]+)"', html))


@pytest.mark.parametrize('name,title', {**PAGES, **OTHER_PAGES}.items())
def test_page_loads_clean(visit, name, title):
    v = visit(name)
    assert v.response is not None and v.response.status == 200
    assert v.page.title().startswith(title), v.page.title()
    assert v.outside == [], f'requests off the machine: {v.outside}'
    assert v.errors == [], v.errors


@pytest.mark.parametrize('name', {**PAGES, **OTHER_PAGES})
def test_local_links_exist(visit, name):
    "every relative link and asset of the page is a file of the site, and a #fragment on a page of the site exists"
    v = visit(name)
    refs = v.page.eval_on_selector_all(
        'a[href], img[src], script[src], link[href], iframe[src], source[src]',
        'es => es.map(e => e.getAttribute("href") ?? e.getAttribute("src"))')
    page_url = v.base + name
    missing, bad_anchor = [], []
    for ref in refs:
        if not ref or re.match(r'^[a-zA-Z][\w+.-]*:', ref) or ref.startswith('//'): continue   # http:, mailto:, data:
        url = urlsplit(urljoin(page_url, ref))
        if not url.geturl().startswith(v.base): missing.append(ref); continue                 # climbs out of the site
        path = SITE/unquote(url.path[len(urlsplit(v.base).path):])
        if path.is_dir(): path = path/'index.html'
        if not path.is_file(): missing.append(ref); continue
        if url.fragment and path.suffix == '.html' and unquote(url.fragment) not in _ids(path): bad_anchor.append(ref)
    assert missing == [], f'missing files: {missing}'
    assert bad_anchor == [], f'anchors not found: {bad_anchor}'


def test_index_sidebar_lists_fps(visit):
    v = visit('index.html')
    assert v.page.locator('nav a[href="fps.html"]').count() >= 1


def test_fps_plotly_figure(visit):
    v = visit('fps_demo.html')                  # the 3-D anchors of a test cloud
    plot = v.page.locator('.js-plotly-plot')
    assert plot.count() >= 1
    plot.first.scroll_into_view_if_needed()
    assert plot.first.locator('svg.main-svg').count() >= 1
    assert plot.first.locator('canvas').count() >= 1, 'no WebGL canvas: the scatter3d was not drawn'
    box = plot.first.bounding_box()
    assert box and box['width'] > 100 and box['height'] > 100, box


def test_fps_matplotlib_image(visit):
    v = visit('fps.html')
    imgs = v.page.locator('.cell_output img')
    assert imgs.count() >= 1
    widths = [imgs.nth(i).evaluate('e => e.complete ? e.naturalWidth : 0') for i in range(imgs.count())]
    assert max(widths) > 100, widths


def test_fps_math_rendered(visit):
    v = visit('fps.html')
    maths = v.page.locator('.math')
    assert maths.count() >= 1, 'no math on the page'
    assert v.page.locator('mjx-container').count() >= 1, 'MathJax did not render'
    unrendered = v.page.eval_on_selector_all('.math', 'es => es.filter(e => !e.querySelector("mjx-container"))'
                                                      '.map(e => e.textContent)')
    assert unrendered == [], f'math left as TeX: {unrendered}'
    assert v.page.locator('mjx-merror').count() == 0, 'MathJax reported a TeX error'
    assert v.page.evaluate('() => document.querySelector("script[src*=mathjax]").src').startswith(v.base)


def test_fps_show_doc(visit):
    v = visit('fps.html')
    head = v.page.locator('article :is(h2, h3, h4)', has_text=re.compile(r'^\s*farthest_point_sample\b'))
    assert head.count() >= 1, 'no show_doc heading for farthest_point_sample'
    section_id = head.first.evaluate('e => e.closest("section").id')
    # nbdev's anchor (fps.html#farthest_point_sample, used by its doc links) lands on that section
    assert v.page.locator('[id="farthest_point_sample"]').count() == 1, 'no #farthest_point_sample anchor'
    assert v.page.evaluate('() => document.getElementById("farthest_point_sample").closest("section").id') == section_id
    sig = v.page.locator('article div.highlight pre', has_text='def farthest_point_sample(')
    assert sig.count() >= 1, 'no signature block'
    assert re.search(r',\s*#\s*\S', sig.first.inner_text()), 'no docments (parameter comments) in the signature'
    assert v.page.locator(f'nav a[href="#{section_id}"]').count() >= 1, 'not in the page ToC'
    src = v.page.locator(f'section[id="{section_id}"] a.nbdev-source')
    assert src.count() >= 1 and 'airnets/fps.py' in src.first.get_attribute('href'), 'no show_doc source link'


def drawing_pages() -> list:
    "The pages whose notebook stores a figure among its outputs (a PNG, or a plotly figure)"
    import json
    pages = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        kinds = {k for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []) for k in o.get('data', {})}
        if kinds & {'image/png', 'application/vnd.plotly.v1+json'}: pages.append(re.sub(r'^\d+[a-z]?_', '', nb.stem) + '.html')
    return pages

def test_drawing_pages_are_known():
    "Every page that draws is one the site test knows (and so loads clean)"
    assert len(drawing_pages()) >= 10, drawing_pages()
    assert set(drawing_pages()) <= set(PAGES) | set(OTHER_PAGES), set(drawing_pages()) - set(PAGES) - set(OTHER_PAGES)

@pytest.mark.parametrize('page', drawing_pages())
def test_every_drawing_page_shows_a_figure(visit, page):
    "A notebook that draws keeps its outputs, and its page shows them: an image with pixels or a plotly figure"
    v = visit(page)
    imgs = v.page.locator('.cell_output img')
    widths = [imgs.nth(i).evaluate('e => e.complete ? e.naturalWidth : 0') for i in range(imgs.count())]
    plots = v.page.locator('.plotly-graph-div').count()
    assert plots >= 1 or max(widths, default=0) > 50, (page, widths, plots)
