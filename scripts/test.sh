#!/usr/bin/env bash
# Installs what is missing and runs every test: formatting and lints, unit and
# integration tests (engine, HTTP and WebSocket API), then the browser
# end-to-end tests in Debian's Chromium against the release build. Safe to re-run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$ROOT/scripts/setup.sh" --test

step() { printf '\n\033[1;34m[test]\033[0m %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (server and WASM client)"
cargo clippy --features ssr --all-targets -- -D warnings
cargo clippy --features hydrate --target wasm32-unknown-unknown --lib -- -D warnings

step "unit and integration tests"
cargo test --features ssr

step "release build (server + WASM)"
cargo leptos build --release

step "browser end-to-end tests"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LOG="$(mktemp -t quota-alert-e2e.XXXXXX.log)"
E2E_DATA="$(mktemp -d -t quota-alert-e2e-data.XXXXXX)"
export QUOTA_DATABASE_URL="sqlite://$E2E_DATA/e2e.db"
export QUOTA_ADMIN_RESET_KEY="e2e-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
LEPTOS_OUTPUT_NAME=quota-alert LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
  LEPTOS_SITE_ADDR="127.0.0.1:$PORT" LEPTOS_ENV=PROD \
  target/release/quota-alert >"$LOG" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; rm -rf "$E2E_DATA"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$LOG"; echo "server exited"; exit 1; fi
  sleep 0.1
done
(cd end2end && QUOTA_BASE_URL="http://127.0.0.1:$PORT" npx playwright test) || { echo "--- server log ---"; tail -50 "$LOG"; exit 1; }

step "all tests passed"
