#!/usr/bin/env bash
# One-time set-up on a fresh machine (called by `make setup`): a venv, torch, the package and its extensions.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1 MAX_JOBS=${MAX_JOBS:-2}
PY=${PYTHON:-python3}
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), "airnets needs Python >= 3.10"' \
  || { echo "airnets: Python >= 3.10 is needed (set PYTHON=/path/to/python3.x)"; exit 2; }
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
. "$VENV/bin/activate"
command -v c++ >/dev/null || command -v g++ >/dev/null || {
  echo "airnets: a C++ compiler is needed to build airnets._C: apt-get install g++ (Debian/Ubuntu), xcode-select --install (macOS)"; exit 2; }
# torch first, and never a multi-GB CUDA wheel on a machine without a GPU: keep an installed torch; otherwise take
# the CPU build (the local wheel where this machine has one, else PyTorch's CPU index) unless nvidia-smi finds a GPU.
if ! python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    pip install torch                                    # a GPU: the default (CUDA) build is what is wanted
  elif pip install -q --dry-run --no-deps --no-index "torch==2.13.0" >/dev/null 2>&1; then
    pip install "torch==2.13.0"                          # a CPU wheel this machine keeps on disk (find-links)
  else
    pip install torch --index-url https://download.pytorch.org/whl/cpu   # PyTorch's CPU-only builds
  fi
fi
pip install -q "setuptools>=64" wheel "cython>=3" numpy ninja
pip install -q -e ".[dev]" --no-build-isolation
python -c "import torch, airnets._C as C; print('airnets set up: torch', torch.__version__, '| airnets._C built, CUDA kernel:', C.with_cuda())"
