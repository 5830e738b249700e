// Account permissioning through ethers v6, as a consortium's admins and users meet it: a
// permitted wallet transacts; an unknown wallet is refused with "account not permitted to
// transact" by every node; admin 0 proposes to let it transact (not deploy), which takes admin 1's
// approval (the devnet runs with --admin-threshold 2); then it transacts, and its deployment is
// refused with "account not permitted to deploy contracts".
// Usage: node permissioning.mjs NETWORK_JSON NEWCOMER_KEY. Prints {"ok":true,...} or exits non-zero.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ethers } from "ethers";

const network = JSON.parse(readFileSync(process.argv[2], "utf8"));
const newcomerKey = process.argv[3];
const Permissions = JSON.parse(
  readFileSync(new URL("../../contracts/artifacts/AccountPermissions.json", import.meta.url), "utf8"),
);
const PERMISSIONS = "0xF0C0000000000000000000000000000000000001";
const TRANSACT = 1;
const providers = network.nodes.map((n) => new ethers.JsonRpcProvider(n.rpc, undefined, { cacheTimeout: -1, pollingInterval: 100 }));
const provider = providers[0];
const wallet = (i) => new ethers.Wallet(network.accounts[i].privateKey, provider);
const [admin0, admin1, user] = [wallet(0), wallet(1), wallet(4)];
const newcomer = new ethers.Wallet(newcomerKey, provider);
const results = {};

async function refusal(promise) {
  try {
    await promise;
  } catch (e) {
    return e.info?.error?.message ?? e.error?.message ?? e.shortMessage ?? e.message;
  }
  throw new Error("expected a refusal");
}

// A permitted wallet transacts.
const receipt = await (await user.sendTransaction({ to: user.address, value: 1n })).wait();
assert.equal(receipt.status, 1);

// The unknown wallet is refused by every node, with the message ethers surfaces.
for (const p of providers) {
  const message = await refusal(newcomer.connect(p).sendTransaction({ to: user.address, value: 1n }));
  assert.match(message, /account not permitted to transact/);
}
results.refusedBy = providers.length;

// Admin 0 proposes; one approval of two does not execute.
const asAdmin0 = new ethers.Contract(PERMISSIONS, Permissions.abi, admin0);
assert.equal(await asAdmin0.threshold(), 2n);
const grant = asAdmin0.interface.encodeFunctionData("setAccount", [newcomer.address, 1, TRANSACT]);
const proposed = await (await asAdmin0.propose([grant])).wait();
const created = proposed.logs.map((l) => asAdmin0.interface.parseLog(l)).find((e) => e?.name === "ProposalCreated");
const id = created.args.id;
assert.ok(!proposed.logs.some((l) => asAdmin0.interface.parseLog(l)?.name === "ProposalExecuted"));
assert.equal(await asAdmin0.canTransact(newcomer.address), false);
assert.match(await refusal(newcomer.sendTransaction({ to: user.address, value: 1n })), /account not permitted to transact/);

// Admin 1's approval executes it; from the next block on the newcomer transacts.
const approved = await (await asAdmin0.connect(admin1).approve(id)).wait();
assert.ok(approved.logs.some((l) => asAdmin0.interface.parseLog(l)?.name === "ProposalExecuted"));
assert.equal(await asAdmin0.canTransact(newcomer.address), true);
const sent = await (await newcomer.sendTransaction({ to: user.address, value: 1n })).wait();
assert.equal(sent.status, 1);
results.permittedAfterBlock = sent.blockNumber;

// Transact-only: a deployment is refused.
const deploy = await refusal(newcomer.sendTransaction({ data: "0x6000", gasLimit: 100000n }));
assert.match(deploy, /account not permitted to deploy contracts/);
results.deployRefusal = deploy;

console.log(JSON.stringify({ ok: true, ...results }));
process.exit(0);
