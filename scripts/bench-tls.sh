#!/usr/bin/env bash
# What serving TLS directly costs (a benchmark, not a test; not part of CI).
#
# Starts the release server twice on free loopback ports, once over plain HTTP
# and once with QUOTA_TLS_CERT/QUOTA_TLS_KEY (a fresh self-signed P-256
# certificate), creates a workspace on each, and runs wrk against
# `GET /api/quota/check` on both: first on kept-alive connections (what SDKs and
# browsers do), then with `Connection: close` so that every request pays for a
# new connection and, over TLS, a full handshake. Method and recorded figures:
# docs/BENCHMARKS.md, "TLS". Everything it starts is stopped on exit.
#
# Knobs (environment):
#   DURATION=15     seconds per wrk run
#   CONNECTIONS=32  wrk connections (2 wrk threads)
#   SKIP_BUILD=1    use the release binary already built
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

DURATION="${DURATION:-15}"
CONNECTIONS="${CONNECTIONS:-32}"
command -v wrk >/dev/null || { echo "wrk is missing: scripts/setup.sh --test installs it"; exit 1; }
command -v openssl >/dev/null || { echo "openssl is missing"; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo leptos build --release
fi

WORK="$(mktemp -d -t quota-alert-bench-tls.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ADMIN="bench-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

# start NAME SCHEME [extra env...]: starts a server, prints its base URL.
start() {
  local name="$1" scheme="$2"; shift 2
  local port; port="$(free_port)"
  env QUOTA_DATABASE_URL="sqlite://$WORK/$name.db" QUOTA_ADMIN_RESET_KEY="$ADMIN" \
    QUOTA_API_RATE_PER_KEY=0 QUOTA_API_RATE_PER_IP=0 RUST_LOG=warn \
    LEPTOS_OUTPUT_NAME=quota-alert LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_ADDR="127.0.0.1:$port" \
    "$@" target/release/quota-alert >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 100); do
    curl -fsSk "$scheme://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "$scheme://127.0.0.1:$port"
}

key_for() {
  curl -fsSk -X POST "$1/api/admin/workspaces" -H "authorization: Bearer $ADMIN" \
    -H 'content-type: application/json' \
    -d '{"id":"bench","limits":{"requests_per_minute":1000000000,"requests_per_day":1000000000}}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])'
}

PLAIN="$(start plain http)"
TLS="$(start tls https QUOTA_TLS_CERT="$WORK/cert.pem" QUOTA_TLS_KEY="$WORK/key.pem")"
PLAIN_KEY="$(key_for "$PLAIN")"
TLS_KEY="$(key_for "$TLS")"

run() {
  local label="$1" base="$2" key="$3"; shift 3
  echo "== $label"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "authorization: Bearer $key" "$@" \
    "$base/api/quota/check" | grep -E 'Requests/sec|50%|99%|Socket errors|Non-2xx'
}

run "plain HTTP, kept-alive connections" "$PLAIN" "$PLAIN_KEY"
run "HTTPS, kept-alive connections" "$TLS" "$TLS_KEY"
run "plain HTTP, a new connection per request" "$PLAIN" "$PLAIN_KEY" -H 'connection: close'
run "HTTPS, a new connection (and handshake) per request" "$TLS" "$TLS_KEY" -H 'connection: close'
