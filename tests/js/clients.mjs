// ethers v6, viem and web3.js v4 against a running Fogchain devnet: contract events over
// WebSocket (contract.on / watchContractEvent / contract.events), filter polling over HTTP,
// eth_getLogs with topic filters, revert reasons, receipts and blocks, each parsed by the
// library itself. Writes to DangerIndex (account 0 is its gateway) on one node and listens on
// another. Usage: node clients.mjs NETWORK_JSON. Prints {"ok":true,...} or exits non-zero.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ethers } from "ethers";
import * as viem from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { Web3 } from "web3";

const network = JSON.parse(readFileSync(process.argv[2], "utf8"));
const DangerIndex = JSON.parse(readFileSync(new URL("../../contracts/artifacts/DangerIndex.json", import.meta.url), "utf8"));
const address = network.contracts.DangerIndex;
const key = network.accounts[0].privateKey;
const [writer, listener] = [network.nodes[1], network.nodes[network.nodes.length - 1]];
const H = [5000n, 5000n, 5000n, 5000n, 5000n];
// Region names unique to this run, so reruns against the same devnet count only their own logs.
const run = Date.now().toString(36);
const region = (name) => ethers.id(`${name}-${run}`);
const deadline = (ms) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms));
const until = async (what, cond, ms = 60000) => {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const results = {};

// ---------- ethers v6 ----------
{
  const http = new ethers.JsonRpcProvider(writer.rpc, undefined, { cacheTimeout: -1, pollingInterval: 100 });
  const ws = new ethers.WebSocketProvider(listener.ws);
  const wallet = new ethers.Wallet(key, http);
  const writerContract = new ethers.Contract(address, DangerIndex.abi, wallet);
  const wsContract = new ethers.Contract(address, DangerIndex.abi, ws);
  const pollContract = new ethers.Contract(address, DangerIndex.abi, new ethers.JsonRpcProvider(listener.rpc, undefined, { cacheTimeout: -1, pollingInterval: 100 }));
  const wsEvents = [], polled = [], blocks = [], pendingSeen = [];
  await wsContract.on("DangerIndexUpdated", (r, di, eh, risk, reporter, ev) => wsEvents.push({ r, di, risk, reporter, tx: ev.log.transactionHash }));
  await pollContract.on("DangerIndexUpdated", (r, di, eh, risk, reporter, ev) => polled.push(ev.log.transactionHash));
  await ws.on("block", (n) => blocks.push(n));
  // Pending transactions are those entering a node's own pool: listen where they are sent.
  const writerWs = new ethers.WebSocketProvider(writer.ws);
  await writerWs.on("pending", (hash) => pendingSeen.push(hash));
  // ethers installs its HTTP filter lazily, on the first new block it polls: make one, then
  // give it a few polling intervals.
  const other = new ethers.Wallet(network.accounts[9].privateKey, http);
  await (await other.sendTransaction({ to: other.address, value: 1n })).wait();
  await new Promise((r) => setTimeout(r, 1000));
  const sent = [];
  for (const [i, name] of ["ethers-a", "ethers-b", "ethers-a"].entries()) {
    const tx = await writerContract.submit(region(name), 100n + BigInt(i), H, 2500n);
    sent.push(tx.hash);
    const receipt = await tx.wait();
    assert.equal(receipt.status, 1);
    const parsed = writerContract.interface.parseLog(receipt.logs[0]);
    assert.equal(parsed.name, "DangerIndexUpdated");
    assert.equal(parsed.args.region, region(name));
    const block = await http.getBlock(receipt.blockNumber, true);
    assert.equal(block.hash, receipt.blockHash);
    assert.ok(block.prefetchedTransactions.some((t) => t.hash === tx.hash));
  }
  await until("ethers WebSocket events", () => wsEvents.length >= 3);
  // ethers polls its filter once per *new* block and re-arms after each poll, so a block that
  // arrives during a poll is skipped; on a chain that mints only when there are transactions the
  // last events then wait for the next block. Make blocks until the poller has caught up.
  const pollDeadline = Date.now() + 60000;
  while (polled.length < 3) {
    if (Date.now() > pollDeadline) throw new Error(`timed out waiting for ethers polled events (${polled.length}/3)`);
    await (await other.sendTransaction({ to: other.address, value: 1n })).wait();
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(wsEvents.map((e) => e.tx), sent, "WebSocket events in order, once");
  await until("pending transactions over WebSocket", () => sent.every((h) => pendingSeen.includes(h)));
  assert.deepEqual(polled, sent, "filter-polled events in order, once");
  assert.equal(wsEvents[0].reporter, wallet.address);
  const ethersA = await writerContract.queryFilter(writerContract.filters.DangerIndexUpdated(region("ethers-a")), 0);
  assert.equal(ethersA.length, 2, "getLogs with an indexed-topic filter");
  await until("blocks over WebSocket", () => blocks.length > 0);
  // Revert reason, decoded by ethers.
  await assert.rejects(writerContract.compute(0n, H, 0n), (e) => e.reason === "solar radiation must be positive");
  await assert.rejects(writerContract.submit.estimateGas(region("x"), 0n, H, 0n), (e) => e.reason === "solar radiation must be positive");
  // EIP-1898 block parameter objects.
  const last = await http.getBlock("latest");
  const byHash = await http.send("eth_getBalance", [wallet.address, { blockHash: last.hash }]);
  const byNumber = await http.send("eth_getBalance", [wallet.address, { blockNumber: ethers.toQuantity(last.number) }]);
  assert.equal(byHash, byNumber);
  results.ethers = { events: wsEvents.length, polled: polled.length, blocks: blocks.length, pending: pendingSeen.length };
  await wsContract.removeAllListeners();
  await pollContract.removeAllListeners();
  await ws.destroy();
  await writerWs.destroy();
}

// ---------- viem ----------
{
  const chain = viem.defineChain({
    id: network.chainId, name: "fogchain-devnet", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [writer.rpc], webSocket: [listener.ws] } },
  });
  const account = privateKeyToAccount(key);
  const publicHttp = viem.createPublicClient({ chain, transport: viem.http(writer.rpc), pollingInterval: 100, cacheTime: 0 });
  const publicWs = viem.createPublicClient({ chain, transport: viem.webSocket(listener.ws) });
  const walletClient = viem.createWalletClient({ chain, account, transport: viem.http(writer.rpc) });
  const seen = [];
  const unwatch = publicWs.watchContractEvent({
    address, abi: DangerIndex.abi, eventName: "DangerIndexUpdated",
    onLogs: (logs) => logs.forEach((l) => seen.push(l.transactionHash)),
  });
  await new Promise((r) => setTimeout(r, 300));
  const sent = [];
  for (const name of ["viem-a", "viem-b"]) {
    const hash = await walletClient.writeContract({ address, abi: DangerIndex.abi, functionName: "submit", args: [region(name), 120n, H, 2500n] });
    sent.push(hash);
    const receipt = await publicHttp.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    assert.equal(receipt.status, "success");
    const [event] = viem.parseEventLogs({ abi: DangerIndex.abi, logs: receipt.logs });
    assert.equal(event.eventName, "DangerIndexUpdated");
    assert.equal(event.args.region, region(name));
    const block = await publicHttp.getBlock({ blockHash: receipt.blockHash, includeTransactions: true });
    assert.equal(block.number, receipt.blockNumber);
  }
  await until("viem WebSocket events", () => seen.length >= 2);
  assert.deepEqual(seen, sent);
  unwatch();
  const logs = await publicHttp.getContractEvents({ address, abi: DangerIndex.abi, eventName: "DangerIndexUpdated", args: { region: region("viem-b") }, fromBlock: 0n });
  assert.equal(logs.length, 1);
  const err = await publicHttp.simulateContract({ address, abi: DangerIndex.abi, functionName: "compute", args: [0n, H, 0n] }).catch((e) => e);
  assert.ok(err instanceof viem.BaseError, String(err));
  const revert = err.walk((e) => e instanceof viem.ContractFunctionRevertedError);
  assert.equal(revert?.reason, "solar radiation must be positive", String(err));
  results.viem = { events: seen.length };
  await publicWs.transport.getRpcClient().then((c) => c.close());
}

// ---------- web3.js v4 ----------
{
  const web3 = new Web3(writer.rpc);
  const web3ws = new Web3(new Web3.providers.WebsocketProvider(listener.ws));
  const account = web3.eth.accounts.privateKeyToAccount(key);
  const contract = new web3.eth.Contract(DangerIndex.abi, address);
  const wsContract = new web3ws.eth.Contract(DangerIndex.abi, address);
  const seen = [];
  const subscription = wsContract.events.DangerIndexUpdated();
  subscription.on("data", (ev) => seen.push(ev.transactionHash));
  await new Promise((resolve, reject) => { subscription.on("connected", resolve); subscription.on("error", reject); setTimeout(resolve, 2000); });
  const sent = [];
  for (const name of ["web3-a", "web3-b"]) {
    const data = contract.methods.submit(region(name), 130n, H, 2500n).encodeABI();
    const nonce = await web3.eth.getTransactionCount(account.address, "pending");
    const gasPrice = await web3.eth.getGasPrice();
    const signed = await account.signTransaction({ to: address, data, gas: 300000n, gasPrice, nonce, chainId: BigInt(network.chainId) });
    const receipt = await web3.eth.sendSignedTransaction(signed.rawTransaction);
    assert.equal(receipt.status, 1n);
    sent.push(receipt.transactionHash);
    const decoded = web3.eth.abi.decodeLog(DangerIndex.abi.find((x) => x.name === "DangerIndexUpdated").inputs, receipt.logs[0].data, receipt.logs[0].topics.slice(1));
    assert.equal(decoded.region, region(name));
    const block = await web3.eth.getBlock(receipt.blockNumber, true);
    assert.equal(block.hash, receipt.blockHash);
  }
  await until("web3.js WebSocket events", () => seen.length >= 2);
  assert.deepEqual(seen, sent);
  const past = await web3.eth.getPastLogs({ address, fromBlock: 0, topics: [null, region("web3-a")] });
  assert.equal(past.length, 1);
  const err = await contract.methods.compute(0n, H, 0n).call().catch((e) => e);
  const reason = err?.cause?.message ?? err?.innerError?.message ?? err?.message;
  assert.ok(String(reason).includes("solar radiation must be positive"), String(reason));
  results.web3 = { events: seen.length };
  await subscription.unsubscribe();
  web3ws.provider.disconnect();
}

console.log(JSON.stringify({ ok: true, ...results }));
process.exit(0);
