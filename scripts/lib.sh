# Shared by scripts/setup, scripts/run and scripts/test: where tools live and
# how to reach them. Source it; it only sets variables and defines functions.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Tools are built once per machine, outside the checkout, so a fresh clone
# (as in CI) does not rebuild cargo-leptos.
TOOLS="${STOCKFLOW_TOOLS:-$HOME/.cache/stockflow/tools}"

CARGO_LEPTOS_VERSION=0.3.11
WASM_BINDGEN_VERSION=0.2.130
BINARYEN_VERSION=132
SCHEMATHESIS_VERSION=4.32.5

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Puts the project's tools first on PATH. The WASM fallback wrapper comes
# first of all when scripts/setup found no wasm32 standard library.
use_tools() {
  export PATH="$TOOLS/bin:$TOOLS/binaryen/node_modules/.bin:$HOME/.cargo/bin:$PATH"
  if [[ -f "$TOOLS/wasm-fallback" ]]; then
    export PATH="$ROOT/scripts/toolchain:$PATH"
  fi
}

# A TCP port on the loopback that is free right now.
free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Waits until `redis-cli -u URL ping` answers, up to $2 seconds.
wait_for_redis() {
  local url="$1" deadline=$((SECONDS + ${2:-10}))
  until redis-cli -u "$url" ping 2>/dev/null | grep -q PONG; do
    (( SECONDS < deadline )) || return 1
    sleep 0.1
  done
}

# Waits until an HTTP URL answers 2xx, up to $2 seconds.
wait_for_http() {
  local url="$1" deadline=$((SECONDS + ${2:-30}))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    (( SECONDS < deadline )) || return 1
    sleep 0.2
  done
}

# The release build of the server and the front end, then every file of the
# site precompressed beside it (gzip -9, brotli 11), for the server to send as
# it is (server/src/assets.rs). cargo-leptos's own --precompress gzips the
# WASM a sixth bigger.
build_site() {
  cargo-leptos build --release
  node "$ROOT/scripts/bundle.mjs" compress "$ROOT/target/site"
}

# Runs the release server built by cargo-leptos, with the settings cargo-leptos
# would give it. Start it in the background (`run_server &`): it execs, so $!
# is the server itself and a signal to $! reaches it.
run_server() {
  LEPTOS_OUTPUT_NAME=stockflow LEPTOS_SITE_ROOT="$ROOT/target/site" LEPTOS_SITE_PKG_DIR=pkg \
    LEPTOS_ENV="${LEPTOS_ENV:-PROD}" exec "$ROOT/target/release/server"
}
