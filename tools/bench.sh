#!/usr/bin/env bash
# `make bench`: the performance tables in bench/, each against a named alternative measured in the same run:
#   bench/fps.py       farthest point sampling on the CPU (and fpsample, installed here when missing)
#   bench/prep.py      data preparation: seconds per mesh and step, labelled points per second (needs ../shared/meshes)
#   bench/model.py     AIR-Net training and inference throughput and memory; the four models side by side
#   bench/train.py     training steps per second and peak RSS: plain loop, Trainer, 2-process DDP
#   bench/mise.py      mesh extraction: MISE against the dense grid
#   bench/evaluate.py  seconds per object for each metric, agreement with point-cloud-utils on ../shared/meshes
# Arguments (e.g. --quick, shorter runs) are passed to every script. The long comparisons run on their own:
# `make compare` (bench/compare.py), bench/real_scans.py (against Open3D's screened Poisson), bench/shared_meshes.py,
# bench/plateau.py. Bench-only dependencies (fpsample here, Open3D in real_scans.py) are installed by the bench,
# never listed in settings.ini; without a registry the bench still runs and says what is missing.
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
