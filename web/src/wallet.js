// Wallets: any injected EIP-1193 wallet announced by EIP-6963 (or window.ethereum), and on a
// devnet the accounts of the standard test mnemonic (the keys every Hardhat/Anvil user knows;
// never for real money). Transactions of a test account are signed here and sent through the
// gateway; an injected wallet signs and sends them itself.
import { mnemonicToAccount } from 'viem/accounts';
import { numberToHex, stringToHex } from 'viem';

export const TEST_MNEMONIC = 'test test test test test test test test test test test junk';

const injected = new Map();
window.addEventListener('eip6963:announceProvider', (e) => injected.set(e.detail.info.uuid, e.detail));
window.dispatchEvent(new Event('eip6963:requestProvider'));

/** The wallets to choose from: `{id, label}`. */
export function wallets() {
  const list = [...injected.values()].map((d) => ({ id: `eip6963:${d.info.uuid}`, label: d.info.name }));
  if (!list.length && window.ethereum) list.push({ id: 'window.ethereum', label: 'Browser wallet' });
  for (let i = 0; i < 10; i++) {
    const a = mnemonicToAccount(TEST_MNEMONIC, { addressIndex: i });
    list.push({ id: `test:${i}`, label: `Test account ${i} (${a.address.slice(0, 8)}…, devnet only)` });
  }
  return list;
}

/** A connected wallet: `address`, `send({to, data, value})` -> receipt, `sign(message)`. */
export async function connect(id, api, chainId) {
  if (id.startsWith('test:')) return new TestWallet(mnemonicToAccount(TEST_MNEMONIC, { addressIndex: Number(id.slice(5)) }), api, chainId);
  const provider = id === 'window.ethereum' ? window.ethereum : injected.get(id.slice('eip6963:'.length))?.provider;
  if (!provider) throw new Error('That wallet is gone; reload the page.');
  const [address] = await provider.request({ method: 'eth_requestAccounts' });
  const walletChain = Number.parseInt(await provider.request({ method: 'eth_chainId' }), 16);
  if (walletChain !== chainId) throw new Error(`Switch your wallet to chain ${chainId} (it is on chain ${walletChain}).`);
  return new InjectedWallet(provider, address, api);
}

/** Polls the receipt of `hash` (60 s); a failed transaction throws. */
async function receipt(api, hash) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = await api.rpc('eth_getTransactionReceipt', [hash]);
    if (r) {
      if (r.status !== '0x1') throw new Error('The transaction failed on chain (reverted).');
      return r;
    }
    await new Promise((ok) => setTimeout(ok, 300));
  }
  throw new Error('The transaction was sent but is not in a block after 60 s.');
}

class TestWallet {
  constructor(account, api, chainId) {
    this.account = account;
    this.address = account.address;
    this.api = api;
    this.chainId = chainId;
  }

  async send({ to, data = '0x', value = 0n }) {
    const call = { from: this.address, to, data, value: numberToHex(value) };
    const [gas, nonce, block, tip] = await Promise.all([
      this.api.rpc('eth_estimateGas', [call]),
      this.api.rpc('eth_getTransactionCount', [this.address, 'pending']),
      this.api.rpc('eth_getBlockByNumber', ['latest', false]),
      this.api.rpc('eth_maxPriorityFeePerGas', []),
    ]);
    const baseFee = BigInt(block.baseFeePerGas ?? '0x0');
    const raw = await this.account.signTransaction({
      chainId: this.chainId,
      type: 'eip1559',
      nonce: Number.parseInt(nonce, 16),
      to,
      data,
      value,
      gas: (BigInt(gas) * 12n) / 10n,
      maxPriorityFeePerGas: BigInt(tip),
      maxFeePerGas: baseFee * 2n + BigInt(tip),
    });
    const hash = await this.api.rpc('eth_sendRawTransaction', [raw]);
    return receipt(this.api, hash);
  }

  sign(message) {
    return this.account.signMessage({ message });
  }
}

class InjectedWallet {
  constructor(provider, address, api) {
    this.provider = provider;
    this.address = address;
    this.api = api;
  }

  async send({ to, data = '0x', value = 0n }) {
    const hash = await this.provider.request({
      method: 'eth_sendTransaction',
      params: [{ from: this.address, to, data, value: numberToHex(value) }],
    });
    return receipt(this.api, hash);
  }

  sign(message) {
    return this.provider.request({ method: 'personal_sign', params: [stringToHex(message), this.address] });
  }
}
