#!/usr/bin/env bash
# Installs everything r2r needs on a fresh Debian/Ubuntu machine, and does nothing that is
# already done: npm packages, Debian's libtorch-dev (native engine), libopenblas0-pthread (an
# optimized BLAS for libtorch's dense layers), libdnnl-dev (oneDNN's headers: the native engine's
# inference dense layers; the library itself comes with libtorch), chromium (report tests), clang and lld (rebuild check
# of the tfjs engine's WebAssembly kernels) and python3-torch (PyTorch
# for Python, large: 46 MB of its own plus numpy, sympy and more; it exports the models of the
# PyTorch -> ONNX tests and runs the PyTorch side of `npm run bench`), then builds the native
# libtorch addon only when its sources, libtorch or Node changed. Safe to run repeatedly.
#   R2R_SKIP_APT=1    do not install Debian packages (the native engine then stays unavailable
#                     and r2r falls back to TensorFlow.js; outside CI the PyTorch tests skip)
set -euo pipefail
cd "$(dirname "$0")/.."

want=()
if [ "${R2R_SKIP_APT:-0}" != 1 ]; then
  [ -n "${LIBTORCH:-}" ] || dpkg -s libtorch-dev >/dev/null 2>&1 || want+=(libtorch-dev)
  # Debian's libtorch calls whatever libblas.so.3 is installed; the reference BLAS is about 8x
  # slower than OpenBLAS for dense layers. Installing this makes OpenBLAS that libblas.so.3.
  [ -n "${LIBTORCH:-}" ] || dpkg -s libopenblas0-pthread >/dev/null 2>&1 || want+=(libopenblas0-pthread)
  # The addon runs inference dense layers on oneDNN (native/src/onednn_dense.cc), which Debian's
  # libtorch already loads; only the headers are missing.
  [ -n "${LIBTORCH:-}" ] || dpkg -s libdnnl-dev >/dev/null 2>&1 || want+=(libdnnl-dev)
  dpkg -s chromium >/dev/null 2>&1 || want+=(chromium)
  dpkg -s python3-torch >/dev/null 2>&1 || want+=(python3-torch)
  # clang + lld (wasm32 target): the test that rebuilds the tfjs engine's committed WebAssembly
  # kernels (src/engines/tfjs/wasm) from their C source and compares them byte for byte.
  dpkg -s clang >/dev/null 2>&1 || want+=(clang)
  dpkg -s lld >/dev/null 2>&1 || want+=(lld)
fi
if [ ${#want[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${want[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}" >/dev/null
fi

# A libblas.so.3 set by hand to the reference BLAS stays so; say how to switch.
alt="libblas.so.3-$(uname -m)-linux-gnu"
blas=$(update-alternatives --query "$alt" 2>/dev/null | sed -n 's/^Value: //p' || true)
case "$blas" in
  ""|*openblas*|*blis*|*mkl*|*atlas*) ;;
  *) echo "setup: note: libblas.so.3 is $blas (the generic reference BLAS, ~8x slower for dense layers); switch with: sudo update-alternatives --config $alt" ;;
esac
# onnxruntime-node (a devDependency: the ONNX tests' runtime) ships its CPU binaries in the npm
# package; its install script would otherwise download a CUDA add-on, which r2r does not use.
export ONNXRUNTIME_NODE_INSTALL=skip

# npm ci only when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi

if [ -n "${LIBTORCH:-}" ] || dpkg -s libtorch-dev >/dev/null 2>&1; then
  # Rebuilds (1-3 minutes) only when native/, libtorch or Node's ABI changed since the last build.
  npm run --silent build:native -- --if-changed
else
  echo "setup: libtorch not installed; the native engine is unavailable (TensorFlow.js will be used)"
fi
