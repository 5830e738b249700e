#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for MINUTES minutes each (default 1), on nightly
# (or stable with RUSTC_BOOTSTRAP=1), and prints the inputs each one ran. A crash stops the run
# with the reproducer in fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# The corpus grows in fuzz/corpus/<target>/ (not committed); fuzz/seeds/<target>/ (committed) and
# fuzz/<target>.dict (a libFuzzer dictionary), where present, start it off.
# usage: scripts/fuzz.sh [MINUTES] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ensure_cargo
ensure_libclang
minutes="${1:-1}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz ..." >&2
  cargo install --locked cargo-fuzz
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
# Its own target dir: sanitizer flags rebuild everything, RocksDB's C++ included (once). Only
# build there through cargo fuzz: a plain `cargo check` in fuzz/ with this target dir changes the
# flags and costs the next fuzz build a full rebuild.
export CARGO_TARGET_DIR="${FOGCHAIN_FUZZ_TARGET_DIR:-$HOME/.cache/fogchain-fuzz-target}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)
fi
"${fuzz[@]}" build -O --fuzz-dir fuzz
seconds=$((minutes * 60))
for target in "${targets[@]}"; do
  echo "== $target: ${minutes} min" >&2
  mkdir -p "fuzz/corpus/$target"
  log="$(mktemp)"
  inputs=("fuzz/corpus/$target")
  [ -d "fuzz/seeds/$target" ] && inputs+=("fuzz/seeds/$target")
  options=(-max_total_time="$seconds" -rss_limit_mb=4096 -max_len=65536)
  [ -f "fuzz/$target.dict" ] && options+=(-dict="fuzz/$target.dict")
  if ! "${fuzz[@]}" run -O --fuzz-dir fuzz "$target" "${inputs[@]}" -- "${options[@]}" >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "error: $target crashed; see fuzz/artifacts/$target/" >&2
    exit 1
  fi
  # libFuzzer ends with "Done N runs in S second(s)".
  runs="$(grep -oE 'Done [0-9]+ runs' "$log" | awk '{print $2}' | tail -1 || true)"
  echo "$target: ${runs:-?} inputs, no crash" >&2
  rm -f "$log"
done
