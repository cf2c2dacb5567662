#!/usr/bin/env bash
# `make lint`: every static check, each reported on its own; exits non-zero if any failed.
#   ruff check + ruff format --check   Python style and errors
#   terraform fmt -check               canonical HCL layout (no providers needed)
#   checkov                            security checks on terraform/ and the Dockerfiles
#   hadolint                           Dockerfile lint (no warning or error allowed)
# Tools come from .venv (ruff) and .venv-tools (checkov, hadolint: `make setup` installs them).
set -uo pipefail
cd "$(dirname "$0")/.."

PY_DIRS=(moviemind_core edge model_server index_builder devstack loadtests tests benchmarks scripts)
DOCKERFILES=(edge/Dockerfile model_server/Dockerfile index_builder/Dockerfile)
RUFF=.venv/bin/ruff
CHECKOV=.venv-tools/bin/checkov
HADOLINT=.venv-tools/bin/hadolint
failed=()

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'lint: FAILED: %s\n' "$*" >&2; failed+=("$1"); }
need() {  # need TOOL HINT: the tool must exist, otherwise the step fails with a hint.
  if [ -x "$1" ] || command -v "$1" >/dev/null 2>&1; then return 0; fi
  fail "$1 not found ($2)"
  return 1
}

existing_dirs=()
for d in "${PY_DIRS[@]}"; do [ -d "$d" ] && existing_dirs+=("$d"); done

step "ruff check ${existing_dirs[*]}"
if need "$RUFF" "run make setup"; then
  "$RUFF" check "${existing_dirs[@]}" || fail "ruff check (fix: make fmt)"
fi

step "ruff format --check ${existing_dirs[*]}"
if need "$RUFF" "run make setup"; then
  "$RUFF" format --check "${existing_dirs[@]}" || fail "ruff format --check (fix: make fmt)"
fi

step "terraform fmt -check -recursive terraform"
if need terraform "install Terraform >= 1.5"; then
  # Only formatting: init/validate/plan need the providers, which this check never downloads.
  TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 terraform fmt -check -diff -recursive terraform \
    || fail "terraform fmt (fix: terraform fmt -recursive terraform)"
fi

step "checkov terraform/ and Dockerfiles"
if need "$CHECKOV" "run make setup"; then
  # --skip-download: no call to the vendor's platform; the bundled checks are the same.
  "$CHECKOV" --quiet --compact --skip-download --framework terraform -d terraform \
    || fail "checkov terraform/ (fix the finding or add a justified checkov:skip in place)"
  "$CHECKOV" --quiet --compact --skip-download --framework dockerfile -f "${DOCKERFILES[@]}" \
    || fail "checkov Dockerfiles (fix the finding or add a justified checkov:skip in place)"
fi

step "hadolint ${DOCKERFILES[*]}"
if need "$HADOLINT" "run make setup"; then
  for f in "${DOCKERFILES[@]}"; do
    "$HADOLINT" --no-color --failure-threshold warning "$f" \
      || fail "hadolint $f (fix it or add a justified '# hadolint ignore=' in place)"
  done
fi

echo
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'lint: %d check(s) failed:\n' "${#failed[@]}" >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "lint: all checks passed"
