#!/usr/bin/env bash
# Installs what is missing, builds the release server and WASM client, and runs
# the app with its embedded defaults (no external services). Safe to re-run.
#   LEPTOS_SITE_ADDR=127.0.0.1:8080 ./scripts/run.sh   to pick another address.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$ROOT/scripts/setup.sh"
echo "[run] building (release)…"
cargo leptos build --release
export LEPTOS_OUTPUT_NAME=quota-alert
export LEPTOS_SITE_ROOT=target/site
export LEPTOS_SITE_PKG_DIR=pkg
export LEPTOS_SITE_ADDR="${LEPTOS_SITE_ADDR:-127.0.0.1:3000}"
export LEPTOS_ENV=PROD
echo "[run] quota-alert on http://$LEPTOS_SITE_ADDR (Ctrl-C stops it)"
exec target/release/quota-alert
