// The browser apps in Debian's Chromium (playwright-core) on a devnet, entirely through the
// pages: a seller lists an item (with an injected EIP-6963 wallet), a buyer buys it (a devnet test
// account) and gets the barcode, the locker releases it
// after the buyer signs; the dashboard shows a danger-index update after an MQTT action message
// and new blocks; a viewer cannot change a shadow, an operator can. Screenshots of each page go
// to SHOTS_DIR (docs/apps). Prints {"ok": true, ...timings} on success.
// usage: node browser-apps.mjs NETWORK_JSON SHOTS_DIR
import { readFileSync, mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import mqtt from 'mqtt';
import { createWalletClient, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const [networkPath, shots] = process.argv.slice(2);
const net = JSON.parse(readFileSync(networkPath, 'utf8'));
const proxy = net.proxy;
const app = proxy.app;
const user = (name) => proxy.users.find((u) => u.name === name);
mkdirSync(shots, { recursive: true });
const timings = {};

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const failures = [];
browser.on('disconnected', () => {});

async function page(viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const p = await context.newPage();
  p.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  p.on('console', (m) => m.type() === 'error' && !/401|403|404/.test(m.text()) && failures.push(`console: ${m.text()}`));
  p.on('request', (r) => {
    const u = new URL(r.url());
    if (!['127.0.0.1', 'localhost'].includes(u.hostname) && !['data:', 'blob:'].includes(u.protocol)) failures.push(`left the machine: ${r.url()}`);
  });
  return p;
}

async function login(p, name) {
  await p.getByLabel('User name').fill(name);
  await p.getByLabel('Password', { exact: true }).fill(user(name).password);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.locator('#app').waitFor({ state: 'visible' });
}

/**
 * An injected wallet as an extension would be: announced by EIP-6963 into the page, answering
 * EIP-1193 requests outside the page (here in Node: viem signs with test account `index` and
 * sends to a node directly, as a wallet uses its own RPC endpoint).
 */
async function injectWallet(p, index) {
  const account = privateKeyToAccount(net.accounts[index].privateKey);
  const chain = { id: net.chainId, name: 'fogchain', nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [net.nodes[0].rpc] } } };
  const wallet = createWalletClient({ account, chain, transport: http(net.nodes[0].rpc) });
  await p.exposeFunction('mockWalletRequest', async (method, params) => {
    switch (method) {
      case 'eth_requestAccounts':
      case 'eth_accounts':
        return [account.address];
      case 'eth_chainId':
        return `0x${net.chainId.toString(16)}`;
      case 'eth_sendTransaction': {
        const tx = params[0];
        return wallet.sendTransaction({ to: tx.to, data: tx.data, value: BigInt(tx.value ?? 0) });
      }
      case 'personal_sign':
        return account.signMessage({ message: { raw: params[0] } });
      default:
        throw new Error(`mock wallet: ${method} not supported`);
    }
  });
  await p.addInitScript(() => {
    const provider = { request: ({ method, params }) => window.mockWalletRequest(method, params ?? []) };
    const info = { uuid: '6f1e2c4a-0000-4000-8000-fogchainmock', name: 'Mock Wallet', icon: 'data:image/svg+xml,<svg xmlns="http://www.w3.org/2000/svg"/>', rdns: 'dev.fogchain.mock' };
    const announce = () => window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail: Object.freeze({ info, provider }) }));
    window.addEventListener('eip6963:requestProvider', announce);
    announce();
  });
  return account.address;
}

async function useWallet(p, index) {
  await p.getByLabel('Wallet', { exact: true }).selectOption(typeof index === 'number' ? `test:${index}` : { label: index });
  await p.getByRole('button', { name: 'Use this wallet' }).click();
  await p.locator('#wallet-status', { hasText: 'Using' }).waitFor();
}

/** Every form control has a label (a11y smoke check). */
async function labelled(p, what) {
  const missing = await p.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => el.offsetParent !== null || el.type === 'file')
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
      .map((el) => el.id || el.outerHTML.slice(0, 60)),
  );
  if (missing.length) failures.push(`${what}: controls without a label: ${missing.join(', ')}`);
}

try {
  // 1. seller lists an item, with an injected (EIP-6963) wallet
  const seller = await page();
  const sellerAddress = await injectWallet(seller, 3);
  await seller.goto(`${app}shop.html#sell`);
  await login(seller, 'shop');
  await useWallet(seller, 'Mock Wallet');
  await seller.locator('#wallet-status', { hasText: sellerAddress }).waitFor();
  await seller.getByLabel('Make').fill('Bosch');
  await seller.getByLabel('Model').fill('GSR 18V');
  await seller.getByLabel('Year').fill('2024');
  await seller.getByLabel('Price (ETH)').fill('0.25');
  await seller.getByLabel('Serial number').fill(`SN-${Date.now()}`);
  await seller.getByRole('button', { name: 'List item' }).click();
  const listed = await seller.locator('#sell-status', { hasText: /Listed|refused|not|cannot/ }).textContent({ timeout: 60_000 });
  const sale = listed.match(/0x[0-9a-fA-F]{40}/)?.[0];
  if (!sale) throw new Error(`listing failed: ${listed}`);
  await seller.locator('#my-sales tbody tr', { hasText: sale }).waitFor();
  await labelled(seller, 'shop (sell)');
  await seller.screenshot({ path: `${shots}/shop-sell.png`, fullPage: true });

  // 2. buyer buys at the exact price and gets the barcode
  const buyer = await page();
  await buyer.goto(`${app}shop.html#buy`);
  await login(buyer, 'shop');
  await useWallet(buyer, 2);
  const row = buyer.locator('#for-sale tbody tr', { hasText: 'GSR 18V' }).filter({ has: buyer.getByRole('button', { name: /Buy for 0.25 ETH/ }) }).first();
  await row.getByRole('button', { name: /Buy for 0.25 ETH/ }).click();
  await buyer.locator('#buy-status', { hasText: /Bought|refused|not|cannot|enough/ }).waitFor({ timeout: 60_000 });
  const bought = await buyer.locator('#buy-status').textContent();
  if (!bought.startsWith('Bought')) throw new Error(`buying failed: ${bought}`);
  const barcode = await buyer.locator('#barcode-uri').inputValue();
  if (!barcode.includes(sale)) throw new Error(`barcode ${barcode} does not name ${sale}`);
  await buyer.locator('#barcode-img[src^="data:image/png"]').waitFor();
  await buyer.screenshot({ path: `${shots}/shop-buy.png`, fullPage: true });

  // 3. the locker: stock, scan, the buyer signs, the door opens (shadow desired)
  await buyer.goto(`${app}shop.html#locker`);
  await buyer.getByLabel('Locker', { exact: true }).fill(proxy.locker.id);
  await buyer.getByLabel('Locker password').fill(proxy.locker.password);
  await buyer.getByRole('button', { name: 'Connect locker' }).click();
  await buyer.locator('#locker-ops').waitFor({ state: 'visible' });
  await buyer.getByLabel(/Put the item of sale/).fill(sale);
  await buyer.getByRole('button', { name: 'Stock item' }).click();
  await buyer.locator('#stock-status', { hasText: /in this locker|refused|not/ }).waitFor({ timeout: 30_000 });
  const stocked = await buyer.locator('#stock-status').textContent();
  if (!stocked.includes('in this locker')) throw new Error(`stocking failed: ${stocked}`);
  await buyer.getByLabel('Barcode (paste its text)').fill(barcode);
  await buyer.getByRole('button', { name: 'Scan' }).click();
  await buyer.getByRole('button', { name: 'Sign and open' }).click();
  await buyer.locator('#locker-status', { hasText: /Released|refused|not|expired/ }).waitFor({ timeout: 30_000 });
  const released = await buyer.locator('#locker-status').textContent();
  if (!released.startsWith('Released')) throw new Error(`release failed: ${released}`);
  await buyer.locator('#shadow-desired', { hasText: '"door":"open"' }).waitFor({ timeout: 5_000 });
  await labelled(buyer, 'shop (locker)');
  await buyer.screenshot({ path: `${shots}/shop-locker.png`, fullPage: true });

  // 4. dashboard: a new block within 1 s, a danger-index update within 2 s of an MQTT action
  const dash = await page();
  await dash.goto(`${app}dashboard.html`);
  await login(dash, 'operator');
  await dash.locator('#cluster tbody tr').first().waitFor();
  await dash.locator('#blocks-live', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  const sensor = proxy.devices.find((d) => d.kind === 'sensor');
  const danger = net.contracts.DangerIndex;
  const client = await mqtt.connectAsync(proxy.mqtt, { username: sensor.username, password: sensor.password, clientId: `${sensor.id}-browser-test` });
  const seq = Date.now() % 1_000_000_000;
  const chainHead = async () => {
    const r = await fetch(net.nodes[0].rpc, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }) });
    return Number.parseInt((await r.json()).result, 16);
  };
  const before = await chainHead();
  const sent = Date.now();
  await client.publishAsync(
    `devices/${sensor.id}/messages`,
    JSON.stringify({ Topic: 'fire/danger', Seq: seq, Payload: { Timestamp: sent },
      MessageContent: { Address: danger, Values: { CS: 2500, P: 0, H: [1000, 1200, 1500, 1700, 2000] }, Publish_Topic: 'devices/actuator-1/commands' } }),
    { qos: 1 },
  );
  // the block holding it, as the node sees it, then on the page
  let block = before;
  while ((block = await chainHead()) <= before) await new Promise((r) => setTimeout(r, 20));
  const atNode = Date.now();
  await dash.locator('#blocks tbody tr td:first-child', { hasText: new RegExp(`^${block}$`) }).first().waitFor({ timeout: 5_000 });
  timings.blockOnPageMs = Date.now() - atNode;
  await dash.locator('#regions tbody tr', { hasText: sensor.id }).filter({ hasText: /extreme|high|low/ }).waitFor({ timeout: 10_000 });
  timings.dangerIndexOnPageMs = Date.now() - sent;
  await dash.locator('#actuators tbody tr', { hasText: 'actuator-1' }).filter({ hasText: /extreme|high|low/ }).waitFor();
  await client.endAsync();
  if (timings.blockOnPageMs > 1000) failures.push(`new block shown after ${timings.blockOnPageMs} ms (> 1 s)`);
  if (timings.dangerIndexOnPageMs > 2000) failures.push(`danger index shown after ${timings.dangerIndexOnPageMs} ms (> 2 s)`);
  await dash.locator('#releases tbody tr', { hasText: sale }).waitFor({ timeout: 10_000 });
  // operator sets a desired state
  await dash.getByLabel('Device', { exact: true }).selectOption(proxy.locker.id);
  await dash.getByLabel('Desired state (JSON)').fill('{"door": "closed"}');
  await dash.getByRole('button', { name: 'Set desired state' }).click();
  await dash.locator('#desired-status', { hasText: /Desired state set|not|needs/ }).waitFor();
  const set = await dash.locator('#desired-status').textContent();
  if (!set.startsWith('Desired state set')) failures.push(`operator could not set a shadow: ${set}`);
  await dash.locator('#devices tbody tr', { hasText: proxy.locker.id }).filter({ hasText: '"door":"closed"' }).waitFor({ timeout: 10_000 });
  await labelled(dash, 'dashboard');
  await dash.screenshot({ path: `${shots}/dashboard.png`, fullPage: true });

  // 5. a viewer sees everything but cannot change a shadow
  const viewer = await page();
  await viewer.goto(`${app}dashboard.html`);
  await login(viewer, 'viewer');
  await viewer.getByLabel('Device', { exact: true }).selectOption(proxy.locker.id);
  await viewer.getByLabel('Desired state (JSON)').fill('{"door": "open"}');
  await viewer.getByRole('button', { name: 'Set desired state' }).click();
  const refused = await viewer.locator('#desired-status', { hasText: /admin role|Desired state set/ }).textContent();
  if (!/admin role/.test(refused)) failures.push(`a viewer changed a shadow: ${refused}`);
  const shadow = await (await fetch(`${proxy.http}/things/${proxy.locker.id}/shadow`, { headers: { authorization: `Bearer ${proxy.token}` } })).json();
  if (shadow.state?.desired?.door !== 'closed') failures.push(`the viewer's change landed: ${JSON.stringify(shadow)}`);

  // 6. phone width: nothing wider than the screen
  const phone = await page({ width: 390, height: 844 });
  await phone.goto(`${app}shop.html#buy`);
  await login(phone, 'shop');
  for (const [name, url] of [['shop-phone', `${app}shop.html#buy`], ['dashboard-phone', `${app}dashboard.html`]]) {
    await phone.goto(url);
    if (url.includes('dashboard')) {
      await login(phone, 'viewer');
      await phone.locator('#cluster tbody tr').first().waitFor();
    }
    const overflow = await phone.evaluate(() => document.body.scrollWidth - window.innerWidth);
    if (overflow > 1) failures.push(`${name}: ${overflow} px wider than a 390 px screen`);
    await phone.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  }
  const index = await page();
  await index.goto(app);
  await index.screenshot({ path: `${shots}/index.png` });
} catch (e) {
  failures.push(e.stack ?? String(e));
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(JSON.stringify({ ok: true, ...timings }));
