#!/usr/bin/env bash
# Notebooks exported and clean, README current: export, clean and README must change nothing (in a fresh clone that
# means what was committed is in sync). Run by tools/test.sh (make test) and make test-fast, with the venv active.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== notebooks exported and clean, README current"
state() { find nbs airnets README.md README_files -type f \( -name '*.ipynb' -o -name '*.py' -o -name '*.md' -o -name '*.png' -o -name '*.yml' \) \
            -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 md5sum; }
before=$(state)
nbdev_export
nbdev_clean
python tools/readme.py
if [ "$before" != "$(state)" ]; then
  diff <(echo "$before") <(state) || true
  echo "FAILED: notebooks were not exported/cleaned or README was stale; it is done now: review and commit the result"; exit 1
fi
