// MQTT.js (npm) over WebSocket against a devnet's proxy, as a browser would connect: MQTT 5 and
// 3.1.1, a registry message accepted then recorded, a shadow update answered with its delta.
// Prints {"ok": true, ...} on success. Usage: node tests/js/mqtt-ws.mjs DEVNET_DIR/network.json
import mqtt from 'mqtt';
import { readFileSync } from 'node:fs';

const network = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const url = network.proxy.mqttWs;
if (!url) throw new Error('network.json has no proxy.mqttWs');
const sensor = network.proxy.devices[0];
const WAIT = 120_000;

function waitFor(client, predicate, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT);
    const onMessage = (topic, payload, packet) => {
      const message = { topic, payload: JSON.parse(payload.toString()), packet };
      if (predicate(message)) {
        clearTimeout(timer);
        client.off('message', onMessage);
        resolve(message);
      }
    };
    client.on('message', onMessage);
  });
}

async function session(protocolVersion, seq) {
  const client = await mqtt.connectAsync(url, {
    protocolVersion,
    clientId: `ws-${protocolVersion}`,
    username: sensor.username,
    password: sensor.password,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
  });
  const acks = `devices/${sensor.id}/acks`;
  const shadow = `$fogchain/things/${sensor.id}/shadow`;
  await client.subscribeAsync([acks, `${shadow}/update/#`], { qos: 1 });
  const recorded = waitFor(client, (m) => m.topic === acks && m.payload.seq === seq && m.payload.status === 'recorded', 'recorded');
  await client.publishAsync(`devices/${sensor.id}/messages`,
    JSON.stringify({ Payload: { CS: 500 + seq }, Topic: 'sensors/solar', MessageContent: 'mqtt.js', Seq: seq }), { qos: 1 });
  const ack = (await recorded).payload;
  const delta = waitFor(client, (m) => m.topic === `${shadow}/update/delta`, 'shadow delta');
  await client.publishAsync(`${shadow}/update`, JSON.stringify({ state: { desired: { fan: `on-${seq}` } }, clientToken: `t${seq}` }), { qos: 1 });
  const d = (await delta).payload;
  if (d.state.fan !== `on-${seq}`) throw new Error(`wrong delta ${JSON.stringify(d)}`);
  await client.endAsync();
  return { protocolVersion, txHash: ack.txHash, blockNumber: ack.blockNumber, delta: d.state };
}

const results = [await session(5, 2000), await session(4, 2001)];
console.log(JSON.stringify({ ok: true, url, results }));
process.exit(0);
