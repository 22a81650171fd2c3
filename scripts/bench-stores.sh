#!/usr/bin/env bash
# Measures POST /api/quota/record against the release server with each store:
# SQLite (acknowledged after commit) and Redis (shared counters + pub/sub).
# wrk, 2 threads, 32 connections, 15 s per store, after a 3 s warm-up.
# Not part of CI. Usage: scripts/bench-stores.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
command -v wrk >/dev/null && command -v redis-server >/dev/null || "$ROOT/scripts/setup.sh" --test
cargo build --release --features ssr --bin quota-alert
ADMIN="bench-admin-key-0123456789"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

run_one() { # $1 = label, $2 = QUOTA_DATABASE_URL
  local port; port="$(free_port)"
  QUOTA_DATABASE_URL="$2" QUOTA_ADMIN_RESET_KEY="$ADMIN" LEPTOS_OUTPUT_NAME=quota-alert \
    LEPTOS_SITE_ADDR="127.0.0.1:$port" RUST_LOG=warn target/release/quota-alert >/dev/null 2>&1 &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  local key
  key="$(curl -fsS -X POST "http://127.0.0.1:$port/api/admin/workspaces" -H "Authorization: Bearer $ADMIN" \
    -H 'content-type: application/json' \
    -d '{"id":"bench","limits":{"requests_per_minute":1000000000,"requests_per_day":1000000000,"tokens_per_minute":1000000000000,"tokens_per_day":1000000000000}}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"
  QA_KEY="$key" wrk -t2 -c32 -d3s -s scripts/bench/record.lua "http://127.0.0.1:$port/api/quota/record" >/dev/null
  echo "=== $1 ==="
  QA_KEY="$key" wrk -t2 -c32 -d15s --latency -s scripts/bench/record.lua "http://127.0.0.1:$port/api/quota/record"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_one "SQLite (synchronous=FULL, group commit)" "sqlite://$WORK/bench.db"

RPORT="$(free_port)"
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
PIDS+=("$!")
sleep 0.5
run_one "Redis (Lua counters + pub/sub, no persistence)" "redis://127.0.0.1:$RPORT/"
