// The proxy's API as the apps use it: login sessions (POST /session), JSON-RPC through the
// gateway (POST /), the things API (/network, /cluster, /things) and JSON-RPC subscriptions over
// the gateway's WebSocket (?token=). See proxy/src/things.rs and docs/proxy.md.
import { createPublicClient, custom, decodeEventLog } from 'viem';
import { friendly } from './errors.js';

/** A JSON-RPC or HTTP error with the server's words. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = null, data = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data;
  }
}

let nextId = 1;

/** A connection to the proxy, authenticated by a session token or Basic credentials. */
export class Api {
  constructor(storageKey) {
    this.storageKey = storageKey;
    const saved = storageKey ? sessionStorage.getItem(storageKey) : null;
    this.session = saved ? JSON.parse(saved) : null;
    this.basic = null;
  }

  get loggedIn() {
    return Boolean(this.session || this.basic);
  }

  /** Logs in with the proxy's user name and password: a session token kept for this tab. */
  async login(user, password) {
    const r = await fetch('/session', { method: 'POST', headers: { authorization: basic(user, password) } });
    const body = await answer(r);
    this.session = { token: body.token, name: body.name, role: body.role };
    if (this.storageKey) sessionStorage.setItem(this.storageKey, JSON.stringify(this.session));
    return this.session;
  }

  /** Uses Basic credentials on every request (devices such as the locker: no sessions). */
  async loginDevice(user, password) {
    this.basic = basic(user, password);
    try {
      await this.get('/network');
    } catch (e) {
      this.basic = null;
      throw e;
    }
    return { name: user, role: 'device' };
  }

  async logout() {
    if (this.session) {
      await fetch('/session', { method: 'DELETE', headers: this.headers() }).catch(() => {});
    }
    this.session = null;
    this.basic = null;
    if (this.storageKey) sessionStorage.removeItem(this.storageKey);
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.session) h.authorization = `Bearer ${this.session.token}`;
    else if (this.basic) h.authorization = this.basic;
    return h;
  }

  async get(path) {
    return answer(await fetch(path, { headers: this.headers() }));
  }

  async post(path, body) {
    const r = await fetch(path, {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/json' }),
      body: JSON.stringify(body),
    });
    return answer(r);
  }

  /** One JSON-RPC call through the gateway. */
  async rpc(method, params = []) {
    const r = await fetch('/', {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/json' }),
      body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
    });
    const body = await r.json().catch(() => null);
    if (body && body.error) {
      throw new ApiError(body.error.message, { status: r.status, code: body.error.code, data: body.error.data });
    }
    if (!r.ok || !body) throw new ApiError(`HTTP ${r.status}`, { status: r.status });
    return body.result;
  }

  /** An EIP-1193 request function over this connection (for viem's custom transport). */
  request = ({ method, params }) => this.rpc(method, params ?? []);

  /**
   * Subscribes over the gateway's WebSocket (`eth_subscribe`); calls `onEvent(result)` for each
   * notification and reconnects after 2 s when the socket closes. Returns a stop function.
   */
  subscribe(params, onEvent, onState = () => {}) {
    let ws;
    let stopped = false;
    const open = () => {
      const token = this.session ? `?token=${encodeURIComponent(this.session.token)}` : '';
      ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/${token}`);
      ws.onopen = () => {
        onState('live');
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'eth_subscribe', params }));
      };
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data);
        if (msg.method === 'eth_subscription') onEvent(msg.params.result);
      };
      ws.onclose = () => {
        onState('reconnecting');
        if (!stopped) setTimeout(open, 2000);
      };
    };
    open();
    return () => {
      stopped = true;
      ws?.close();
    };
  }
}

function basic(user, password) {
  return `Basic ${btoa(unescape(encodeURIComponent(`${user}:${password}`)))}`;
}

async function answer(r) {
  const text = await r.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!r.ok) {
    const message = body?.message ?? body?.error?.message ?? body?.error ?? (text || `HTTP ${r.status}`);
    throw new ApiError(typeof message === 'string' ? message : JSON.stringify(message), { status: r.status });
  }
  return body;
}

/** Shows `text` in the status element `el` (role="status" / "alert"), as ok or error. */
export function show(el, text, kind = 'ok') {
  el.textContent = text;
  el.className = `status ${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

/** Escapes text for HTML. */
export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** A hex quantity as a number. */
export const num = (hex) => Number.parseInt(hex, 16);

/** 0x1234…abcd */
export const short = (h) => (h && h.length > 12 ? `${h.slice(0, 6)}…${h.slice(-4)}` : h ?? '');

/**
 * The sign-in of a page: the `#login` form (or a session kept for this tab) opens a session, then
 * the page's `#app` is shown with the user and a sign-out button in `#who`, and
 * `start({network, client})` runs with `GET /network` and a viem client over the gateway.
 */
export function signIn(api, start) {
  const $ = (id) => document.getElementById(id);
  const enter = async () => {
    const network = await api.get('/network');
    const client = createPublicClient({ transport: custom({ request: api.request }) });
    $('login-panel').classList.add('hidden');
    $('app').classList.remove('hidden');
    $('who').innerHTML = `${esc(api.session.name)} (${esc(api.session.role)}) <button class="link" id="logout">Sign out</button>`;
    $('logout').onclick = async () => {
      await api.logout();
      location.reload();
    };
    await start({ network, client });
  };
  $('login').onsubmit = async (e) => {
    e.preventDefault();
    try {
      await api.login($('login-user').value, $('login-password').value);
      await enter();
    } catch (err) {
      show($('login-status'), friendly(err), 'error');
    }
  };
  if (api.loggedIn) enter().catch(() => api.logout());
}

/** The event of `log` decoded with `abi`, or null when it is not one of its events. */
export function decodeLog(abi, log) {
  try {
    return decodeEventLog({ abi, data: log.data, topics: log.topics });
  } catch {
    return null;
  }
}
