# Sourced by run.sh and test.sh: one place for the build environment.
#
# The cargo target dir lives outside the clone (so a fresh clone, e.g. CI's,
# reuses compiled dependencies) and `./target` points at it, so the paths the
# README promises (`target/release/quota-alert`, `target/site`) hold either way.
# An existing real `./target` directory is used as it is.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_CACHE="${CARGO_TARGET_DIR:-$HOME/.cache/quota-alert/target}"
if [ ! -e target ] && [ ! -L target ]; then
  mkdir -p "$TARGET_CACHE"
  ln -s "$TARGET_CACHE" target
fi
unset CARGO_TARGET_DIR
# Incremental caches are per checkout path; with CI cloning afresh every run
# they pile up by gigabytes and buy nothing. Compiled dependencies are shared.
export CARGO_INCREMENTAL=0
# wasm-opt from npm's binaryen comes first: Debian's builds a wasm that fails to hydrate.
export PATH="$ROOT/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
