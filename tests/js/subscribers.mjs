// 1,000 newHeads subscribers (20 WebSocket connections x 50 subscriptions) on one node while
// transactions flow through another: every subscriber must get every block, in order, once.
// Usage: node subscribers.mjs NETWORK_JSON [BLOCKS]. Prints {"ok":true,...} or exits non-zero.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { ethers } from "ethers";

const network = JSON.parse(readFileSync(process.argv[2], "utf8"));
const BLOCKS = Number(process.argv[3] ?? 40);
const CONNECTIONS = 20, PER_CONNECTION = 50;
const target = network.nodes[network.nodes.length - 1];

const subs = new Map(); // subscription id -> block numbers received
const sockets = [];
for (let c = 0; c < CONNECTIONS; c++) {
  const ws = new WebSocket(target.ws);
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  const pending = new Map();
  ws.on("message", (raw) => {
    const msg = JSON.parse(String(raw));
    if (msg.id !== undefined) {
      assert.ok(msg.result, `subscribe failed: ${raw}`);
      subs.set(msg.result, []);
      pending.get(msg.id)();
    } else if (msg.method === "eth_subscription") {
      const list = subs.get(msg.params.subscription);
      assert.ok(list, `notification for unknown subscription ${msg.params.subscription}`);
      list.push(Number(BigInt(msg.params.result.number)));
    }
  });
  for (let i = 0; i < PER_CONNECTION; i++) {
    const id = c * PER_CONNECTION + i;
    await new Promise((resolve) => {
      pending.set(id, resolve);
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method: "eth_subscribe", params: ["newHeads"] }));
    });
  }
  sockets.push(ws);
}
assert.equal(subs.size, CONNECTIONS * PER_CONNECTION);

// Transactions through another node: one block each (sequential), BLOCKS blocks.
const provider = new ethers.JsonRpcProvider(network.nodes[0].rpc, undefined, { cacheTimeout: -1, pollingInterval: 20 });
const wallet = new ethers.Wallet(network.accounts[8].privateKey, provider);
const start = await provider.getBlockNumber();
let nonce = await provider.getTransactionCount(wallet.address, "pending");
for (let i = 0; i < BLOCKS; i++) {
  const tx = await wallet.sendTransaction({ to: wallet.address, value: 1n, nonce: nonce++, gasLimit: 21000n });
  await tx.wait();
}
const end = await provider.getBlockNumber();
const deadline = Date.now() + 120000;
while ([...subs.values()].some((l) => l.length === 0 || l[l.length - 1] < end)) {
  assert.ok(Date.now() < deadline, "timed out waiting for every subscriber to reach the head");
  await new Promise((r) => setTimeout(r, 50));
}
for (const [id, list] of subs) {
  assert.ok(list[0] <= start + 1, `${id} started late at ${list[0]}`);
  for (let i = 1; i < list.length; i++) {
    assert.equal(list[i], list[i - 1] + 1, `${id}: block ${list[i]} after ${list[i - 1]} (lost or duplicated)`);
  }
  assert.equal(list[list.length - 1], end);
}
sockets.forEach((ws) => ws.close());
console.log(JSON.stringify({ ok: true, subscribers: subs.size, blocks: end - start }));
process.exit(0);
