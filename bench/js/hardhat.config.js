// Hardhat 3 node for fogchain-bench comparisons: `npx hardhat node` (automine, chain 31337, the
// test mnemonic's accounts funded). Started by scripts/bench-endpoint.sh.
export default {};
