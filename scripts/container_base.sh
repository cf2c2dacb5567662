#!/usr/bin/env bash
# Makes the Dockerfiles' base image available to the local container engine.
#   1. already present: nothing to do;
#   2. otherwise pull it (python:3.11.14-slim-bookworm from Docker Hub);
#   3. when no registry is reachable (this project's CI and dev machines reach only PyPI and
#      Debian), build a stand-in: a Debian bookworm root filesystem from debootstrap with
#      Debian's Python 3.11, pip and venv, imported and tagged with the FROM name.
# The stand-in is for the smoke test only: never push images built on it. Its Python is
# Debian's 3.11.2 under /usr/bin (the real image: 3.11.14 under /usr/local/bin); the images'
# venvs live in /opt/venv either way, so the Dockerfiles need no change. pip in the stand-in
# trusts the system store (PIP_CERT), which includes the build host's extra CAs.
# Usage: scripts/container_base.sh [--stand-in]   (--stand-in: skip the pull attempt)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/container_engine.sh
. scripts/container_engine.sh

pick_engine || { echo "container_base: no docker daemon and no podman" >&2; exit 2; }
BASE="$(base_image)"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if image_present "$BASE"; then
  echo "container_base: $BASE present"
  exit 0
fi
if [ "${1:-}" != --stand-in ] && timeout 120 "${ENGINE[@]}" pull "$BASE" >/dev/null 2>&1; then
  echo "container_base: pulled $BASE"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "container_base: cannot pull $BASE and debootstrap is missing (apt-get install debootstrap)" >&2
  exit 2
}
echo "container_base: cannot pull $BASE; building a Debian $SUITE stand-in with debootstrap"
root="$(mktemp -d /tmp/moviemind-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
  "$SUITE" "$root" "$MIRROR" >/tmp/moviemind-debootstrap.log 2>&1 || {
  echo "container_base: debootstrap failed, see /tmp/moviemind-debootstrap.log" >&2
  exit 1
}
# The official image's pip installs into the system Python; Debian marks its Python as
# externally managed (PEP 668), which would stop the Dockerfiles' plain `pip install`.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
# The build host's own extra CAs (for example a TLS-inspecting egress proxy) go into the
# stand-in's trust store, so pip inside the builds reaches PyPI as the host does.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
tar -C "$root" -c . | "${ENGINE[@]}" import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  - "$BASE" >/dev/null
echo "container_base: imported the stand-in as $BASE ($("${ENGINE[@]}" run --rm $(engine_limits) "$BASE" python --version))"
