#!/usr/bin/env bash
# Installs every tool quota-alert needs to build, run and test, skipping what is
# already present at the pinned version. Safe to re-run.
#
# Why pins: wasm-bindgen-cli must equal the `wasm-bindgen` crate in Cargo.lock
# exactly, cargo-leptos 0.3.11 needs a newer rustc than this toolchain, and Debian's
# binaryen (108) produces a release wasm that fails to hydrate, so wasm-opt comes
# from npm's binaryen instead.
set -euo pipefail

CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WITH_TEST_TOOLS=0
[ "${1:-}" = "--test" ] && WITH_TEST_TOOLS=1

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Debian packages -------------------------------------------------------
apt_missing=()
command -v node >/dev/null 2>&1 || apt_missing+=(nodejs npm)
command -v curl >/dev/null 2>&1 || apt_missing+=(curl)
if [ "$WITH_TEST_TOOLS" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium chromium-driver)
  command -v redis-server >/dev/null 2>&1 || apt_missing+=(redis-server)
  command -v wrk >/dev/null 2>&1 || apt_missing+=(wrk)
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${apt_missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

# --- Rust targets and cargo tools -----------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  log "installing cargo-leptos $CARGO_LEPTOS_VERSION (compiles for ~25 min, once)"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# --- npm tools (wasm-opt from binaryen, Playwright) ------------------------
# package-lock.json pins both; `npm ci` only when node_modules is missing or stale.
cd "$ROOT/end2end"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages (binaryen, @playwright/test)"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "tools ready"
