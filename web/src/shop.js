// The sales-order paper's shop: sellers list items through SaleFactory, buyers pay the exact
// price and get a barcode (QR of the EIP-681 URI the warehouse reads), and the warehouse locker
// opens for the buyer after a signed challenge (proxy/src/warehouse.rs).
import QRCode from 'qrcode';
import jsQR from 'jsqr';
import { encodeFunctionData, formatEther, parseEther } from 'viem';
import { abi as saleFactoryAbi } from '../../contracts/artifacts/SaleFactory.json';
import { abi as saleAbi } from '../../contracts/artifacts/FactorySale.json';
import { Api, decodeLog, esc, show, short, signIn } from './api.js';
import { friendly } from './errors.js';
import { connect, wallets } from './wallet.js';

const $ = (id) => document.getElementById(id);
const api = new Api('fogchain-shop');
const locker = new Api(null);
let network = null;
let client = null;
let wallet = null;

async function start(connected) {
  ({ network, client } = connected);
  $('wallet-choice').innerHTML = wallets().map((w) => `<option value="${esc(w.id)}">${esc(w.label)}</option>`).join('');
  if (network.lockers?.length) $('locker-id').value = network.lockers[0];
  route();
  await refresh();
}

function route() {
  const tab = ['sell', 'buy', 'locker'].includes(location.hash.slice(1)) ? location.hash.slice(1) : 'buy';
  for (const t of ['sell', 'buy', 'locker']) {
    $(t).classList.toggle('hidden', t !== tab);
    if (t === tab) $(`tab-${t}`).setAttribute('aria-current', 'page');
    else $(`tab-${t}`).removeAttribute('aria-current');
  }
}
window.addEventListener('hashchange', route);

/** Every sale of the factory with its item: {address, make, model, year, price, sold, buyer, seller, serial}. */
async function sales() {
  if (!network.saleFactory) return [];
  const count = await client.readContract({ address: network.saleFactory, abi: saleFactoryAbi, functionName: 'saleCount' });
  const addresses = count
    ? await client.readContract({ address: network.saleFactory, abi: saleFactoryAbi, functionName: 'listSales', args: [0n, count] })
    : [];
  return Promise.all(
    addresses.map(async (address) => {
      const [make, model, year, price, sold, , buyer, serial] = await client.readContract({ address, abi: saleAbi, functionName: 'getItem' });
      const seller = await client.readContract({ address, abi: saleAbi, functionName: 'seller' });
      return { address, make, model, year, price, sold, buyer, seller, serial };
    }),
  );
}

const mine = (a) => wallet && a && a.toLowerCase() === wallet.address.toLowerCase();
const label = (s) => `${esc(s.make)} ${esc(s.model)} (${s.year})`;

async function refresh() {
  const all = await sales().catch((e) => {
    show($('buy-status'), friendly(e), 'error');
    return [];
  });
  $('for-sale').tBodies[0].innerHTML =
    all
      .map((s) => {
        const action = s.sold
          ? ''
          : mine(s.seller)
            ? '<span class="muted">your item</span>'
            : `<button type="button" data-buy="${s.address}" data-price="${s.price}">Buy for ${formatEther(s.price)} ETH</button>`;
        return `<tr><td>${label(s)}</td><td>${esc(s.serial)}</td><td>${formatEther(s.price)} ETH</td><td>${s.sold ? 'sold' : 'for sale'}</td><td>${action}</td></tr>`;
      })
      .join('') || '<tr><td colspan="5" class="muted">Nothing for sale yet.</td></tr>';
  $('my-sales').tBodies[0].innerHTML =
    all
      .filter((s) => mine(s.seller))
      .map((s) => `<tr><td>${label(s)}</td><td>${esc(s.serial)}</td><td>${formatEther(s.price)} ETH</td><td>${s.sold ? `sold to <code>${short(s.buyer)}</code>` : 'for sale'}</td><td><code>${s.address}</code></td></tr>`)
      .join('') || `<tr><td colspan="5" class="muted">${wallet ? 'No items listed from this account.' : 'Choose a wallet to see your sales.'}</td></tr>`;
  $('my-buys').tBodies[0].innerHTML =
    all
      .filter((s) => s.sold && mine(s.buyer))
      .map((s) => `<tr><td>${label(s)}</td><td>${esc(s.serial)}</td><td>${formatEther(s.price)} ETH</td><td><button type="button" class="secondary" data-barcode="${s.address}">Show barcode</button></td></tr>`)
      .join('') || `<tr><td colspan="4" class="muted">${wallet ? 'No purchases yet.' : 'Choose a wallet to see your purchases.'}</td></tr>`;
}

/** The EIP-681 URI the warehouse reads (proxy/src/barcode.rs). */
const barcodeUri = (sale, buyer) => `ethereum:${sale}@${network.chainId}/verifyOwnership?address=${buyer}`;

async function showBarcode(sale) {
  const uri = barcodeUri(sale, wallet.address);
  $('barcode-img').src = await QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', margin: 2, width: 220 });
  $('barcode-uri').value = uri;
  $('barcode').classList.remove('hidden');
}

function needWallet() {
  if (!wallet) throw new Error('Choose a wallet first.');
  return wallet;
}

$('wallet').onsubmit = async (e) => {
  e.preventDefault();
  try {
    wallet = await connect($('wallet-choice').value, api, network.chainId);
    const balance = await api.rpc('eth_getBalance', [wallet.address, 'latest']);
    show($('wallet-status'), `Using ${wallet.address} (balance ${formatEther(BigInt(balance))} ETH).`);
    await refresh();
  } catch (err) {
    show($('wallet-status'), friendly(err), 'error');
  }
};

$('sell-form').onsubmit = async (e) => {
  e.preventDefault();
  const button = e.submitter;
  button.disabled = true;
  try {
    const w = needWallet();
    show($('sell-status'), 'Listing… confirm in your wallet if it asks.');
    const data = encodeFunctionData({
      abi: saleFactoryAbi,
      functionName: 'createSale',
      args: [$('make').value, $('model').value, Number($('year').value), parseEther($('price').value), $('serial').value],
    });
    const receipt = await w.send({ to: network.saleFactory, data });
    const created = receipt.logs.map((l) => decodeLog(saleFactoryAbi, l)).find((ev) => ev?.eventName === 'SaleCreated');
    show($('sell-status'), `Listed. Sale contract ${created?.args.sale ?? '(see your sales)'}.`);
    e.target.reset();
    await refresh();
  } catch (err) {
    show($('sell-status'), friendly(err), 'error');
  } finally {
    button.disabled = false;
  }
};

$('refresh').onclick = () => refresh();

document.addEventListener('click', async (e) => {
  const buy = e.target.closest('[data-buy]');
  const code = e.target.closest('[data-barcode]');
  if (code) {
    await showBarcode(code.dataset.barcode).catch((err) => show($('buy-status'), friendly(err), 'error'));
  }
  if (!buy) return;
  buy.disabled = true;
  try {
    const w = needWallet();
    show($('buy-status'), 'Buying… confirm in your wallet if it asks.');
    await w.send({ to: buy.dataset.buy, data: encodeFunctionData({ abi: saleAbi, functionName: 'buy' }), value: BigInt(buy.dataset.price) });
    show($('buy-status'), 'Bought. Your barcode is below.');
    await showBarcode(buy.dataset.buy);
    await refresh();
  } catch (err) {
    show($('buy-status'), friendly(err), 'error');
    buy.disabled = false;
  }
});

// ---- the locker

let challenge = null;
let shadowTimer = null;

$('locker-login').onsubmit = async (e) => {
  e.preventDefault();
  try {
    await locker.loginDevice($('locker-id').value, $('locker-password').value);
    show($('locker-login-status'), `Locker ${$('locker-id').value} connected.`);
    $('locker-ops').classList.remove('hidden');
    clearInterval(shadowTimer);
    shadowTimer = setInterval(pollShadow, 1000);
    pollShadow();
  } catch (err) {
    show($('locker-login-status'), friendly(err), 'error');
  }
};

async function pollShadow() {
  try {
    const doc = await locker.get(`/things/${encodeURIComponent($('locker-id').value)}/shadow`);
    $('shadow-desired').textContent = JSON.stringify(doc.state?.desired ?? {});
    $('shadow-reported').textContent = JSON.stringify(doc.state?.reported ?? {});
    $('shadow-delta').textContent = JSON.stringify(doc.state?.delta ?? {});
    $('shadow-when').textContent = `version ${doc.version}`;
  } catch (err) {
    if (err.status === 404) {
      $('shadow-when').textContent = '(no shadow yet)';
    }
  }
}

$('stock-form').onsubmit = async (e) => {
  e.preventDefault();
  try {
    await locker.post('/warehouse/stock', { sale: $('stock-sale').value.trim() });
    show($('stock-status'), 'The item is in this locker.');
  } catch (err) {
    show($('stock-status'), friendly(err), 'error');
  }
};

/** The barcode text of an uploaded image (jsQR on its pixels). */
async function decodeImage(file) {
  const bitmap = await createImageBitmap(file);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const pixels = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  const found = jsQR(pixels.data, pixels.width, pixels.height);
  if (!found) throw new Error('No barcode found in that picture.');
  return found.data;
}

$('scan-form').onsubmit = async (e) => {
  e.preventDefault();
  try {
    const file = $('scan-image').files[0];
    const barcode = file ? await decodeImage(file) : $('scan-uri').value.trim();
    if (!barcode) throw new Error('Paste the barcode text or choose a photo of it.');
    challenge = await locker.post('/warehouse/challenge', { barcode });
    $('challenge-message').textContent = challenge.message;
    $('challenge').classList.remove('hidden');
    show($('locker-status'), 'Barcode accepted. The buyer signs now.');
  } catch (err) {
    show($('locker-status'), friendly(err), 'error');
  }
};

$('sign-release').onclick = async () => {
  try {
    const w = needWallet();
    const signature = await w.sign(challenge.message);
    await locker.post('/warehouse/release', { challengeId: challenge.challengeId, signature });
    $('challenge').classList.add('hidden');
    show($('locker-status'), 'Released: the door opens.');
    pollShadow();
  } catch (err) {
    show($('locker-status'), friendly(err), 'error');
  }
};

signIn(api, start);
