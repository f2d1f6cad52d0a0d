// One WebSocket speaking protocol v1 (docs/protocol.md), kept alive: it reconnects by itself
// with backoff, runs the caller's handshake (resume) before anything queued, and keeps the
// requests made while offline to send them once the handshake is done. It answers the server's
// heartbeat pings, and takes a server it hears nothing from for the welcome's pingInterval +
// pingTimeout for gone (a half-open socket after sleep or a network change): it reconnects.
// The browser's own word is quicker than the heartbeat: `offline` drops the socket at once
// and `online` reconnects at once (see browserOffline, browserOnline).

const PROTOCOL = 'parley.v1';
const SILENCE_CHECK_MS = 1000;
const MAX_BACKOFF_MS = 15000;
const RETRY_CODES = new Set(['timeout', 'unavailable']);

/** A failed request: the server's stable `code` and its human `message`. */
export class RequestError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * Events (all CustomEvent, data in `detail`): `status` {state, retryAt} whenever the state
 * changes ('connecting', 'online', 'offline'); `welcome` the server's welcome frame; `push`
 * every frame that answers no request (events, typing, receipts, doc_op…).
 *
 * `handshake(connection)` runs after each welcome and must resolve before queued requests
 * are sent; requests it makes itself pass `{ early: true }`.
 */
export class Connection extends EventTarget {
  constructor({ url, getToken, handshake }) {
    super();
    this.url = url;
    this.getToken = getToken;
    this.handshake = handshake;
    this.socket = null;
    this.opening = false;
    this.state = 'offline';
    this.ready = false;
    this.nextId = 1;
    this.inFlight = new Map();
    this.queue = [];
    this.attempt = 0;
    this.retryTimer = null;
    this.silenceTimer = null;
    this.silenceLimit = 0;
    this.lastHeard = 0;
    this.stopped = true;
    this.networkUp = true;
    this.comeBackAtOnce = false;
    this.trace = [];
  }

  /** Keeps the last frames each way, for the test hooks and for debugging in the console. */
  record(direction, text) {
    this.trace.push(`${direction} ${text}`);
    if (this.trace.length > 400) this.trace.splice(0, this.trace.length - 400);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.drop('stopped');
  }

  /**
   * Sends a request and resolves with its `ok` reply (rejects with a RequestError).
   * `retry`: the request is safe to repeat (reads, and writes named by a clientMsgId or
   * clientOpId), so it waits out disconnects and `timeout`/`unavailable` answers; otherwise
   * a request that cannot be sent now fails with code `offline`.
   */
  request(type, fields = {}, { retry = false, early = false } = {}) {
    return new Promise((resolve, reject) => {
      const entry = { type, fields, retry, resolve, reject };
      if (early || this.ready) {
        if (this.transmit(entry)) return;
      }
      if (retry) this.queue.push(entry);
      else reject(new RequestError('offline', 'You are offline; try again when the connection is back.'));
    });
  }

  /** A fire-and-forget frame (typing, cursor moves): dropped when not connected. */
  notify(type, fields = {}) {
    if (this.ready) this.write(JSON.stringify({ type, ...fields }));
  }

  transmit(entry) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    const id = String(this.nextId++);
    this.inFlight.set(id, entry);
    this.write(JSON.stringify({ type: entry.type, id, ...entry.fields }));
    return true;
  }

  write(text) {
    this.record('→', text);
    this.socket.send(text);
  }

  async connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped || this.socket || this.opening) return;
    this.opening = true;
    this.setState('connecting');
    let socket;
    try {
      if (!this.networkUp) throw new Error('network down (test hook)');
      // After a few failures the token may be what is wrong (expired): ask for a fresh one.
      const token = await this.getToken(this.attempt >= 3);
      if (this.stopped) return;
      if (!this.networkUp) throw new Error('network down (test hook)');
      socket = new WebSocket(this.url, [PROTOCOL, `bearer.${token}`]);
    } catch (error) {
      this.scheduleReconnect();
      return;
    } finally {
      this.opening = false;
    }
    if (!socket) return;
    this.socket = socket;
    this.comeBackAtOnce = false;
    socket.onmessage = (message) => this.onFrame(socket, message.data);
    socket.onclose = () => {
      if (this.socket === socket) this.drop('closed');
    };
    socket.onerror = () => {
      if (this.socket === socket) this.drop('error');
    };
  }

  onFrame(socket, data) {
    if (socket !== this.socket) return;
    this.lastHeard = Date.now();
    this.record('←', data);
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (error) {
      return;
    }
    if (frame.type === 'ping' && frame.id === undefined) {
      this.write('{"type":"pong"}');
      return;
    }
    if (frame.type === 'welcome') {
      this.onWelcome(frame);
      return;
    }
    if (frame.type === 'close') {
      // The server is closing (lagged, flooded): resume from the last seq on a new socket.
      this.drop('closed by server');
      return;
    }
    const entry = frame.id !== undefined ? this.inFlight.get(frame.id) : undefined;
    if (entry) {
      this.inFlight.delete(frame.id);
      if (frame.type === 'error') {
        if (entry.retry && RETRY_CODES.has(frame.code)) {
          setTimeout(() => this.requeue(entry), 1000);
        } else {
          entry.reject(new RequestError(frame.code, frame.message));
        }
      } else {
        entry.resolve(frame);
      }
      return;
    }
    this.dispatchEvent(new CustomEvent('push', { detail: frame }));
  }

  requeue(entry) {
    if (!(this.ready && this.transmit(entry))) this.queue.push(entry);
  }

  async onWelcome(frame) {
    const socket = this.socket;
    this.attempt = 0;
    this.session = frame.session;
    this.silenceLimit = frame.pingInterval + frame.pingTimeout;
    this.watchSilence(socket);
    this.dispatchEvent(new CustomEvent('welcome', { detail: frame }));
    try {
      await this.handshake(this);
    } catch (error) {
      if (socket === this.socket) this.drop('handshake failed');
      return;
    }
    if (socket !== this.socket) return;
    this.ready = true;
    this.wasOnline = true;
    this.setState('online');
    const queued = this.queue;
    this.queue = [];
    for (const entry of queued) this.requeue(entry);
  }

  /** The server pings every pingInterval: silence past interval + timeout means a dead socket. */
  watchSilence(socket) {
    clearInterval(this.silenceTimer);
    // A node older than the heartbeat (during a rolling upgrade) advertises none and never pings.
    if (!(this.silenceLimit > 0)) return;
    this.silenceTimer = setInterval(() => {
      if (socket !== this.socket) return;
      if (Date.now() - this.lastHeard > this.silenceLimit) {
        // The socket is half-open; a fresh one will tell.
        this.drop('silent');
      }
    }, SILENCE_CHECK_MS);
  }

  /** Forgets the socket, requeues what may be repeated, fails the rest, and plans a reconnect. */
  drop(reason) {
    const socket = this.socket;
    this.record('×', reason);
    this.socket = null;
    this.ready = false;
    clearInterval(this.silenceTimer);
    if (socket) {
      socket.onmessage = socket.onclose = socket.onerror = null;
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
        socket.close(1000, reason);
      }
    }
    const lost = [...this.inFlight.values()];
    this.inFlight.clear();
    const again = lost.filter((entry) => entry.retry);
    this.queue = again.concat(this.queue);
    for (const entry of lost) {
      if (!entry.retry) entry.reject(new RequestError('offline', 'The connection dropped before the answer came.'));
    }
    if (this.stopped) {
      this.setState('offline');
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    // An attempt begun while the network was down that failed after it came back is no reason
    // to wait: the network is there now.
    const delay = this.comeBackAtOnce ? 0 : Math.round(base / 2 + (Math.random() * base) / 2);
    this.comeBackAtOnce = false;
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState('offline');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Skips the wait before the next attempt (the user asked, or the browser is back online). */
  retryNow() {
    if (!this.socket && !this.opening && !this.stopped) {
      this.attempt = 0;
      this.connect();
    }
  }

  /**
   * The browser says the network is gone (its `offline` event). A socket that was open stays
   * "open" for a while, dead (no FIN comes through a network that is not there), and the
   * heartbeat would take pingInterval + pingTimeout (50 s by default) to notice: drop it now,
   * so the page says offline at once and what is sent meanwhile waits in the queue. Attempts go
   * on with backoff; they fail at once while the browser is offline, and they are what brings
   * the connection back where the browser's word is wrong (it may say offline with only
   * loopback up, while a server on localhost is still there).
   */
  browserOffline() {
    if (this.stopped) return;
    this.drop('browser offline');
  }

  /** The browser has a network again (its `online` event): reconnect now, not at the timer. */
  browserOnline() {
    if (this.stopped) return;
    this.attempt = 0;
    // A socket still connecting was begun while offline and can only fail: start afresh
    // rather than wait for its error.
    if (this.socket && this.socket.readyState === WebSocket.CONNECTING) this.drop('network back');
    if (this.opening) this.comeBackAtOnce = true;
    this.retryNow();
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('status', { detail: { state, retryAt: this.retryAt } }));
  }

  /** Test hook: cut the socket now; the client reconnects on its own. */
  debugDropSocket() {
    this.drop('cut by test');
  }

  /**
   * Test hook: while false, the network is "down": attempts fail, and the page reacts as it
   * does to the browser's `offline` and `online` events.
   */
  debugSetNetwork(up) {
    this.networkUp = up;
    if (!up) this.browserOffline();
    else this.browserOnline();
  }
}
