#!/usr/bin/env bash
# Proxy overhead benchmark (a benchmark, not a test; not part of CI).
#
# Starts a fast fake OpenAI (examples/fake_openai.rs) and the release server
# pointed at it, on free loopback ports, creates a workspace with huge limits,
# then runs the open-loop load generator (examples/loadgen.rs) against the fake
# directly and through the proxy, side by side in one run, and prints both
# latency distributions and the added latency. Method and recorded figures:
# docs/BENCHMARKS.md, "Proxy overhead". Safe to re-run; everything it starts is
# stopped on exit.
#
# After the open-loop rounds, streamed calls (examples/streamgen.rs, closed
# loop, alternating direct and proxy): one client one stream after another
# (serial), then STREAM_SATURATION clients at once. Goal: the proxy adds at
# most 1 ms to a complete stream at p50 and 0.5 ms to its first byte.
#
# Knobs (environment):
#   RATE=1000         requests per second, per target (direct and proxy each)
#   DURATION=20       recorded seconds
#   WARMUP=3          seconds sent but not recorded, before the recorded ones
#   ROUNDS=1          how many loadgen runs against the same server
#   LOADGEN_THREADS=1 tokio worker threads in the load generator
#   STREAM_DURATION=10   recorded seconds of each streaming run (0: skip them)
#   STREAM_SATURATION=50 concurrent streaming clients of the saturation run
#   SKIP_BUILD=1      use the binaries already built (examples and server)
#   SKIP_SERVER_BUILD=1  build only the examples, not the server
#   SERVER_BIN=path   benchmark another server binary (implies SKIP_SERVER_BUILD=1)
#   NICE=-10          run the fake, the server and the generator at this nice
#                     level (negative needs root), so that other work on a shared
#                     machine (builds) disturbs the measurement less
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

RATE="${RATE:-1000}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-3}"
ROUNDS="${ROUNDS:-1}"
LOADGEN_THREADS="${LOADGEN_THREADS:-1}"
SKIP_BUILD="${SKIP_BUILD:-0}"
SKIP_SERVER_BUILD="${SKIP_SERVER_BUILD:-0}"
NICE="${NICE:-0}"
STREAM_DURATION="${STREAM_DURATION:-10}"
STREAM_SATURATION="${STREAM_SATURATION:-50}"
[ -n "${SERVER_BIN:-}" ] && SKIP_SERVER_BUILD=1

if [ "$SKIP_BUILD" != 1 ]; then
  echo "[bench] building the examples (release)…"
  cargo build --release --features ssr --example fake_openai --example loadgen --example streamgen
  if [ "$SKIP_SERVER_BUILD" != 1 ]; then
    echo "[bench] building the server (release)…"
    cargo leptos build --release
  fi
fi
SERVER_BIN="${SERVER_BIN:-$ROOT/target/release/quota-alert}"
FAKE_BIN="$ROOT/target/release/examples/fake_openai"
LOADGEN_BIN="$ROOT/target/release/examples/loadgen"
STREAMGEN_BIN="$ROOT/target/release/examples/streamgen"
for bin in "$SERVER_BIN" "$FAKE_BIN" "$LOADGEN_BIN" "$STREAMGEN_BIN"; do
  [ -x "$bin" ] || { echo "[bench] missing $bin (run without SKIP_BUILD=1)" >&2; exit 1; }
done

WORK="$(mktemp -d -t bench-proxy.XXXXXX)"
FAKE_PID=""
SERVER_PID=""
cleanup() {
  for pid in $SERVER_PID $FAKE_PID; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $SERVER_PID $FAKE_PID; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port (for the server, which must be told one; the fake binds
# port 0 itself and says which it got).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until URL answers (any HTTP status), or fails after ~10 s.
wait_for() {
  local url="$1" pid="$2" name="$3"
  for _ in $(seq 100); do
    if curl -s -o /dev/null "$url"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "[bench] $name exited early:" >&2
      cat "$WORK/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "[bench] $name did not start:" >&2
  cat "$WORK/$name.log" >&2
  exit 1
}

: >"$WORK/fake.log"
nice -n "$NICE" "$FAKE_BIN" 0 >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
FAKE_PORT=""
for _ in $(seq 100); do
  FAKE_PORT="$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$WORK/fake.log")"
  [ -n "$FAKE_PORT" ] && break
  kill -0 "$FAKE_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$FAKE_PORT" ] || { echo "[bench] the fake upstream did not start:" >&2; cat "$WORK/fake.log" >&2; exit 1; }
wait_for "http://127.0.0.1:$FAKE_PORT/v1/models" "$FAKE_PID" fake

ADMIN_KEY="bench-admin-key-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
# A fresh, throw-away store each run (servers without persistence ignore it).
start_server() {
  SERVER_PORT="$(free_port)"
  LEPTOS_OUTPUT_NAME=quota-alert \
  LEPTOS_SITE_ROOT=target/site \
  LEPTOS_SITE_PKG_DIR=pkg \
  LEPTOS_SITE_ADDR="127.0.0.1:$SERVER_PORT" \
  LEPTOS_ENV=PROD \
  QUOTA_ADMIN_RESET_KEY="$ADMIN_KEY" \
  QUOTA_DATABASE_URL="sqlite://$WORK/quota-alert.db" \
  OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" \
  OPENAI_API_KEY=sk-bench \
  QUOTA_API_RATE_PER_KEY=1000000 \
  RUST_LOG=warn \
    nice -n "$NICE" "$SERVER_BIN" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
}
# The port can be taken between picking and binding it: then try another.
for attempt in 1 2 3; do
  start_server
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$SERVER_PORT/healthz" && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$SERVER_PID" 2>/dev/null && break
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  [ "$attempt" = 3 ] && { echo "[bench] the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
done
wait_for "http://127.0.0.1:$SERVER_PORT/healthz" "$SERVER_PID" server

CREATED="$(curl -sS -f -X POST "http://127.0.0.1:$SERVER_PORT/api/admin/workspaces" \
  -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d '{"id":"bench","limits":{"requests_per_minute":100000000,"requests_per_day":100000000000,"tokens_per_minute":100000000000,"tokens_per_day":100000000000}}')"
WORKSPACE_KEY="$(printf '%s' "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"

# CPU time (user+system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS_PER_S="$(getconf CLK_TCK)"

echo "[bench] fake upstream http://127.0.0.1:$FAKE_PORT (pid $FAKE_PID), proxy http://127.0.0.1:$SERVER_PORT (pid $SERVER_PID)"
echo "[bench] $(nproc) CPU(s); nice $NICE; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  echo
  echo "[bench] round $round/$ROUNDS: $RATE req/s per target, ${WARMUP}s warm-up + ${DURATION}s recorded; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  server_before="$(cpu_ticks "$SERVER_PID")"
  fake_before="$(cpu_ticks "$FAKE_PID")"
  nice -n "$NICE" "$LOADGEN_BIN" \
    --direct "http://127.0.0.1:$FAKE_PORT/v1/chat/completions" \
    --proxy "http://127.0.0.1:$SERVER_PORT/v1/chat/completions" \
    --key "$WORKSPACE_KEY" \
    --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" \
    --threads "$LOADGEN_THREADS" --markdown
  server_after="$(cpu_ticks "$SERVER_PID")"
  fake_after="$(cpu_ticks "$FAKE_PID")"
  python3 - "$server_before" "$server_after" "$fake_before" "$fake_after" "$TICKS_PER_S" "$RATE" "$DURATION" "$WARMUP" <<'EOF'
import sys
sb, sa, fb, fa, hz, rate, duration, warmup = map(float, sys.argv[1:])
seconds = duration + warmup
proxied = rate * seconds  # the server sees only the proxy half
print(f"[bench] server CPU: {(sa - sb) / hz:.2f} s over {seconds:.0f} s "
      f"({100 * (sa - sb) / hz / seconds:.0f}% of one core, ~{1e6 * (sa - sb) / hz / proxied:.0f} µs per proxied request); "
      f"fake CPU: {100 * (fa - fb) / hz / seconds:.0f}% of one core")
EOF
done
if [ "$STREAM_DURATION" != 0 ]; then
  for clients in 1 "$STREAM_SATURATION"; do
    echo
    echo "[bench] streaming, $clients client(s), closed loop, ${STREAM_DURATION}s recorded; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    server_before="$(cpu_ticks "$SERVER_PID")"
    nice -n "$NICE" "$STREAMGEN_BIN" \
      --direct "http://127.0.0.1:$FAKE_PORT/v1/chat/completions" \
      --proxy "http://127.0.0.1:$SERVER_PORT/v1/chat/completions" \
      --key "$WORKSPACE_KEY" \
      --concurrency "$clients" --duration "$STREAM_DURATION" --warmup 2 --markdown
    server_after="$(cpu_ticks "$SERVER_PID")"
    echo "[bench] server CPU: $(( (server_after - server_before) * 100 / TICKS_PER_S / (STREAM_DURATION + 2) ))% of one core"
  done
fi
if [ -s "$WORK/server.log" ]; then
  echo
  echo "[bench] server log (RUST_LOG=warn), last lines:"
  tail -n 5 "$WORK/server.log"
fi
