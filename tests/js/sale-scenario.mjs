// Sales-order scenario (tests/fixtures/data/sale-scenario.json) with ethers.js v6 against a
// running Fogchain devnet, with the committed contract artifacts (contracts/artifacts): once with
// a Sale deployed directly by the seller (as in the paper), once through SaleFactory.
// Usage: node sale-scenario.mjs NETWORK_JSON SCENARIO_JSON
// Exits non-zero with a message on the first failed expectation.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ethers } from "ethers";

const [networkPath, scenarioPath] = process.argv.slice(2);
const network = JSON.parse(readFileSync(networkPath, "utf8"));
const scenario = JSON.parse(readFileSync(scenarioPath, "utf8"));
const artifact = (name) => JSON.parse(readFileSync(new URL(`../../contracts/artifacts/${name}.json`, import.meta.url), "utf8"));
const Sale = artifact("Sale");
const SaleFactory = artifact("SaleFactory");

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

// Table 2, direct: the seller deploys the sale contract.
async function deployDirect() {
  const factory = new ethers.ContractFactory(Sale.abi, Sale.bytecode, seller);
  const sale = await factory.deploy(item.make, item.model, item.year, price, item.serialNumber);
  const receipt = await sale.deploymentTransaction().wait();
  assert.equal(receipt.status, 1, "deploy status");
  assert.ok(receipt.contractAddress, "receipt.contractAddress");
  assert.equal(receipt.contractAddress, await sale.getAddress());
  return { sale, receipt };
}

// Table 2, through the factory: the seller calls createSale; the sale is named by SaleCreated.
// The devnet predeploys SaleFactory (network.json "contracts").
const saleFactory = new ethers.Contract(network.contracts.SaleFactory, SaleFactory.abi, provider);
assert.equal(await saleFactory.saleCount(), 0n);
async function deployViaFactory() {
  const tx = await saleFactory.connect(seller).createSale(item.make, item.model, item.year, price, item.serialNumber);
  const receipt = await tx.wait();
  assert.equal(receipt.status, 1, "createSale status");
  const created = receipt.logs.map((l) => saleFactory.interface.parseLog(l)).find((e) => e && e.name === "SaleCreated");
  assert.ok(created, "SaleCreated event");
  assert.equal(created.args.seller, seller.address);
  assert.equal(created.args.serialNumber, item.serialNumber);
  const sale = new ethers.Contract(created.args.sale, Sale.abi, provider);
  assert.equal(await sale.seller(), seller.address, "the caller is the seller");
  return { sale, receipt };
}

async function scenarioWith(deploy) {
  const { sale, receipt: deployReceipt } = await deploy();
  assert.ok((await provider.getCode(await sale.getAddress())).length > 2, "code deployed");
  const deployBlock = await provider.getBlock(deployReceipt.blockNumber);
  const previous = await provider.getBlock(deployReceipt.blockNumber - 1);
  assert.equal(deployBlock.parentHash, previous.hash, "block N links to block N-1");
  assert.equal(await sale.price(), price);
  assert.equal(await sale.serialNumber(), item.serialNumber);
  assert.equal(await sale.isSold(), false);

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
  const got = await sale.getItem();
  assert.deepEqual(
    [got[0], got[1], Number(got[2]), got[3], got[4], got[5], got[6], got[7]],
    [item.make, item.model, item.year, price, true, buyer.address, buyer.address, item.serialNumber],
  );

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
  return sale;
}

const direct = await scenarioWith(deployDirect);
const viaFactory = await scenarioWith(deployViaFactory);
assert.equal(await saleFactory.saleCount(), 1n);
assert.deepEqual([...(await saleFactory.listSales(0, 10))], [await viaFactory.getAddress()]);
assert.deepEqual([...(await saleFactory.listSales(1, 10))], []);
const sale = direct;

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
