// Hardhat 2 pointed at a running Fogchain node. The Rust test (tests/tests/hardhat.rs) sets
// FOGCHAIN_RPC, FOGCHAIN_CHAIN_ID and FOGCHAIN_KEYS (comma-separated private keys).
require("@nomicfoundation/hardhat-ethers");

module.exports = {
  // No Solidity sources here: the tests deploy the committed artifacts of contracts/, so no
  // compiler download is needed.
  solidity: "0.8.30",
  defaultNetwork: "fogchain",
  networks: {
    fogchain: {
      url: process.env.FOGCHAIN_RPC || "http://127.0.0.1:8545",
      chainId: Number(process.env.FOGCHAIN_CHAIN_ID || 1337),
      accounts: (process.env.FOGCHAIN_KEYS || "").split(",").filter(Boolean),
    },
  },
  mocha: { timeout: 120000 },
};
