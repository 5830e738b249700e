#!/usr/bin/env bash
# Starts a local Fogchain network: builds `fogchain` and `fogchain-proxy` (release) if needed, then runs
# `fogchain devnet "$@"` (defaults: --dir devnet-data --nodes 3 --base-port 8545).
# Ctrl-C stops it; running it again with the same --dir resumes the chain.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ensure_cargo
ensure_libclang
cargo build --release --locked --bin fogchain --bin fogchain-proxy
exec "$CARGO_TARGET_DIR/release/fogchain" devnet "$@"
