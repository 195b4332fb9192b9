#!/usr/bin/env bash
# Makes the browser test of the docs site (tests/test_docs_site.py) runnable: Debian's chromium + the playwright
# Python package. Never downloads a browser build (`playwright install` is not used: the test drives the system
# chromium). Where chromium cannot be installed, it says so and exits 0: the browser test then skips.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ -x "$VENV/bin/python" ]; then . "$VENV/bin/activate"; fi
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
  :
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: apt-get install chromium"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "install_chromium: NOTE: apt-get could not install chromium; the docs browser test will be skipped"
  fi
else
  echo "install_chromium: NOTE: $CHROMIUM not found and apt-get/root not available: install Chromium"
  echo "  (e.g. sudo apt-get install chromium) or set CHROMIUM=/path/to/chromium; the docs browser test will be skipped"
fi

# the Python driver (in settings.ini dev_requirements); its wheel carries its own node driver, no browser
python -c "import playwright.sync_api" 2>/dev/null || pip install -q "playwright==1.65.2" \
  || echo "install_chromium: NOTE: could not pip install playwright; the docs browser test will be skipped"
[ -x "$CHROMIUM" ] && echo "install_chromium: $("$CHROMIUM" --version 2>/dev/null | head -1)"
exit 0
