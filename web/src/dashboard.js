// The operations dashboard (the IoT framework paper's portal, the forest-fire paper's view):
// cluster state, live blocks and transactions (subscriptions through the gateway), devices with
// their readings and shadows (admins set desired state), danger index per region, and the
// warehouse releases recorded on chain.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { hexToString, keccak256, stringToHex, toEventSelector } from 'viem';
import { abi as dangerAbi } from '../../contracts/artifacts/DangerIndex.json';
import { abi as registryAbi } from '../../contracts/artifacts/SensorRegistry.json';
import { Api, decodeLog, esc, num, show, short, signIn } from './api.js';
import { friendly } from './errors.js';

const $ = (id) => document.getElementById(id);
const api = new Api('fogchain-dashboard');
const RISK = ['low', 'high', 'extreme'];
const UPDATED = toEventSelector('DangerIndexUpdated(bytes32,uint256,uint256,uint8,address)');
const READING = toEventSelector('Reading(bytes32,bytes32,uint64,string,bytes)');
const RELEASE_TOPIC = keccak256(stringToHex('warehouse/release'));

let network;
let client;
let things = [];
const regionName = new Map(); // keccak256(device id) -> device id
const latestByRegion = new Map(); // region -> {di, risk, block}
const series = new Map(); // region -> [[block, di], ...]
let chart = null;

async function start(connected) {
  ({ network, client } = connected);
  await loadThings();
  await Promise.all([cluster(), history()]);
  setInterval(cluster, 2000);
  setInterval(loadThings, 3000);
  api.subscribe(['newHeads'], onHead, (state) => {
    $('blocks-live').textContent = state;
  });
  api.subscribe(['logs', { address: network.dangerIndex, topics: [UPDATED] }], onDanger);
  api.subscribe(['logs', { address: network.sensorRegistry, topics: [READING, null, RELEASE_TOPIC] }], onRelease);
}

async function cluster() {
  try {
    const { nodes } = await api.get('/cluster');
    $('cluster').tBodies[0].innerHTML = nodes
      .map((n) =>
        n.error
          ? `<tr><td>${esc(n.url)}</td><td>${n.ready ? 'yes' : '<strong class="risk-2">no</strong>'}</td><td colspan="7" class="muted">${esc(n.error)}</td></tr>`
          : `<tr><td>${esc(n.url)}</td><td>${n.ready ? 'yes' : '<strong class="risk-2">no</strong>'}</td><td>${n.raftId}</td><td>${esc(n.role)}</td><td>${n.leader}</td><td>${n.term}</td><td>${n.commitIndex}</td><td>${n.head}</td><td>${num(n.peers)}</td></tr>`,
      )
      .join('');
  } catch (e) {
    $('cluster').tBodies[0].innerHTML = `<tr><td colspan="9" class="risk-2">${esc(friendly(e))}</td></tr>`;
  }
}

// ---- blocks and transactions

const blocks = [];
const txs = [];

async function onHead(head) {
  const block = await api.rpc('eth_getBlockByHash', [head.hash, true]).catch(() => null);
  if (!block) return;
  blocks.unshift(block);
  blocks.length = Math.min(blocks.length, 10);
  for (const tx of block.transactions) txs.unshift({ ...tx, block: block.number });
  txs.length = Math.min(txs.length, 10);
  $('blocks').tBodies[0].innerHTML = blocks
    .map((b) => `<tr><td>${num(b.number)}</td><td><code title="${b.hash}">${short(b.hash)}</code></td><td>${b.transactions.length}</td><td>${new Date(num(b.timestamp) * 1000).toLocaleTimeString()}</td></tr>`)
    .join('');
  $('txs').tBodies[0].innerHTML = txs
    .map((t) => `<tr><td><code title="${t.hash}">${short(t.hash)}</code></td><td>${num(t.block)}</td><td><code>${short(t.from)}</code></td><td><code>${short(t.to ?? 'create')}</code></td></tr>`)
    .join('');
}

// ---- devices and shadows

async function loadThings() {
  try {
    things = (await api.get('/things')).things;
  } catch (e) {
    $('devices').tBodies[0].innerHTML = `<tr><td colspan="5" class="risk-2">${esc(friendly(e))}</td></tr>`;
    return;
  }
  for (const t of things) regionName.set(keccak256(stringToHex(t.id)), t.id);
  const rows = await Promise.all(
    things.map(async (t) => {
      const [reading, shadow] = await Promise.all([
        client.readContract({ address: network.sensorRegistry, abi: registryAbi, functionName: 'latest', args: [keccak256(stringToHex(t.id))] }).catch(() => null),
        api.get(`/things/${encodeURIComponent(t.id)}/shadow`).catch(() => null),
      ]);
      const latest = reading && reading[3] > 0n ? `${esc(reading[1])}: <code>${esc(hexToString(reading[2]).slice(0, 80))}</code> (block ${reading[3]})` : '<span class="muted">none</span>';
      const s = shadow?.state ?? {};
      const doc = shadow
        ? `<code>${esc(JSON.stringify(s.desired ?? {}))}</code> / <code>${esc(JSON.stringify(s.reported ?? {}))}</code> / <code>${esc(JSON.stringify(s.delta ?? {}))}</code>`
        : '<span class="muted">no shadow</span>';
      return `<tr><td>${esc(t.id)}</td><td>${esc(t.role)}</td><td class="${t.online ? 'online' : 'offline'}">${t.online ? 'online' : 'offline'}</td><td>${latest}</td><td>${doc}</td></tr>`;
    }),
  );
  $('devices').tBodies[0].innerHTML = rows.join('') || '<tr><td colspan="5" class="muted">No devices.</td></tr>';
  const select = $('desired-thing');
  if (select.options.length !== things.length) {
    select.innerHTML = things.map((t) => `<option>${esc(t.id)}</option>`).join('');
  }
  renderActuators();
}

$('desired-form').onsubmit = async (e) => {
  e.preventDefault();
  try {
    const desired = JSON.parse($('desired-json').value);
    const doc = await api.post(`/things/${encodeURIComponent($('desired-thing').value)}/shadow`, { state: { desired } });
    show($('desired-status'), `Desired state set (version ${doc.version}); the device gets the delta.`);
    loadThings();
  } catch (err) {
    show($('desired-status'), err instanceof SyntaxError ? 'The desired state must be JSON, e.g. {"door": "open"}.' : friendly(err), 'error');
  }
};

// ---- forest-fire danger

function onDanger(log) {
  const ev = decodeLog(dangerAbi, log);
  if (!ev) return;
  const region = ev.args.region;
  const block = num(log.blockNumber);
  const di = Number(ev.args.diX100) / 100;
  latestByRegion.set(region, { di, risk: Number(ev.args.risk), block });
  if (!series.has(region)) series.set(region, []);
  series.get(region).push([block, di]);
  renderDanger();
}

function renderDanger() {
  const name = (r) => regionName.get(r) ?? short(r);
  $('regions').tBodies[0].innerHTML =
    [...latestByRegion]
      .map(([r, v]) => `<tr><td>${esc(name(r))}</td><td>${v.di.toFixed(2)}</td><td><span class="badge risk-${v.risk}">${RISK[v.risk] ?? v.risk}</span></td><td>${v.block}</td></tr>`)
      .join('') || '<tr><td colspan="4" class="muted">No readings yet.</td></tr>';
  renderActuators();
  drawChart();
}

function renderActuators() {
  const actuators = [...new Set(things.flatMap((t) => t.commands ?? []))];
  $('actuators').tBodies[0].innerHTML =
    actuators
      .map((a) => {
        const deciders = things.filter((t) => (t.commands ?? []).includes(a)).map((t) => keccak256(stringToHex(t.id)));
        const last = deciders.map((r) => [r, latestByRegion.get(r)]).filter(([, v]) => v).sort((x, y) => y[1].block - x[1].block)[0];
        return last
          ? `<tr><td>${esc(a)}</td><td><span class="badge risk-${last[1].risk}">${RISK[last[1].risk]}</span> (DI ${last[1].di.toFixed(2)})</td><td>${esc(regionName.get(last[0]) ?? short(last[0]))}, block ${last[1].block}</td></tr>`
          : `<tr><td>${esc(a)}</td><td class="muted">no decision yet</td><td></td></tr>`;
      })
      .join('') || '<tr><td colspan="3" class="muted">No actuators.</td></tr>';
}

function drawChart() {
  const regions = [...series.keys()];
  if (!regions.length) return;
  const xs = [...new Set(regions.flatMap((r) => series.get(r).map(([b]) => b)))].sort((a, b) => a - b);
  const data = [xs, ...regions.map((r) => { const m = new Map(series.get(r)); return xs.map((x) => m.get(x) ?? null); })];
  const colours = ['#0b57d0', '#a4161a', '#0a6b2f', '#8a4b00', '#6a1b9a'];
  const width = Math.min($('di-chart').clientWidth || 600, 1100);
  if (chart && chart.series.length === regions.length + 1) {
    chart.setData(data);
    return;
  }
  chart?.destroy();
  chart = new uPlot(
    {
      width,
      height: 240,
      scales: { x: { time: false } },
      axes: [{ label: 'block' }, { label: 'danger index' }],
      series: [{ label: 'block' }, ...regions.map((r, i) => ({ label: regionName.get(r) ?? short(r), stroke: colours[i % colours.length], width: 2, spanGaps: true }))],
    },
    data,
    $('di-chart'),
  );
}

// ---- warehouse releases

function onRelease(log) {
  const ev = decodeLog(registryAbi, log);
  if (!ev) return;
  let p = {};
  try {
    p = JSON.parse(hexToString(ev.args.payload));
  } catch {
    /* not JSON */
  }
  const row = `<tr><td>${num(log.blockNumber)}</td><td>${esc(p.locker)}</td><td><code>${esc(p.sale)}</code></td><td><code>${esc(p.buyer)}</code></td></tr>`;
  const body = $('releases').tBodies[0];
  if (body.querySelector('.muted')) body.innerHTML = '';
  body.insertAdjacentHTML('afterbegin', row);
}

/** Past danger updates and releases (the last 10,000 blocks). */
async function history() {
  const head = num(await api.rpc('eth_blockNumber'));
  const from = `0x${Math.max(0, head - 10_000).toString(16)}`;
  const [danger, releases] = await Promise.all([
    api.rpc('eth_getLogs', [{ fromBlock: from, toBlock: 'latest', address: network.dangerIndex, topics: [UPDATED] }]),
    api.rpc('eth_getLogs', [{ fromBlock: from, toBlock: 'latest', address: network.sensorRegistry, topics: [READING, null, RELEASE_TOPIC] }]),
  ]).catch(() => [[], []]);
  danger.forEach(onDanger);
  $('releases').tBodies[0].innerHTML = '<tr><td colspan="4" class="muted">No releases yet.</td></tr>';
  releases.forEach(onRelease);
  renderDanger();
}

signIn(api, start);
