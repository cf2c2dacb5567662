# Sourced by scripts/container_base.sh and scripts/container_smoke.sh: picks the container
# engine. Docker when its daemon answers, otherwise podman with runc (crun, podman's default
# on Debian, fails to start containers in some sandboxes). Override with CONTAINER_ENGINE.
# Sets ENGINE (an array: the command and its global flags) and ENGINE_NAME.
pick_engine() {
  local want="${CONTAINER_ENGINE:-}"
  if [ -z "$want" ] || [ "$want" = docker ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
      ENGINE=(docker)
      ENGINE_NAME=docker
      return 0
    fi
    [ "$want" = docker ] && return 1
  fi
  if command -v podman >/dev/null 2>&1; then
    ENGINE=(podman)
    if command -v runc >/dev/null 2>&1; then ENGINE+=(--runtime runc); fi
    ENGINE_NAME=podman
    return 0
  fi
  return 1
}

# The base image every Dockerfile builds FROM (all three share one; test_dockerfiles checks).
base_image() {
  awk '/^FROM /{print $2; exit}' edge/Dockerfile
}

image_present() {
  "${ENGINE[@]}" image inspect "$1" >/dev/null 2>&1
}

# podman under runc here cannot raise the container's rlimits to its defaults (it fails with
# "error setting rlimit ... operation not permitted"); explicit, lower limits work everywhere.
engine_limits() {
  if [ "$ENGINE_NAME" = podman ]; then
    printf '%s\n' --ulimit "nofile=4096:$(ulimit -Hn)" --ulimit nproc=4096:4096
  fi
}

# Build flags: podman writes OCI images by default, which drop HEALTHCHECK; the Docker format
# keeps it (docker build always does).
engine_build_flags() {
  if [ "$ENGINE_NAME" = podman ]; then
    printf '%s\n' --format docker
  fi
}
