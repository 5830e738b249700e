// JSON-RPC over WebSocket through the proxy's gateway: ethers (npm) subscribes to new blocks with
// the admin token in the query string (as a browser app does); a device authenticated with Basic
// auth may call its methods but not eth_subscribe (-32004) and hold at most 16 sockets (429);
// no credentials get HTTP 401.
// Prints {"ok": true, ...} on success. Usage: node tests/js/gateway-ws.mjs DEVNET_DIR/network.json
import { WebSocketProvider, Wallet } from 'ethers';
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';

const network = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const base = network.proxy.http.replace(/^http/, 'ws');
const WAIT = 60_000;
const timeout = (what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), WAIT));

// 1. ethers over the gateway: a transfer sent through it, and the block subscription delivers
// its block (blocks are made when there are transactions).
const provider = new WebSocketProvider(`${base}/?token=${network.proxy.token}`);
const chainId = (await provider.getNetwork()).chainId;
const newBlock = new Promise((resolve) => provider.once('block', resolve));
const wallet = new Wallet(network.accounts[5].privateKey, provider);
const sent = await wallet.sendTransaction({ to: network.accounts[6].address, value: 1n });
const block = await Promise.race([newBlock, timeout('a new block')]);
const receipt = await Promise.race([sent.wait(), timeout('the receipt')]);
// `once` unsubscribes by itself; let that eth_unsubscribe finish before the socket goes (ethers
// rejects requests still pending at destroy(): "provider destroyed; cancelled request").
await provider.removeAllListeners();
await new Promise((r) => setTimeout(r, 500));
await provider.destroy();

// 2. A device over the gateway: allowed methods pass, eth_subscribe is refused.
const sensor = network.proxy.devices[0];
const auth = 'Basic ' + Buffer.from(`${sensor.username}:${sensor.password}`).toString('base64');
const socket = new WebSocket(`${base}/`, { headers: { authorization: auth } });
await Promise.race([new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); }), timeout('device socket')]);
const answers = new Map();
socket.on('message', (data) => { const m = JSON.parse(data.toString()); answers.set(m.id, m); });
const ask = async (id, method, params) => {
  socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
  const deadline = Date.now() + WAIT;
  while (!answers.has(id)) {
    if (Date.now() > deadline) throw new Error(`no answer to ${method}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return answers.get(id);
};
const number = await ask(1, 'eth_blockNumber', []);
if (!number.result) throw new Error(`eth_blockNumber: ${JSON.stringify(number)}`);
const refused = await ask(2, 'eth_subscribe', ['newHeads']);
if (refused.error?.code !== -32004) throw new Error(`eth_subscribe by a device: ${JSON.stringify(refused)}`);
socket.close();

// 3. At most 16 WebSockets per caller (ws-per-caller): the 17th upgrade gets 429.
const open = (i) => new Promise((resolve) => {
  const ws = new WebSocket(`${base}/`, { headers: { authorization: auth } });
  ws.on('open', () => resolve({ ws, status: 101 }));
  ws.on('unexpected-response', (_req, res) => resolve({ ws, status: res.statusCode }));
  ws.on('error', () => {});
});
const sockets = [];
for (let i = 0; i < 17; i++) sockets.push(await Promise.race([open(i), timeout(`socket ${i}`)]));
const statuses = sockets.map((s) => s.status);
if (statuses.filter((s) => s === 101).length !== 16 || statuses[16] !== 429) {
  throw new Error(`per-caller cap: ${statuses.join(',')}`);
}
for (const s of sockets) s.ws.terminate();

// 4. No credentials: the upgrade is refused with 401.
const status = await Promise.race([new Promise((resolve) => {
  const anon = new WebSocket(`${base}/`);
  anon.on('unexpected-response', (_req, res) => resolve(res.statusCode));
  anon.on('open', () => resolve(101));
  anon.on('error', () => {});
}), timeout('anonymous upgrade')]);
if (status !== 401) throw new Error(`anonymous upgrade answered ${status}`);

console.log(JSON.stringify({ ok: true, chainId: chainId.toString(), block, mined: receipt.blockNumber, deviceRefusal: refused.error.message, anonymous: status }));
process.exit(0);
