#!/usr/bin/env bash
# Builds `fogchain` and `fogchain-bench` in release mode and runs `fogchain-bench "$@"`
# (e.g. `scripts/bench.sh rpc-transfers --network devnet-data/network.json`). Results, plots and
# report.md go to --out (default bench-results/). See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ensure_cargo
ensure_libclang
cargo build --release --locked --bin fogchain --bin fogchain-proxy --bin fogchain-bench
exec "$CARGO_TARGET_DIR/release/fogchain-bench" "$@"
