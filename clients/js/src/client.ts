import { ParleyError } from './errors.js';
import type {
  Close, ErrorCode, Job, JobSubmission, Positions, Pushes, Reply, RequestFields, RequestType, RoomEvent, Welcome,
} from './protocol.js';

/** A token, or a function giving a fresh one: called for every connection and every refresh. */
export type TokenSource = string | (() => string | Promise<string>);

/** What this client needs of a WebSocket: the browser's and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ClientOptions {
  /** The node's base URL, `https://chat.example.com` (or `wss://…`); the socket is `/v1/ws` under it. */
  url: string;
  token: TokenSource;
  /** Defaults to `globalThis.WebSocket`; in Node 20, pass `WebSocket` from the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Defaults to `globalThis.fetch` (for jobs). */
  fetch?: typeof fetch;
  /** Milliseconds a request waits for its reply, from the call (waiting for a connection included). Default 10 s. */
  requestTimeout?: number;
  /** Reconnect delays: exponential from `initialDelay` up to `maxDelay`, each with jitter. Defaults 500 ms and 15 s. */
  reconnect?: { initialDelay?: number; maxDelay?: number };
  /**
   * Send `refresh` by itself before the token expires (needs a token callback). Default true;
   * with false, call `refresh()` yourself or the server closes the connection at expiry (4401)
   * and the client reconnects with a token from the callback.
   */
  autoRefresh?: boolean;
  /** Where to resume each room from (a saved `client.positions`); without it rooms start after the read marker. */
  positions?: Positions;
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What `on` can listen to: each push by its `type`, plus the client's own events. */
export interface ClientEvents extends Omit<Pushes, 'job'> {
  job: Job;
  /** Every frame that answers no request, whatever its type. */
  push: { type: string; [field: string]: unknown };
  state: { state: ConnectionState; attempt?: number; delay?: number };
  /** A refresh was accepted: the connection now lives this long. */
  refreshed: { tokenExpiresIn: number };
  /** Something went wrong that no request reports: a refused refresh, a failing token callback, a closed-for-good connection. */
  error: Error;
}

const PROTOCOL = 'parley.v1';
const TERMINAL_JOB_STATES = new Set(['completed', 'failed', 'cancelled']);
/** Server close codes after which reconnecting would only be refused again (docs/protocol.md, Connection notices). */
const FINAL_CLOSE_CODES = new Set([1008, 4429]);
const MINUTE = 60_000;

interface Pending {
  type: string;
  frame: Record<string, unknown>;
  resolve: (reply: any) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * One connection to a Parley node over WebSocket, kept alive: heartbeats answered, dead
 * sockets noticed, reconnects with exponential backoff and jitter, each room resumed from the
 * last seq it delivered, the token refreshed before it expires. Requests are promises.
 */
export class ParleyClient {
  private readonly options: Required<Omit<ClientOptions, 'positions' | 'reconnect'>> & { reconnect: { initialDelay: number; maxDelay: number } };
  private readonly wsUrl: string;
  private readonly httpUrl: string;
  private readonly listeners = new Map<string, Set<(value: any) => void>>();
  private readonly seen: Positions;
  private readonly pending = new Map<string, Pending>();
  /** Requests made while no connection was ready, sent once one is. */
  private waiting: Pending[] = [];
  private socket: WebSocketLike | null = null;
  private ready = false;
  private stopped = true;
  private attempt = 0;
  private nextId = 1;
  private currentToken: string | null = null;
  private lastHeard = 0;
  private closeFrame: Close | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private silenceTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private readyWaiters: Array<{ resolve: (welcome: Welcome) => void; reject: (error: Error) => void }> = [];
  private welcomeFrame: Welcome | null = null;

  constructor(options: ClientOptions) {
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) {
      throw new Error('no WebSocket: pass the WebSocket option (in Node 20: import WebSocket from "ws")');
    }
    this.options = {
      url: options.url,
      token: options.token,
      WebSocket: WebSocketImpl,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      requestTimeout: options.requestTimeout ?? 10_000,
      autoRefresh: options.autoRefresh ?? true,
      reconnect: { initialDelay: options.reconnect?.initialDelay ?? 500, maxDelay: options.reconnect?.maxDelay ?? 15_000 },
    };
    const base = new URL(options.url);
    const secure = base.protocol === 'https:' || base.protocol === 'wss:';
    this.httpUrl = `${secure ? 'https' : 'http'}://${base.host}`;
    this.wsUrl = `${secure ? 'wss' : 'ws'}://${base.host}/v1/ws`;
    this.seen = { ...(options.positions ?? {}) };
  }

  /** The last seq delivered per room: save it to resume from there in a later client (`positions`). */
  get positions(): Positions {
    return { ...this.seen };
  }

  /** The current connection's welcome, or null while not connected. */
  get welcome(): Welcome | null {
    return this.ready ? this.welcomeFrame : null;
  }

  /**
   * Listens to a push type or a client event; returns the function that stops listening.
   * A room `event` is delivered once per room and seq, in seq order, across reconnects.
   */
  on<K extends keyof ClientEvents>(type: K, listener: (value: ClientEvents[K]) => void): () => void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener);
    return () => set!.delete(listener);
  }

  /** Connects (and keeps reconnecting); resolves with the welcome once the connection has resumed. */
  connect(): Promise<Welcome> {
    const ready = this.whenReady();
    if (this.stopped) {
      this.stopped = false;
      void this.open();
    }
    return ready;
  }

  /** Resolves once a connection is ready (welcomed and resumed). */
  whenReady(): Promise<Welcome> {
    if (this.ready && this.welcomeFrame) return Promise.resolve(this.welcomeFrame);
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Closes the connection for good; pending requests fail with `client_closed`. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.dropSocket();
    this.failAll('client_closed', 'the client was closed');
    this.emit('state', { state: 'closed' });
  }

  /** Sends a request; resolves with its `ok` reply, rejects with a {@link ParleyError}. */
  request<T extends RequestType>(type: T, fields: RequestFields<T>, options: { timeout?: number } = {}): Promise<Reply<T>> {
    return this.call(type, fields as Record<string, unknown>, options.timeout ?? this.options.requestTimeout, false);
  }

  /** Sends a message; `clientMsgId` names the write, so resending it after an error never writes twice. */
  send(room: string, body: string, clientMsgId: string = newId()): Promise<Reply<'send'>> {
    return this.request('send', { room, body, clientMsgId });
  }

  sendDm(to: string, body: string, clientMsgId: string = newId()): Promise<Reply<'send_dm'>> {
    return this.request('send_dm', { to, body, clientMsgId });
  }

  createRoom(room: string, options: { visibility?: 'public' | 'private'; topic?: string } = {}): Promise<Reply<'create_room'>> {
    return this.request('create_room', { room, ...options });
  }

  join(room: string): Promise<Reply<'join'>> {
    return this.request('join', { room });
  }

  history(room: string, options: { before?: number; limit?: number } = {}): Promise<Reply<'history'>> {
    return this.request('history', { room, ...options });
  }

  markRead(room: string, seq: number): Promise<Reply<'mark_read'>> {
    return this.request('mark_read', { room, seq });
  }

  /** Says the user is typing in `room`. It has no reply, and is dropped while not connected (it is ephemeral). */
  typing(room: string): void {
    if (this.ready) this.write({ type: 'typing', room });
  }

  /** Sends `refresh` now with a token from the token callback (it is also done by itself before expiry). */
  async refresh(): Promise<Reply<'refresh'>> {
    const token = await this.freshToken();
    const reply = await this.request('refresh', { token });
    this.currentToken = token;
    this.scheduleRefresh(reply.tokenExpiresIn);
    this.emit('refreshed', { tokenExpiresIn: reply.tokenExpiresIn });
    return reply;
  }

  // Jobs (docs/jobs.md): over REST with the user's token; changes also come as `job` pushes.

  /** Submits a job; resolves with it as accepted (or as it is now, for a repeated `idempotencyKey`). */
  submitJob(queue: string, submission: JobSubmission = {}, options: { idempotencyKey?: string } = {}): Promise<Job> {
    const headers: Record<string, string> = options.idempotencyKey ? { 'Idempotency-Key': options.idempotencyKey } : {};
    return this.rest('POST', `/v1/queues/${encodeURIComponent(queue)}/jobs`, submission, headers);
  }

  /** Reads a job; with `after`, the server holds the call until its version passes `after` or `wait` ms pass. */
  getJob(id: string, options: { after?: number; wait?: number; signal?: AbortSignal } = {}): Promise<Job> {
    const query = options.after === undefined ? '' : `?after=${options.after}&wait=${options.wait ?? 25_000}`;
    return this.rest('GET', `/v1/jobs/${jobPath(id)}${query}`, undefined, {}, options.signal);
  }

  /** Cancels a job that has not finished; with `ifVersion`, only if it is still at that version. */
  cancelJob(id: string, options: { ifVersion?: number } = {}): Promise<Job> {
    const headers: Record<string, string> = options.ifVersion === undefined ? {} : { 'If-Match': `"${options.ifVersion}"` };
    return this.rest('DELETE', `/v1/jobs/${jobPath(id)}`, undefined, headers);
  }

  /**
   * Each new version of a job, in version order, until it is completed, failed or cancelled.
   * Pushes on this connection bring changes at once; a long poll (`GET ?after=&wait=`) runs
   * beside them, so a change made while the connection was down is not missed (job pushes are
   * not part of resume).
   */
  async *followJob(id: string, options: { wait?: number } = {}): AsyncGenerator<Job, void, undefined> {
    const inbox = new Inbox<Job>();
    const stopListening = this.on('job', (job) => {
      if (job.id === id) inbox.put(job);
    });
    const stop = new AbortController();
    void (async () => {
      let after = 0;
      while (!stop.signal.aborted) {
        try {
          const job = await this.getJob(id, { after, wait: options.wait ?? 25_000, signal: stop.signal });
          after = Math.max(after, job.version);
          inbox.put(job);
          if (TERMINAL_JOB_STATES.has(job.state)) return;
        } catch (error) {
          if (stop.signal.aborted) return;
          if (!(error instanceof ParleyError && error.retryable)) {
            inbox.fail(error as Error);
            return;
          }
          await delay(1000);
        }
      }
    })();
    let last = 0;
    try {
      for (;;) {
        const job = await inbox.take();
        if (job.version <= last) continue;
        last = job.version;
        yield job;
        if (TERMINAL_JOB_STATES.has(job.state)) return;
      }
    } finally {
      stop.abort();
      stopListening();
    }
  }

  /** Follows a job to its end and resolves with it (completed, failed or cancelled). */
  async waitForJob(id: string): Promise<Job> {
    let last: Job | undefined;
    for await (const job of this.followJob(id)) last = job;
    return last!;
  }

  // The connection.

  private async open(): Promise<void> {
    // A reconnect announced itself when it was scheduled.
    if (this.attempt === 0) this.emit('state', { state: 'connecting' });
    let token: string;
    try {
      token = await this.freshToken();
    } catch (error) {
      this.emit('error', error as Error);
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) return;
    this.currentToken = token;
    this.closeFrame = null;
    // The token rides in a subprotocol entry: a browser cannot set an Authorization header on a WebSocket.
    const socket = new this.options.WebSocket(this.wsUrl, [PROTOCOL, `bearer.${token}`]);
    this.socket = socket;
    socket.onmessage = (event) => {
      if (socket === this.socket) this.onFrame(String(event.data));
    };
    socket.onclose = () => {
      if (socket === this.socket) this.onDisconnected();
    };
    // A failed connection is followed by onclose, which reconnects.
    socket.onerror = () => {};
  }

  private onFrame(text: string): void {
    this.lastHeard = Date.now();
    let frame: { type: string; id?: string; [field: string]: any };
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.id !== undefined && (frame.type === 'ok' || frame.type === 'error' || frame.type === 'pong')) {
      this.settle(frame);
      return;
    }
    const { type, ...fields } = frame;
    switch (type) {
      case 'welcome':
        this.onWelcome(fields as unknown as Welcome);
        this.emit('welcome', fields as unknown as Welcome);
        break;
      case 'ping':
        this.write({ type: 'pong' });
        this.emit('ping', {});
        return;
      case 'event': {
        const event = fields as unknown as RoomEvent;
        // The server sends each event once per connection; across connections a resume can
        // overlap what was delivered, so a seq already seen is dropped here.
        if (event.seq <= (this.seen[event.room] ?? 0)) return;
        this.seen[event.room] = event.seq;
        this.emit('event', event);
        break;
      }
      case 'reload':
        // The room is sent again from seq 1: forget its position so those events come through.
        this.seen[fields.room] = 0;
        this.emit('reload', fields as ClientEvents['reload']);
        break;
      case 'close':
        this.closeFrame = fields as Close;
        this.emit('close', this.closeFrame);
        break;
      case 'job':
        this.emit('job', fields.job as Job);
        break;
      default:
        this.emit(type as keyof ClientEvents, fields as never);
    }
    this.emit('push', frame);
  }

  private onWelcome(welcome: Welcome): void {
    this.welcomeFrame = welcome;
    this.watchSilence(welcome);
    if (welcome.tokenExpiresIn !== undefined) this.scheduleRefresh(welcome.tokenExpiresIn);
    const socket = this.socket;
    const rooms = this.positions;
    const resume = Object.keys(rooms).length > 0 ? { rooms } : {};
    this.call('resume', resume, this.options.requestTimeout, true).then(
      (reply: Reply<'resume'>) => {
        // Rooms this client did not name resume after the read marker: start counting there.
        for (const [room, seq] of Object.entries(reply.rooms)) this.seen[room] ??= seq;
        // Backoff starts over only now: a node that welcomes and then fails every resume is not hammered.
        this.attempt = 0;
        this.ready = true;
        this.emit('state', { state: 'open' });
        for (const entry of this.waiting.splice(0)) this.sendPending(entry);
        for (const waiter of this.readyWaiters.splice(0)) waiter.resolve(welcome);
      },
      (error: Error) => {
        // connection_lost: the socket is already gone and reconnecting; otherwise start over.
        if (socket !== this.socket) return;
        this.emit('error', error);
        this.dropSocket();
        this.onDisconnected();
      },
    );
  }

  /**
   * The server pings every pingInterval; hearing nothing at all for pingInterval + pingTimeout
   * means the socket is dead without having closed (docs/protocol.md, Heartbeats).
   */
  private watchSilence(welcome: Welcome): void {
    clearTimeout(this.silenceTimer);
    if (!welcome.pingInterval || !welcome.pingTimeout) return;
    const limit = welcome.pingInterval + welcome.pingTimeout;
    const check = () => {
      const quiet = Date.now() - this.lastHeard;
      if (quiet >= limit) {
        this.dropSocket();
        this.onDisconnected();
      } else {
        this.silenceTimer = setTimeout(check, limit - quiet);
      }
    };
    this.silenceTimer = setTimeout(check, limit);
  }

  /**
   * Refreshes when about a tenth of the token's lifetime is left or a minute before it runs
   * out, whichever is earlier (docs/protocol.md); a token living under two minutes is
   * refreshed at half its life, so a short-lived token is not refreshed over and over at once.
   */
  private scheduleRefresh(expiresIn: number): void {
    clearTimeout(this.refreshTimer);
    if (typeof this.options.token !== 'function' || !this.options.autoRefresh) return;
    const at = Math.min(expiresIn * 0.9, Math.max(expiresIn - MINUTE, expiresIn / 2));
    this.refreshTimer = setTimeout(() => {
      this.refresh().catch((error: Error) => this.emit('error', error));
    }, at);
  }

  private onDisconnected(): void {
    this.socket = null;
    this.ready = false;
    clearTimeout(this.silenceTimer);
    clearTimeout(this.refreshTimer);
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      this.pending.delete(id);
      entry.reject(new ParleyError('connection_lost', `the connection dropped before ${entry.type} was answered`));
    }
    if (this.stopped) return;
    const close = this.closeFrame;
    if (close && FINAL_CLOSE_CODES.has(close.code)) {
      const error = new Error(`the server closed the connection for good: ${close.code} ${close.reason}`);
      this.stopped = true;
      this.failAll('client_closed', error.message);
      for (const waiter of this.readyWaiters.splice(0)) waiter.reject(error);
      this.emit('error', error);
      this.emit('state', { state: 'closed' });
      return;
    }
    this.scheduleReconnect();
  }

  /** Exponential backoff with "equal jitter": half the step fixed, half random, so clients dropped together spread out. */
  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.attempt += 1;
    const { initialDelay, maxDelay } = this.options.reconnect;
    const step = Math.min(maxDelay, initialDelay * 2 ** (this.attempt - 1));
    const wait = step / 2 + Math.random() * (step / 2);
    this.emit('state', { state: 'reconnecting', attempt: this.attempt, delay: wait });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.open(), wait);
  }

  private dropSocket(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.ready = false;
    // No-ops rather than null: the ws package throws an 'error' event nobody listens to.
    socket.onmessage = socket.onclose = socket.onerror = () => {};
    try {
      socket.close();
    } catch {
      // A socket still connecting may refuse to close; it is forgotten either way.
    }
  }

  private call(type: string, fields: Record<string, unknown>, timeout: number, early: boolean): Promise<any> {
    if (this.stopped && !early) {
      return Promise.reject(new ParleyError('client_closed', 'the client is closed: call connect() first'));
    }
    return new Promise((resolve, reject) => {
      const id = String(this.nextId++);
      const entry: Pending = {
        type,
        frame: { ...fields, type, id },
        resolve,
        reject,
        timer: setTimeout(() => {
          this.pending.delete(id);
          this.waiting = this.waiting.filter((w) => w !== entry);
          reject(new ParleyError('request_timeout', `no reply to ${type} within ${timeout} ms`));
        }, timeout),
      };
      if (early || this.ready) this.sendPending(entry);
      else this.waiting.push(entry);
    });
  }

  private sendPending(entry: Pending): void {
    this.pending.set(entry.frame.id as string, entry);
    this.write(entry.frame);
  }

  private settle(frame: { type: string; id?: string; [field: string]: any }): void {
    const entry = this.pending.get(frame.id!);
    if (!entry) return;
    this.pending.delete(frame.id!);
    clearTimeout(entry.timer);
    const { type, id, ...fields } = frame;
    if (type === 'error') {
      entry.reject(new ParleyError(fields.code as ErrorCode, fields.message, undefined, fields));
    } else {
      entry.resolve(fields);
    }
  }

  private write(frame: Record<string, unknown>): void {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  private failAll(code: 'client_closed', message: string): void {
    for (const entry of [...this.pending.values(), ...this.waiting]) {
      clearTimeout(entry.timer);
      entry.reject(new ParleyError(code, message));
    }
    this.pending.clear();
    this.waiting = [];
    clearTimeout(this.silenceTimer);
    clearTimeout(this.refreshTimer);
  }

  private async freshToken(): Promise<string> {
    const source = this.options.token;
    return typeof source === 'function' ? await source() : source;
  }

  /** A REST call with the connection's token; a token that expired meanwhile is replaced once from the callback. */
  private async rest<T>(method: string, path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<T> {
    const attempt = async (token: string) =>
      this.options.fetch(this.httpUrl + path, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    let response = await attempt(this.currentToken ?? (this.currentToken = await this.freshToken()));
    if (response.status === 401 && typeof this.options.token === 'function') {
      await response.body?.cancel();
      this.currentToken = await this.freshToken();
      response = await attempt(this.currentToken);
    }
    const text = await response.text();
    const answer = text ? JSON.parse(text) : undefined;
    if (!response.ok) {
      const error = answer ?? {};
      throw new ParleyError(error.code ?? 'unavailable', error.message ?? `HTTP ${response.status}`, response.status, error);
    }
    return answer as T;
  }

  private emit<K extends keyof ClientEvents>(type: K, value: ClientEvents[K]): void {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        listener(value);
      } catch (error) {
        // A throwing listener must not break the connection's frame handling; report it as uncaught.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/** A job id is `<queue>:<partition>:<hex>`: keep its colons, escape anything else. */
function jobPath(id: string): string {
  return id.split(':').map(encodeURIComponent).join(':');
}

function newId(): string {
  return globalThis.crypto.randomUUID();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An unbounded queue one consumer awaits. */
class Inbox<T> {
  private items: T[] = [];
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  put(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  fail(error: Error): void {
    this.failure = error;
    this.wake?.();
  }

  async take(): Promise<T> {
    for (;;) {
      if (this.items.length > 0) return this.items.shift()!;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }
}
