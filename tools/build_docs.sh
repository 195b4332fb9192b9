#!/usr/bin/env bash
# The documentation site (called by `make docs`).
# * Where Quarto is installed: nbdev's own site, `nbdev_docs` (into _docs/).
# * Otherwise (this project's machines: Quarto cannot be installed offline): a static site in _build/html, built
#   without network from the notebooks' saved outputs: nbdev's notebook processing (proc_nbs -> _proc/),
#   docs/prep.py (-> _build/src/), then Sphinx + myst-nb + sphinx-book-theme (docs/conf.py).
#   plotly.min.js comes from the plotly package; MathJax 3 from npm (`npm pack`, once, into _build/vendor/mathjax;
#   npm's own cache is tried first, so a rebuild after `make clean` also works offline once it has been fetched).
# Environment: VENV (default .venv), DOCS_FORCE=1 to reprocess every notebook, MATHJAX_VERSION (default 3.2.2).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ -x "$VENV/bin/python" ]; then . "$VENV/bin/activate"; fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

if command -v quarto >/dev/null 2>&1; then
  echo "build_docs: quarto found: nbdev_docs"
  nbdev_docs
  echo "build_docs: site in $PWD/_docs (open _docs/index.html)"
  exit 0
fi

# docs packages (also in settings.ini dev_requirements, so normally already there)
python - <<'EOF' || pip install -q "sphinx==9.0.4" "myst-nb==1.4.0" "myst-parser==5.2.0" "sphinx-book-theme==1.4.0" "nbformat>=5.10" plotly
import importlib.metadata as md
want = {'sphinx': '9.0.4', 'myst-nb': '1.4.0', 'myst-parser': '5.2.0', 'sphinx-book-theme': '1.4.0'}
try:
    bad = [k for k, v in want.items() if md.version(k) != v]
    import nbformat, plotly, yaml  # noqa: F401
except Exception: raise SystemExit(1)
raise SystemExit(1 if bad else 0)
EOF

# MathJax 3 for the math on the pages, served locally (never committed; fetched once, then reused)
MATHJAX_VERSION=${MATHJAX_VERSION:-3.2.2}
MJ=_build/vendor/mathjax
if [ ! -f "$MJ/tex-mml-chtml.js" ] || [ "$(cat "$MJ/VERSION" 2>/dev/null)" != "$MATHJAX_VERSION" ]; then
  command -v npm >/dev/null || { echo "build_docs: npm is needed once to fetch MathJax $MATHJAX_VERSION (apt-get install npm)"; exit 2; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # --prefer-offline: npm's cache (~/.npm) is used when it has the package, so no network is needed then
  (cd "$tmp" && npm pack --silent --prefer-offline --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 "mathjax@$MATHJAX_VERSION" >/dev/null) \
    || { echo "build_docs: could not fetch mathjax@$MATHJAX_VERSION with npm (no network and not in npm's cache?)"; exit 2; }
  tar -xzf "$tmp"/mathjax-*.tgz -C "$tmp"
  rm -rf "$MJ" && mkdir -p "$MJ/output"
  es5="$tmp/package/es5"
  cp "$es5/tex-mml-chtml.js" "$MJ/"
  cp -r "$es5/input" "$es5/ui" "$es5/a11y" "$es5/sre" "$MJ/"   # components MathJax loads on demand
  cp -r "$es5/output/chtml" "$MJ/output/"                       # CommonHTML fonts (woff-v2)
  echo "$MATHJAX_VERSION" > "$MJ/VERSION"
  echo "build_docs: MathJax $MATHJAX_VERSION -> $MJ"
fi

t0=$SECONDS
# nbdev's notebook processing only; NOT the nbdev_proc_nbs CLI, which first tries to install Quarto (sudo, download)
# and `pip install -e .[dev]`
python -c "import os; from nbdev.serve import proc_nbs; proc_nbs(force=bool(os.environ.get('DOCS_FORCE')))"
python docs/prep.py
rm -rf _build/html                      # no pages left over from removed or renamed notebooks
python -m sphinx -q -W --keep-going -b html -c docs -d _build/doctrees _build/src _build/html
echo "build_docs: site built in $((SECONDS - t0)) s: $PWD/_build/html/index.html"
echo "build_docs: view it with: python -m http.server -d _build/html -b 127.0.0.1 8000  (or open the file directly)"
