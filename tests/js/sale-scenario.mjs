// Sales-order scenario (../../../shared/data/sale-scenario.json) with ethers.js v6 against a
// running Fogchain devnet. Usage: node sale-scenario.mjs NETWORK_JSON SCENARIO_JSON
// Exits non-zero with a message on the first failed expectation.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { ethers } from "ethers";

const require = createRequire(import.meta.url);
const solc = require("solc");

const [networkPath, scenarioPath] = process.argv.slice(2);
const network = JSON.parse(readFileSync(networkPath, "utf8"));
const scenario = JSON.parse(readFileSync(scenarioPath, "utf8"));

function compile() {
  const source = readFileSync(new URL("./contracts/Sale.sol", import.meta.url), "utf8");
  const input = {
    language: "Solidity",
    sources: { "Sale.sol": { content: source } },
    settings: { evmVersion: "cancun", optimizer: { enabled: true, runs: 200 }, outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  assert.equal(errors.length, 0, JSON.stringify(errors));
  const c = output.contracts["Sale.sol"].Sale;
  return { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
}

// cacheTimeout -1: ethers otherwise answers an identical request made within 250 ms from its
// cache, and Fogchain mints a block faster than that (the same setting Hardhat users need).
const provider = new ethers.JsonRpcProvider(network.nodes[0].rpc, undefined, { cacheTimeout: -1, pollingInterval: 200 });
const chainId = (await provider.getNetwork()).chainId;
assert.equal(chainId, BigInt(network.chainId), "chain id");

const wallet = (role) => {
  const { index, address } = scenario[role];
  const w = new ethers.Wallet(network.accounts[index].privateKey, provider);
  assert.equal(w.address, ethers.getAddress(address), `${role} address from the test mnemonic`);
  // The mnemonic path gives the same key.
  const fromPhrase = ethers.HDNodeWallet.fromPhrase(scenario.mnemonic, undefined, `m/44'/60'/0'/0/${index}`);
  assert.equal(fromPhrase.address, w.address);
  return w;
};
const seller = wallet("seller");
const buyer = wallet("buyer");
const stranger = wallet("stranger");
const item = scenario.item;
const price = BigInt(item.priceWei);

// Table 2: the seller creates the sale contract.
const { abi, bytecode } = compile();
const factory = new ethers.ContractFactory(abi, bytecode, seller);
const sale = await factory.deploy(item.make, item.model, item.year, price, item.serialNumber);
const deployTx = sale.deploymentTransaction();
const deployReceipt = await deployTx.wait();
assert.equal(deployReceipt.status, 1, "deploy status");
assert.ok(deployReceipt.contractAddress, "receipt.contractAddress");
assert.equal(deployReceipt.contractAddress, await sale.getAddress());
assert.ok((await provider.getCode(deployReceipt.contractAddress)).length > 2, "code deployed");
const deployBlock = await provider.getBlock(deployReceipt.blockNumber);
const previous = await provider.getBlock(deployReceipt.blockNumber - 1);
assert.equal(deployBlock.parentHash, previous.hash, "block N links to block N-1");
assert.equal(await sale.price(), price);
assert.equal(await sale.serialNumber(), item.serialNumber);

// Table 3: the buyer pays exactly the price.
const sellerBefore = await provider.getBalance(seller.address);
const buyTx = await sale.connect(buyer).buy({ value: price });
const buyReceipt = await buyTx.wait();
assert.equal(buyReceipt.status, 1, "buy status");
assert.equal(buyReceipt.logs.length, 1, "one Sold log");
const sold = sale.interface.parseLog(buyReceipt.logs[0]);
assert.equal(sold.name, "Sold");
assert.equal(sold.args.buyer, buyer.address);
assert.equal(sold.args.price, price);
assert.ok(await sale.isSold(), "isSold() after buy");
assert.equal(await provider.getBalance(seller.address), sellerBefore + price, "seller balance +price");
assert.ok(BigInt(buyReceipt.gasUsed) > 21000n && buyReceipt.gasPrice > 0n);

// Table 4: the locker verifies ownership with eth_call.
assert.equal(await sale.verifyOwnership(buyer.address), true, "buyer owns the item");
assert.equal(await sale.verifyOwnership(stranger.address), false, "stranger does not");

// A second purchase reverts with the contract's reason and moves no value.
const strangerBefore = await provider.getBalance(stranger.address);
await assert.rejects(sale.connect(stranger).buy({ value: price }), (err) => {
  assert.equal(err.code, "CALL_EXCEPTION");
  assert.equal(err.reason, "already sold");
  return true;
});
assert.equal(await provider.getBalance(stranger.address), strangerBefore, "no value moved");
assert.equal(await provider.getBalance(seller.address), sellerBefore + price);

// Every block links to its parent.
const head = await provider.getBlockNumber();
let parent = await provider.getBlock(0);
for (let n = 1; n <= head; n++) {
  const block = await provider.getBlock(n);
  assert.equal(block.parentHash, parent.hash, `parentHash of block ${n}`);
  assert.ok(block.timestamp >= parent.timestamp, `timestamp of block ${n} does not decrease`);
  assert.ok(block.transactions.length > 0, `block ${n} is not empty`);
  parent = block;
}
// The same node over WebSocket (same port as HTTP): head and a contract call agree.
const ws = new ethers.WebSocketProvider(network.nodes[0].ws);
assert.equal(await ws.getBlockNumber(), head, "WebSocket head");
assert.equal(await sale.connect(ws).verifyOwnership(buyer.address), true, "eth_call over WebSocket");
await ws.destroy();

console.log(JSON.stringify({ ok: true, sale: await sale.getAddress(), blocks: head }));
