#!/usr/bin/env bash
# `make bench`: the performance tables in bench/: bench/fps.py (farthest point sampling on the CPU) and bench/prep.py
# (data preparation: seconds per mesh and step, labelled points per second; needs ../shared/meshes) and bench/model.py
# (AIR-Net training and inference throughput and memory against a reference-style path; the four models, AIR-Net, ONet, ConvONet and IF-Net, side by side) and bench/train.py (training
# steps per second and peak RSS: plain loop, Trainer, 2-process DDP) and bench/mise.py (mesh extraction: MISE against the
# dense grid, points evaluated and seconds; the MISE bookkeeping alone) and bench/evaluate.py (seconds per object for each
# metric, and the agreement with point-cloud-utils on ../shared/meshes).
# fpsample, one of the methods compared, is a bench-only dependency: installed into the venv here when it is
# missing, never listed in settings.ini. Without it (no registry reachable) the bench still runs and says so.
# `--quick` is passed to both (shorter runs).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -f "$VENV/bin/activate" ] || { echo "bench: no virtual environment at $VENV: run 'make setup' first" >&2; exit 2; }
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python -c "import fpsample" 2>/dev/null; then
  pip install -q fpsample \
    || echo "bench: fpsample could not be installed; its columns will read 'not installed'" >&2
fi
python bench/fps.py "$@"
python bench/prep.py "$@"
python bench/model.py "$@"
python bench/train.py "$@"
python bench/mise.py "$@"
python bench/evaluate.py "$@"
