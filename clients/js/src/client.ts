import { Listeners } from './listeners.js';
import { ParleyError } from './errors.js';
import { callRest, jobPath, type HttpContext } from './http.js';
import { ParleyDocument } from './document.js';
import type {
  Close, Job, JobSubmission, Positions, Pushes, Reply, RequestFields, RequestType, RoomEntry, RoomEvent, Welcome,
} from './protocol.js';
import { defaultSendStore, type QueuedSend, type SendStore } from './sendStore.js';
import {
  DEFAULT_TRANSPORTS, PollTransport, SseTransport, WebSocketTransport,
  type ServerFrame, type Transport, type TransportHandler, type TransportName, type WebSocketConstructor,
} from './transports.js';

export type { WebSocketConstructor, WebSocketLike, TransportName } from './transports.js';

/** A token, or a function giving a fresh one: called for every connection and every refresh. */
export type TokenSource = string | (() => string | Promise<string>);

/** What a {@link ParleyClient} is made with: `url` and `token` are required, the rest have defaults. */
export interface ClientOptions {
  /** The node's base URL, `https://chat.example.com` (or `wss://…`); the socket is `/v1/ws` under it. */
  url: string;
  /** The token, or a function returning a fresh one (see {@link TokenSource}). */
  token: TokenSource;
  /**
   * Defaults to `globalThis.WebSocket`; in Node 20, pass `WebSocket` from the `ws` package.
   * Without one, the `websocket` transport is skipped.
   */
  WebSocket?: WebSocketConstructor;
  /** Defaults to `globalThis.fetch` (REST, SSE, long-polling and jobs). */
  fetch?: typeof fetch;
  /**
   * The transports to try, in order, each time the client connects; default
   * `['websocket', 'sse', 'poll']`. One that cannot be opened (refused, or no welcome within
   * `connectTimeout`) gives way to the next; once one works, reconnects start from it.
   */
  transports?: TransportName[];
  /** Milliseconds a transport has to open (welcome, or a first poll answered). Default 10 s. */
  connectTimeout?: number;
  /** Milliseconds the node may hold a long poll (at most 60 s). Default 25 s. */
  pollTimeout?: number;
  /** Where SSE and long-polling resume (a saved `client.cursor`); `positions` is the WebSocket's. */
  cursor?: string;
  /**
   * Where `send`s wait until acknowledged, resent on each connection (see `send`). Default:
   * IndexedDB in a browser (`IndexedDBSendStore`), memory in Node (`MemorySendStore`).
   */
  sendStore?: SendStore;
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
  /** Where to resume each room from (a saved `client.positions`); without it rooms start after the read marker (see `roomStart`). */
  positions?: Positions;
  /**
   * Where a room starts on a WebSocket connection when this client holds no position for it
   * (it is not in `positions`). `'unread'` (the default): after the user's read marker, so its
   * unread events are delivered. `'latest'`: after its newest event, for an application that
   * shows a room's past from `history` when the room is opened; the client then asks
   * `list_rooms` before each `resume`, takes each room's `lastSeq` as its position, and emits
   * the list as `rooms` (a room that did not answer in time starts after the read marker).
   * SSE and long-polling without a cursor always start after the read markers.
   */
  roomStart?: 'unread' | 'latest';
  /**
   * Where the platform says the network went away or came back (its `offline` and `online`
   * events): the connection is dropped at once on `offline` (a socket on a network that is
   * gone stays open, dead, until the heartbeat notices) and reconnects at once on `online`,
   * without waiting out the backoff. Default: `window` in a browser, none elsewhere; `null`
   * ignores the platform's word.
   */
  networkEventTarget?: EventTarget | null;
}

/** Where the connection is, as `state` events report it. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** A queued send sent again on a new connection: its reply, or why it failed. */
export interface Resent {
  send: QueuedSend;
  /** The `ok` of `send`, or of `send_dm` for a direct message (`send.to`). */
  reply?: Reply<'send'> | Reply<'send_dm'>;
  error?: Error;
}

/** What `on` can listen to: each push by its `type`, plus the client's own events. */
export interface ClientEvents extends Omit<Pushes, 'job'> {
  job: Job;
  /** Every frame that answers no request, whatever its type. */
  push: { type: string; [field: string]: unknown };
  /** `transport` names the one being tried (`connecting`) or in use (`open`). */
  state: { state: ConnectionState; attempt?: number; delay?: number; transport?: TransportName };
  /** A send from the queue (`sendStore`), sent again on a new connection, was answered. */
  resent: Resent;
  /** The user's rooms as a connection starts, before it resumes them: only with `roomStart: 'latest'`. */
  rooms: { rooms: RoomEntry[] };
  /** A refresh was accepted: the connection now lives this long. */
  refreshed: { tokenExpiresIn: number };
  /** Something went wrong that no request reports: a refused refresh, a failing token callback, a closed-for-good connection. */
  error: Error;
}

const TERMINAL_JOB_STATES = new Set(['completed', 'failed', 'cancelled']);
/** Server close codes after which reconnecting would only be refused again (docs/protocol.md, Connection notices). */
const FINAL_CLOSE_CODES = new Set([1008, 4429]);
const MINUTE = 60_000;
/** Codes an SSE stream or a poll is refused with for its cursor: start again without one (docs/transports.md). */
const CURSOR_REFUSALS = new Set(['bad_cursor', 'not_a_member', 'cursor_expired']);
/** Codes after which a queued send stays queued: it was not carried out, or may be retried as it is. */
const KEEP_QUEUED = new Set(['connection_lost', 'request_timeout', 'client_closed', 'rate_limited', 'unavailable', 'timeout']);

interface Pending {
  type: string;
  frame: { type: string; id: string; [field: string]: unknown };
  resolve: (reply: any) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * One connection to a Parley node, kept alive: over a WebSocket, or where none can be opened
 * over Server-Sent Events or long-polling with REST for requests (docs/transports.md), with
 * the same API either way. Heartbeats answered, dead sockets noticed, reconnects with
 * exponential backoff and jitter, each room resumed from the last seq it delivered (or the
 * SSE/long-poll cursor), the token refreshed before it expires, sends queued until
 * acknowledged. Requests are promises.
 */
export class ParleyClient {
  private readonly options: Required<Omit<ClientOptions, 'positions' | 'reconnect' | 'WebSocket' | 'cursor' | 'sendStore' | 'networkEventTarget'>> & {
    reconnect: { initialDelay: number; maxDelay: number };
    WebSocket: WebSocketConstructor | null;
  };
  private readonly wsUrl: string;
  private readonly http: HttpContext;
  private readonly store: SendStore;
  private readonly listeners = new Listeners<ClientEvents>();
  private readonly seen: Positions;
  /** Requests sent and not yet answered. */
  private readonly inFlight = new Set<Pending>();
  /** Requests made while no connection was ready, sent once one is. */
  private waiting: Pending[] = [];
  /** clientMsgIds of sends under way on this client, so the queue does not send them again meanwhile. */
  private readonly sending = new Set<string>();
  /** Rooms whose gap is being filled from history (see healGaps), with their live events held meanwhile. */
  private readonly healing = new Map<string, RoomEvent[]>();
  /**
   * Pushes that came on a WebSocket after its resume was answered and before the client saw the
   * answer (they can share a read from the socket): given out after the 'open' state, in order.
   */
  private beforeReady: ServerFrame[] = [];
  private connection: Transport | null = null;
  /** Index in `options.transports` of the transport tried now, and of the one that last worked. */
  private tryIndex = 0;
  private workingIndex = 0;
  /** The current connection has opened (welcome, or a first poll answered). */
  private opened = false;
  private ready = false;
  private stopped = true;
  private attempt = 0;
  /** The token for the next connection is being fetched (`open` is under way without a connection yet). */
  private opening = false;
  /** The network came back while an attempt was being made: if it fails, the next one is at once. */
  private retryAtOnce = false;
  private readonly network: EventTarget | null;
  private nextId = 1;
  private currentToken: string | null = null;
  private lastCursor: string | null;
  private lastHeard = 0;
  private closeFrame: Close | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private openTimer: ReturnType<typeof setTimeout> | undefined;
  private silenceTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private readyWaiters: Array<{ resolve: (welcome: Welcome) => void; reject: (error: Error) => void }> = [];
  private welcomeFrame: Welcome | null = null;

  constructor(options: ClientOptions) {
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? null;
    const wanted = options.transports ?? [...DEFAULT_TRANSPORTS];
    const transports = wanted.filter((name) => name !== 'websocket' || WebSocketImpl);
    if (transports.length === 0) {
      throw new Error(wanted.length === 0
        ? 'no transports: name at least one of websocket, sse, poll'
        : 'no WebSocket: pass the WebSocket option (in Node 20: import WebSocket from "ws"), or allow sse or poll');
    }
    this.options = {
      url: options.url,
      token: options.token,
      WebSocket: WebSocketImpl,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      transports,
      connectTimeout: options.connectTimeout ?? 10_000,
      pollTimeout: options.pollTimeout ?? 25_000,
      requestTimeout: options.requestTimeout ?? 10_000,
      autoRefresh: options.autoRefresh ?? true,
      roomStart: options.roomStart ?? 'unread',
      reconnect: { initialDelay: options.reconnect?.initialDelay ?? 500, maxDelay: options.reconnect?.maxDelay ?? 15_000 },
    };
    const base = new URL(options.url);
    const secure = base.protocol === 'https:' || base.protocol === 'wss:';
    this.wsUrl = `${secure ? 'wss' : 'ws'}://${base.host}/v1/ws`;
    this.http = {
      baseUrl: `${secure ? 'https' : 'http'}://${base.host}`,
      fetch: this.options.fetch,
      token: async () => this.currentToken ?? (this.currentToken = await this.freshToken()),
      renewToken: async () => (typeof this.options.token === 'function' ? (this.currentToken = await this.freshToken()) : null),
    };
    this.seen = { ...(options.positions ?? {}) };
    this.lastCursor = options.cursor ?? null;
    this.store = options.sendStore ?? defaultSendStore();
    this.network = options.networkEventTarget === undefined
      ? ((globalThis as { window?: EventTarget }).window ?? null)
      : options.networkEventTarget;
  }

  /** The last seq delivered per room: save it to resume from there in a later client (`positions`). */
  get positions(): Positions {
    return { ...this.seen };
  }

  /**
   * The SSE or long-poll cursor after the last event delivered, or null (none yet, or the
   * WebSocket is in use, which resumes by `positions`). Save it beside `positions` and pass it
   * back (`cursor`) to resume a stream across page loads.
   */
  get cursor(): string | null {
    return this.lastCursor;
  }

  /** The transport of the connection in use, or null while not connected. */
  get transport(): TransportName | null {
    return this.ready && this.connection ? this.connection.name : null;
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
    return this.listeners.on(type, listener);
  }

  /** Connects (and keeps reconnecting); resolves with the welcome once the connection has resumed. */
  connect(): Promise<Welcome> {
    const ready = this.whenReady();
    if (this.stopped) {
      this.stopped = false;
      this.tryIndex = this.workingIndex;
      this.network?.addEventListener('offline', this.onNetworkOffline);
      this.network?.addEventListener('online', this.onNetworkOnline);
      void this.open();
    }
    return ready;
  }

  /** Resolves once a connection is ready (welcomed and resumed). */
  whenReady(): Promise<Welcome> {
    if (this.ready && this.welcomeFrame) return Promise.resolve(this.welcomeFrame);
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Closes the connection for good; pending requests fail with `client_closed` (queued sends stay queued). */
  close(): void {
    this.stop();
    this.dropConnection();
    this.failAll('client_closed', 'the client was closed');
    this.emit('state', { state: 'closed' });
  }

  /**
   * Skips the wait before the next reconnect attempt and starts over from the shortest delay:
   * for a "Reconnect now" button (the client does it by itself when the network comes back, see
   * `networkEventTarget`). A connection still opening is begun afresh; an open one is kept.
   */
  retryNow(): void {
    if (this.stopped || this.opened) return;
    if (this.opening) {
      // The attempt under way is still fetching its token: if it fails, the next one goes at once.
      this.retryAtOnce = true;
      return;
    }
    // A socket begun while the network was away can only fail, after a while.
    this.dropConnection();
    clearTimeout(this.reconnectTimer);
    this.attempt = 0;
    this.tryIndex = this.workingIndex;
    void this.open();
  }

  /** Sends a request; resolves with its `ok` reply, rejects with a {@link ParleyError}. */
  request<T extends RequestType>(type: T, fields: RequestFields<T>, options: { timeout?: number } = {}): Promise<Reply<T>> {
    return this.call(type, fields as Record<string, unknown>, options.timeout ?? this.options.requestTimeout, false);
  }

  /**
   * Sends a message; `clientMsgId` names the write, so resending it never writes twice. The
   * send is put in the send store first and stays there until it is acknowledged (or refused
   * for good, e.g. `room_not_found`): one that failed for want of a connection
   * (`connection_lost`, `request_timeout`, `client_closed`) or a retryable code is sent again
   * on the next connection, by this client or, with a store that outlives it, the next one
   * (a reloaded page); those answers come as `resent` events.
   */
  send(room: string, body: string, clientMsgId: string = newId()): Promise<Reply<'send'>> {
    return this.queue({ clientMsgId, room, body, queuedAt: Date.now() }) as Promise<Reply<'send'>>;
  }

  /** The sends in the send store: not yet acknowledged. */
  queuedSends(): Promise<QueuedSend[]> {
    return this.store.list();
  }

  /**
   * Sends a direct message to user `to` (the DM room `dm:<a>:<b>` is made on first use);
   * `clientMsgId` names the write, and the send store keeps it until acknowledged, as for `send`.
   */
  sendDm(to: string, body: string, clientMsgId: string = newId()): Promise<Reply<'send_dm'>> {
    return this.queue({ clientMsgId, to, body, queuedAt: Date.now() }) as Promise<Reply<'send_dm'>>;
  }

  /**
   * Creates a room with you as its owner. Creating it again with the same settings answers
   * the room's current seq; anything else is `room_exists`.
   */
  createRoom(room: string, options: { visibility?: 'public' | 'private'; topic?: string } = {}): Promise<Reply<'create_room'>> {
    return this.request('create_room', { room, ...options });
  }

  /** Joins a public room, or a private one you were invited to. */
  join(room: string): Promise<Reply<'join'>> {
    return this.request('join', { room });
  }

  /** A page of the room's events before seq `before` (the newest without it), oldest first; `limit` 1–200, default 50. */
  history(room: string, options: { before?: number; limit?: number } = {}): Promise<Reply<'history'>> {
    return this.request('history', { room, ...options });
  }

  /** Moves your read marker in `room` to `seq` (a seq past the room's last counts as its last). */
  markRead(room: string, seq: number): Promise<Reply<'mark_read'>> {
    return this.request('mark_read', { room, seq });
  }

  /** Says the user is typing in `room`. It has no reply, and is dropped while not connected (it is ephemeral). */
  typing(room: string): void {
    if (this.ready) this.connection?.notify({ type: 'typing', room });
  }

  /**
   * Renews the connection's token now with one from the token callback (it is also done by
   * itself before expiry). A WebSocket sends `refresh`; an SSE stream or a poll cannot, so it
   * reconnects at once with the new token from its cursor (nothing is missed).
   */
  async refresh(): Promise<Reply<'refresh'>> {
    const token = await this.freshToken();
    let reply: Reply<'refresh'>;
    if (this.connection?.name === 'websocket' || !this.connection) {
      reply = await this.request('refresh', { token });
      this.currentToken = token;
    } else {
      this.currentToken = token;
      this.dropConnection();
      this.tryIndex = this.workingIndex;
      void this.open(token);
      reply = { tokenExpiresIn: tokenExpiresIn(token) };
    }
    this.scheduleRefresh(reply.tokenExpiresIn);
    this.emit('refreshed', { tokenExpiresIn: reply.tokenExpiresIn });
    return reply;
  }

  /**
   * Opens a collaboratively edited document: its text, kept in step with the server's by OT
   * as you edit it and others do (see `ParleyDocument`). Needs the WebSocket transport.
   */
  openDocument(doc: string): Promise<ParleyDocument> {
    return ParleyDocument.open(this, doc);
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

  /** Opens a connection over the transport at `tryIndex`; `token` when the caller just got one. */
  private async open(token?: string): Promise<void> {
    const name = this.options.transports[this.tryIndex];
    // A reconnect announced itself when it was scheduled.
    if (this.attempt === 0) this.emit('state', { state: 'connecting', transport: name });
    if (token === undefined) {
      this.opening = true;
      try {
        token = await this.freshToken();
      } catch (error) {
        this.emit('error', error as Error);
        this.scheduleReconnect();
        return;
      } finally {
        this.opening = false;
      }
    }
    if (this.stopped || this.connection) return;
    this.currentToken = token;
    this.closeFrame = null;
    this.opened = false;
    let connection: Transport | null = null;
    const current = () => connection !== null && connection === this.connection;
    const handler: TransportHandler = {
      frame: (frame) => {
        if (current()) this.onFrame(frame);
      },
      cursor: (cursor) => {
        if (current()) this.lastCursor = cursor;
      },
      polling: () => {
        if (current()) this.onOpened(pollWelcome(token!));
      },
      ended: (refusal) => {
        if (current()) this.onEnded(refusal);
      },
    };
    // SSE and long-polling resume by cursor; without one (never had one, or the WebSocket was
    // in use) each room starts after its read marker, and healGaps fills in from `positions`.
    const cursor = this.lastCursor;
    connection =
      name === 'websocket'
        ? new WebSocketTransport(this.options.WebSocket!, this.wsUrl, token, handler)
        : name === 'sse'
          ? new SseTransport(this.http, cursor, handler)
          : new PollTransport(this.http, cursor, this.options.pollTimeout, handler);
    this.connection = connection;
    clearTimeout(this.openTimer);
    this.openTimer = setTimeout(() => {
      if (!current() || this.opened) return;
      this.dropConnection();
      this.onEnded();
    }, this.options.connectTimeout);
  }

  private onFrame(frame: ServerFrame): void {
    this.lastHeard = Date.now();
    const { type, ...fields } = frame;
    if (this.opened && !this.ready && type !== 'ping' && type !== 'close') {
      this.beforeReady.push(frame);
      return;
    }
    switch (type) {
      case 'welcome':
        this.emit('welcome', fields as unknown as Welcome);
        this.onOpened(fields as unknown as Welcome);
        break;
      case 'ping':
        this.connection?.notify({ type: 'pong' });
        this.emit('ping', {});
        return;
      case 'event':
        this.onEvent(fields as unknown as RoomEvent);
        break;
      case 'reload':
        // The room is sent again from seq 1: forget its position so those events come through.
        this.seen[fields.room] = 0;
        this.healing.delete(fields.room);
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

  private onEvent(event: RoomEvent): void {
    const held = this.healing.get(event.room);
    if (held) {
      held.push(event);
      return;
    }
    // The server sends each event once per connection; across connections a resume can
    // overlap what was delivered, so a seq already seen is dropped here.
    if (event.seq <= (this.seen[event.room] ?? 0)) return;
    this.seen[event.room] = event.seq;
    this.emit('event', event);
  }

  /** The connection is open: a WebSocket resumes by `positions`, SSE and long-polling are resumed already. */
  private onOpened(welcome: Welcome): void {
    this.opened = true;
    clearTimeout(this.openTimer);
    this.workingIndex = this.tryIndex;
    this.welcomeFrame = welcome;
    if (welcome.tokenExpiresIn !== undefined) this.scheduleRefresh(welcome.tokenExpiresIn);
    const connection = this.connection!;
    if (connection.name !== 'websocket') {
      if (this.lastCursor === null) this.healGaps(connection);
      this.onReady(welcome);
      return;
    }
    this.watchSilence(welcome);
    if (isWorkerSession(welcome)) {
      // A worker session takes only pings and the worker requests: it has no rooms to resume.
      this.onReady(welcome);
      return;
    }
    // Positions are what a WebSocket resumes from; a cursor kept from a stream before would be stale.
    this.lastCursor = null;
    this.resume(connection).then(
      (resumed) => {
        if (resumed) this.onReady(welcome);
      },
      (error: Error) => {
        // connection_lost: the socket is already gone and reconnecting; otherwise start over.
        if (connection !== this.connection) return;
        this.emit('error', error);
        this.dropConnection();
        this.onEnded();
      },
    );
  }

  /**
   * Resumes every room on a new WebSocket from `positions`; with `roomStart: 'latest'` the
   * rooms without one are first placed at their newest event. False if the connection was
   * replaced meanwhile.
   */
  private async resume(connection: Transport): Promise<boolean> {
    if (this.options.roomStart === 'latest') {
      const list: Reply<'list_rooms'> = await this.call('list_rooms', {}, this.options.requestTimeout, true);
      if (connection !== this.connection) return false;
      for (const entry of list.rooms) {
        if (entry.lastSeq !== undefined) this.seen[entry.room] ??= entry.lastSeq;
      }
      this.emit('rooms', { rooms: list.rooms });
    }
    const rooms = this.positions;
    const reply: Reply<'resume'> = await this.call('resume', Object.keys(rooms).length > 0 ? { rooms } : {}, this.options.requestTimeout, true);
    // Rooms this client did not name resume after the read marker: start counting there.
    for (const [room, seq] of Object.entries(reply.rooms)) this.seen[room] ??= seq;
    return connection === this.connection;
  }

  private onReady(welcome: Welcome): void {
    // Backoff starts over only now: a node that welcomes and then fails every resume is not hammered.
    this.attempt = 0;
    this.ready = true;
    this.emit('state', { state: 'open', transport: this.connection!.name });
    const connection = this.connection;
    for (const frame of this.beforeReady.splice(0)) {
      // A listener of 'open' may have closed the client: what was held is dropped with it.
      if (this.connection !== connection) break;
      this.onFrame(frame);
    }
    for (const entry of this.waiting.splice(0)) this.dispatch(entry);
    for (const waiter of this.readyWaiters.splice(0)) waiter.resolve(welcome);
    // A worker may not send: a store shared with the page's user (IndexedDB) stays theirs.
    if (!isWorkerSession(welcome)) void this.resendQueued();
  }

  /**
   * An SSE stream or a poll without a cursor starts each room after its read marker, which
   * may be past what this client delivered (`positions`, from a WebSocket before or a saved
   * copy). Each room with a position is caught up from history meanwhile, its live events
   * held, then those released: every event once, in order, as a resume would give them.
   */
  private healGaps(connection: Transport): void {
    for (const [room, after] of Object.entries(this.seen)) {
      if (this.healing.has(room)) continue;
      const held: RoomEvent[] = [];
      this.healing.set(room, held);
      void this.eventsAfter(connection, room, after).then(
        (missed) => this.release(room, held, missed),
        () => this.release(room, held, []),
      );
    }
  }

  private release(room: string, held: RoomEvent[], missed: RoomEvent[]): void {
    if (this.healing.get(room) !== held) return;
    this.healing.delete(room);
    for (const event of [...missed, ...held]) this.onEvent(event);
  }

  /** The room's events after `after`, oldest first, read back page by page from the newest. */
  private async eventsAfter(connection: Transport, room: string, after: number): Promise<RoomEvent[]> {
    const pages: RoomEvent[][] = [];
    let before: number | undefined;
    for (;;) {
      const fields: Record<string, unknown> = { room, limit: 200, ...(before === undefined ? {} : { before }) };
      const page = (await connection.request({ type: 'history', id: String(this.nextId++), ...fields })) as unknown as Reply<'history'>;
      pages.unshift(page.events.filter((event) => event.seq > after).map((event) => ({ ...event, room })));
      const oldest = page.events[0]?.seq;
      if (!page.hasMore || oldest === undefined || oldest <= after + 1) return pages.flat();
      before = oldest;
    }
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
        this.dropConnection();
        this.onEnded();
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
    if (typeof this.options.token !== 'function' || !this.options.autoRefresh || !(expiresIn > 0)) return;
    const at = Math.min(expiresIn * 0.9, Math.max(expiresIn - MINUTE, expiresIn / 2));
    this.refreshTimer = setTimeout(() => {
      this.refresh().catch((error: Error) => this.emit('error', error));
    }, at);
  }

  /**
   * The connection ended, or could not be opened. One that never opened gives way to the next
   * transport at once, unless the node answered `unavailable`; when none is left, or one that
   * was open ends, the client reconnects after a backoff, from the transport that last worked.
   */
  private onEnded(refusal?: ParleyError): void {
    const wasOpen = this.opened;
    this.connection = null;
    this.ready = false;
    this.opened = false;
    clearTimeout(this.openTimer);
    clearTimeout(this.silenceTimer);
    clearTimeout(this.refreshTimer);
    this.healing.clear();
    this.beforeReady = [];
    if (this.stopped) return;
    const close = this.closeFrame;
    if (close && FINAL_CLOSE_CODES.has(close.code)) {
      const error = new Error(`the server closed the connection for good: ${close.code} ${close.reason}`);
      this.stop();
      this.failAll('client_closed', error.message);
      for (const waiter of this.readyWaiters.splice(0)) waiter.reject(error);
      this.emit('error', error);
      this.emit('state', { state: 'closed' });
      return;
    }
    if (refusal && CURSOR_REFUSALS.has(refusal.code) && this.lastCursor !== null) {
      // The cursor is refused (expired, malformed, naming a room since left): start after the
      // read markers instead, positions filling the gaps.
      this.emit('error', refusal);
      this.lastCursor = null;
      void this.open();
      return;
    }
    if (!wasOpen && refusal?.code !== 'unavailable' && this.tryIndex + 1 < this.options.transports.length) {
      this.tryIndex += 1;
      void this.open();
      return;
    }
    // A node that answers `unavailable` is busy (starting as many sessions as it may, say), not
    // unreachable by this transport: another transport would only add to its load, so back off.
    this.tryIndex = wasOpen ? this.workingIndex : 0;
    this.scheduleReconnect(refusal?.retryAfter);
  }

  /**
   * Exponential backoff with "equal jitter": half the step fixed, half random, so clients dropped
   * together spread out; never sooner than the server's `Retry-After` (`retryAfter`, seconds).
   */
  private scheduleReconnect(retryAfter?: number): void {
    if (this.stopped) return;
    this.attempt += 1;
    const { initialDelay, maxDelay } = this.options.reconnect;
    const step = Math.min(maxDelay, initialDelay * 2 ** (this.attempt - 1));
    const backoff = this.retryAtOnce ? 0 : step / 2 + Math.random() * (step / 2);
    const wait = Math.max(backoff, (retryAfter ?? 0) * 1000);
    this.retryAtOnce = false;
    this.emit('state', { state: 'reconnecting', attempt: this.attempt, delay: wait });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.open(), wait);
  }

  /** No more connections: the reconnect timer and the platform's network events are let go. */
  private stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.network?.removeEventListener('offline', this.onNetworkOffline);
    this.network?.removeEventListener('online', this.onNetworkOnline);
  }

  /** The platform says the network is gone: the connection is dead or soon will be; reconnect attempts go on. */
  private readonly onNetworkOffline = (): void => {
    if (this.stopped || !this.connection) return;
    this.dropConnection();
    this.onEnded();
  };

  /** The network is back: try now rather than at the backoff's next attempt. */
  private readonly onNetworkOnline = (): void => this.retryNow();

  private dropConnection(): void {
    const connection = this.connection;
    if (!connection) return;
    this.connection = null;
    this.ready = false;
    this.opened = false;
    this.beforeReady = [];
    clearTimeout(this.openTimer);
    connection.close();
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
          this.inFlight.delete(entry);
          this.waiting = this.waiting.filter((w) => w !== entry);
          reject(new ParleyError('request_timeout', `no reply to ${type} within ${timeout} ms`));
        }, timeout),
      };
      if (early || this.ready) this.dispatch(entry);
      else this.waiting.push(entry);
    });
  }

  private dispatch(entry: Pending): void {
    const settle = (act: () => void) => {
      if (!this.inFlight.delete(entry)) return;
      clearTimeout(entry.timer);
      act();
    };
    this.inFlight.add(entry);
    const connection = this.connection;
    const reply = connection
      ? connection.request(entry.frame)
      : Promise.reject(new ParleyError('connection_lost', `the connection dropped before ${entry.type} was sent`));
    reply.then(
      (fields) => settle(() => entry.resolve(fields)),
      (error: Error) => settle(() => entry.reject(error)),
    );
  }

  private failAll(code: 'client_closed', message: string): void {
    for (const entry of [...this.inFlight, ...this.waiting]) {
      clearTimeout(entry.timer);
      entry.reject(new ParleyError(code, message));
    }
    this.inFlight.clear();
    this.waiting = [];
    this.healing.clear();
    clearTimeout(this.openTimer);
    clearTimeout(this.silenceTimer);
    clearTimeout(this.refreshTimer);
  }

  // The send queue.

  /** Puts a send in the store, then sends it. */
  private async queue(send: QueuedSend): Promise<Reply<'send'> | Reply<'send_dm'>> {
    this.sending.add(send.clientMsgId);
    try {
      await this.store.put(send);
      return await this.sendQueued(send);
    } finally {
      this.sending.delete(send.clientMsgId);
    }
  }

  /** Sends a queued send; forgets it once acknowledged or refused for good. */
  private async sendQueued(send: QueuedSend): Promise<Reply<'send'> | Reply<'send_dm'>> {
    const { clientMsgId, body } = send;
    try {
      const reply = send.to !== undefined
        ? await this.request('send_dm', { to: send.to, clientMsgId, body })
        : await this.request('send', { room: send.room!, clientMsgId, body });
      await this.store.delete(send.clientMsgId);
      return reply;
    } catch (error) {
      if (!(error instanceof ParleyError && KEEP_QUEUED.has(error.code))) await this.store.delete(send.clientMsgId);
      throw error;
    }
  }

  /** On each new connection: the store's sends not under way already, once each, oldest first. */
  private async resendQueued(): Promise<void> {
    let queued: QueuedSend[];
    try {
      queued = await this.store.list();
    } catch (error) {
      this.emit('error', error as Error);
      return;
    }
    for (const send of queued) {
      if (this.sending.has(send.clientMsgId) || !this.ready) continue;
      this.sending.add(send.clientMsgId);
      try {
        this.emit('resent', { send, reply: await this.sendQueued(send) });
      } catch (error) {
        this.emit('resent', { send, error: error as Error });
      } finally {
        this.sending.delete(send.clientMsgId);
      }
    }
  }

  private async freshToken(): Promise<string> {
    const source = this.options.token;
    return typeof source === 'function' ? await source() : source;
  }

  /** A REST call with the connection's token; a token that expired meanwhile is replaced once from the callback. */
  private async rest<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<T> {
    return (await callRest(this.http, { method, path, body, headers }, signal)).answer as T;
  }

  private emit<K extends keyof ClientEvents>(type: K, value: ClientEvents[K]): void {
    this.listeners.emit(type, value);
  }
}

/** The JWT's claims, read without checking it (the node checks it): only for its `sub` and `exp`. */
function claims(token: string): { sub?: string; exp?: number } {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

/**
 * Whether the connection was opened with the worker key (docs/jobs.md, Workers over the
 * WebSocket): its welcome names the user `worker` and, the key never expiring, no token lifetime
 * (a user's token always has one).
 */
function isWorkerSession(welcome: Welcome): boolean {
  return welcome.user === 'worker' && welcome.tokenExpiresIn === undefined;
}

/** Milliseconds the token has left by its `exp`, by this machine's clock. */
function tokenExpiresIn(token: string): number {
  const exp = claims(token).exp;
  return exp === undefined ? 0 : exp * 1000 - Date.now();
}

/**
 * Long-polling has no welcome (docs/transports.md): what `connect()` resolves with there is
 * the user and token lifetime its token names, with no session or node (empty strings).
 */
function pollWelcome(token: string): Welcome {
  return { user: claims(token).sub ?? '', session: '', node: '', protocol: 1, tokenExpiresIn: tokenExpiresIn(token) };
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
