#!/usr/bin/env bash
# Starts another Ethereum node from npm on 127.0.0.1 so that the fogchain-bench workloads can run
# against it side by side with a Fogchain devnet:
#   scripts/bench-endpoint.sh hardhat [PORT]   # Hardhat 3 node (EDR), automine, chain 31337
#   scripts/bench-endpoint.sh ganache [PORT]   # Ganache 7, chain 1337
#   scripts/bench-endpoint.sh anvil [PORT]     # Foundry's Anvil 1.7, automine, chain 31337
# Each funds the 10 accounts of the test mnemonic ("test ... junk") that fogchain-bench pays
# from. Default port: 8547 (hardhat), 8548 (ganache), 8549 (anvil). Installs bench/js's npm packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-}"
dir=bench/js
if [ ! -f "$dir/node_modules/.package-lock.json" ] \
   || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
  echo "installing npm packages in $dir ..." >&2
  npm ci --prefix "$dir" --no-audit --no-fund
fi
# Hardhat 3 needs Node 22+; the npm `node` package in bench/js provides it.
node22="$PWD/$dir/node_modules/.bin/node"
case "$which" in
  hardhat)
    port="${2:-8547}"
    cd "$dir"
    exec "$node22" node_modules/hardhat/dist/src/cli.js node --hostname 127.0.0.1 --port "$port"
    ;;
  ganache)
    port="${2:-8548}"
    exec node "$dir/node_modules/ganache/dist/node/cli.js" --server.host 127.0.0.1 --server.port "$port" \
      --wallet.mnemonic "test test test test test test test test test test test junk" \
      --wallet.totalAccounts 10 --wallet.defaultBalance 10000 --chain.chainId 1337 --logging.quiet
    ;;
  anvil)
    port="${2:-8549}"
    exec "$dir/node_modules/.bin/anvil" --host 127.0.0.1 --port "$port" --silent \
      --mnemonic "test test test test test test test test test test test junk" --accounts 10 --balance 10000
    ;;
  *)
    echo "usage: $0 hardhat|ganache|anvil [PORT]" >&2
    exit 2
    ;;
esac
