#!/usr/bin/env bash
# Runs every test: unit and integration tests of all crates, and the end-to-end tests that start
# real `fogchain` processes and drive them with real clients (ethers.js, viem, web3.js and
# Hardhat, Foundry and MQTT.js from npm, paho-mqtt from PyPI, mosquitto_pub / mosquitto_sub and
# Prometheus from Debian).
# Extra arguments go to `cargo nextest run` (e.g. `scripts/test.sh -p fogchain-storage`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ensure_cargo
ensure_libclang
ensure_mosquitto
ensure_prometheus
ensure_faketime
ensure_chromium
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest ..." >&2
  cargo install --locked cargo-nextest
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "error: Node.js 20+ and npm are needed for the client tests: apt-get install -y nodejs npm" >&2
  exit 1
fi
# npm packages: client libraries, playwright-core, a Hardhat project and Foundry (forge, cast,
# solcjs) for the end-to-end tests, the pinned solc for contracts/, Vite and the apps' libraries
# for web/.
for dir in tests/js tests/hardhat tests/foundry contracts web; do
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
     || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "installing npm packages in $dir ..." >&2
    npm ci --prefix "$dir" --no-audit --no-fund
  fi
done
# Python's jsonschema validates RPC results against the execution-apis schemas (tests/openrpc);
# paho-mqtt is the MQTT 5 device of tests/py.
if ! python3 -c "import jsonschema, yaml, paho.mqtt" 2>/dev/null; then
  echo "installing Python packages for tests/openrpc and tests/py ..." >&2
  python3 -m pip install --quiet -r tests/openrpc/requirements.txt -r tests/py/requirements.txt
fi
# The end-to-end tests run the `fogchain` binary built here.
cargo build --locked --workspace --all-targets
cargo nextest run --locked --workspace "$@"
