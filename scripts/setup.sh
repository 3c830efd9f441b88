#!/usr/bin/env bash
# Installs everything r2r needs on a fresh Debian/Ubuntu machine, and does nothing that is
# already done: npm packages, Debian's libtorch-dev (native engine), chromium (report tests) and
# python3-torch (PyTorch for Python, large: 46 MB of its own plus numpy, sympy and more; it
# exports the models of the PyTorch -> ONNX tests and runs the PyTorch side of `npm run bench`),
# then builds the native libtorch addon. Safe to run repeatedly.
#   R2R_SKIP_APT=1    do not install Debian packages (the native engine then stays unavailable
#                     and r2r falls back to TensorFlow.js; outside CI the PyTorch tests skip)
set -euo pipefail
cd "$(dirname "$0")/.."

want=()
if [ "${R2R_SKIP_APT:-0}" != 1 ]; then
  [ -n "${LIBTORCH:-}" ] || dpkg -s libtorch-dev >/dev/null 2>&1 || want+=(libtorch-dev)
  dpkg -s chromium >/dev/null 2>&1 || want+=(chromium)
  dpkg -s python3-torch >/dev/null 2>&1 || want+=(python3-torch)
fi
if [ ${#want[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${want[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}" >/dev/null
fi

# onnxruntime-node (a devDependency: the ONNX tests' runtime) ships its CPU binaries in the npm
# package; its install script would otherwise download a CUDA add-on, which r2r does not use.
export ONNXRUNTIME_NODE_INSTALL=skip

# npm ci only when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi

if [ -n "${LIBTORCH:-}" ] || dpkg -s libtorch-dev >/dev/null 2>&1; then
  echo "setup: building the native libtorch engine"
  npm run --silent build:native
else
  echo "setup: libtorch not installed; the native engine is unavailable (TensorFlow.js will be used)"
fi
