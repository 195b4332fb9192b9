#!/usr/bin/env bash
# Every test (called by `make test` and .ci/run): notebooks exported and clean, CUDA sources compile, notebooks as
# tests, the docs site in a headless browser, pytest. Ends with pytest's closing line.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1

bash tools/check_export.sh

echo "== CUDA sources compile (nvcc, no GPU needed)"
if command -v nvcc >/dev/null; then
  for cu in csrc/*.cu; do
    nvcc -c "$cu" -o "$(mktemp -d)/$(basename "$cu").o" --Werror all-warnings
    echo "nvcc: $cu compiles"
  done
  # the host side of the CUDA build (fps.cpp with WITH_CUDA) against torch's headers: a CPU wheel lacks one generated
  # header, c10/cuda/impl/cuda_cmake_macros.h, which a throw-away stand-in provides for this syntax check only
  tmp=$(mktemp -d); echo '#include <cuda_runtime.h>' > "$tmp/probe.cu"
  cuda_inc=$(nvcc -M "$tmp/probe.cu" 2>/dev/null | tr ' \\' '\n\n' | grep '/cuda_runtime.h$' | head -1 | xargs -r dirname)
  torch_inc=$(python -c "from torch.utils.cpp_extension import include_paths; print(' '.join('-I' + p for p in include_paths()))")
  if [ -n "$cuda_inc" ]; then
    mkdir -p "$tmp/c10/cuda/impl"; [ -n "$(python -c 'import torch; print(torch.version.cuda or "")')" ] || touch "$tmp/c10/cuda/impl/cuda_cmake_macros.h"
    c++ -std=c++20 -fsyntax-only -DWITH_CUDA -DTORCH_EXTENSION_NAME=_C $torch_inc -I"$tmp" -I"$cuda_inc" \
        $(python -c "import sysconfig; print('-I' + sysconfig.get_paths()['include'])") csrc/fps.cpp
    echo "c++: csrc/fps.cpp compiles with WITH_CUDA (the CUDA glue)"
  fi
else
  echo "note: nvcc not found, the CUDA kernels were not compile-checked (they build where torch has CUDA and nvcc exists)"
fi

echo "== notebooks"
n=$(find nbs -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -not -name '_*' | wc -l)
if OMP_NUM_THREADS=1 nbdev_test --n_workers 2 --timing; then echo "nbdev_test: $n passed, 0 failed"
else echo "nbdev_test: notebooks failed (see above)"; exit 1; fi

echo "== docs site"
bash tools/install_chromium.sh
bash tools/build_docs.sh

echo "== pytest"
# where Chromium could be installed the browser test must run, not skip
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] && export DOCS_TEST_STRICT=1
# two workers (pytest-xdist), a test file each at a time: most tests run commands in fresh single-threaded
# processes, so two side by side use both cores; a file's module fixtures (a trained model, a prepared dataset) are
# made once, by the worker that runs the file. PYTEST_WORKERS=0 runs everything in this process.
set +e; python -m pytest tests -q -rs --durations=40 -n "${PYTEST_WORKERS:-2}" --dist loadfile; rc=$?; set -e
[ $rc -eq 5 ] && { echo "pytest collected no tests"; exit 1; }
exit $rc
