import { ParleyError } from './errors.js';
import { callRest, refusal, restCallOf, type HttpContext } from './http.js';
import { SseParser } from './sse.js';

/**
 * How frames reach the node and back (docs/transports.md): a WebSocket both ways, or Server-Sent
 * Events (`GET /v1/events`) or long-polling (`GET /v1/poll`) for pushes with REST for requests.
 */
export type TransportName = 'websocket' | 'sse' | 'poll';

/** The order the client tries them in, unless told otherwise (`transports`). */
export const DEFAULT_TRANSPORTS: readonly TransportName[] = ['websocket', 'sse', 'poll'];

/** What this client needs of a WebSocket: the browser's and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  /** Left alone by the client, which waits for the `welcome` frame instead. */
  onopen: ((event: any) => void) | null;
  /** Set by the client: each message, its `data` read as text. */
  onmessage: ((event: any) => void) | null;
  /** Set by the client: the socket closed, also after a failed connection. */
  onclose: ((event: any) => void) | null;
  /** Set by the client (and ignored: an `onclose` follows). */
  onerror: ((event: any) => void) | null;
  /** Sends one text frame. */
  send(data: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
}
/** A WebSocket class: the browser's `WebSocket`, or in Node the `ws` package's default export. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A frame from the server. */
export interface ServerFrame {
  type: string;
  id?: string;
  [field: string]: any;
}

/** A request frame: its `type`, its `id` and its fields. */
export interface RequestFrame {
  type: string;
  id: string;
  [field: string]: unknown;
}

/** What a transport reports to the client running it. */
export interface TransportHandler {
  /** A frame that answers no request (a push), in the order the server sent it. */
  frame(frame: ServerFrame): void;
  /**
   * The SSE or long-poll cursor after the frames given so far (SSE: after an event with an
   * `id:`; long-poll: after each answer, events or none, so also once at the start).
   */
  cursor(cursor: string): void;
  /**
   * Long-polling only, which has no welcome: its first poll was answered, so the way to the
   * node works. Called before that answer's frames.
   */
  polling(): void;
  /**
   * The connection ended or could not be made. `refusal` is the node's answer when it refused
   * to start a stream or a poll (a token, a cursor), absent for a network failure or an end.
   */
  ended(refusal?: ParleyError): void;
}

/**
 * One connection over one transport. Requests return the `ok` reply's fields (without `type`
 * and `id`) or reject with a {@link ParleyError}: `connection_lost` when the way to the node
 * broke with the request in flight (it may or may not have been carried out).
 */
export interface Transport {
  readonly name: TransportName;
  request(frame: RequestFrame): Promise<Record<string, unknown>>;
  /** A frame that has no reply (`pong`, `typing`); dropped if it cannot be sent now. */
  notify(frame: { type: string; [field: string]: unknown }): void;
  /** Ends the connection; the handler hears nothing more from it. */
  close(): void;
}

const PROTOCOL = 'parley.v1';

/** Frames both ways over `GET /v1/ws`; replies are matched to requests by `id`. */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  private readonly socket: WebSocketLike;
  private readonly replies = new Map<string, { type: string; resolve: (fields: any) => void; reject: (error: Error) => void }>();
  private closed = false;

  constructor(WebSocket: WebSocketConstructor, url: string, token: string, private readonly handler: TransportHandler) {
    // The token rides in a subprotocol entry: a browser cannot set an Authorization header on a WebSocket.
    this.socket = new WebSocket(url, [PROTOCOL, `bearer.${token}`]);
    this.socket.onmessage = (event) => this.onMessage(String(event.data));
    this.socket.onclose = () => this.end();
    // A failed connection is followed by onclose.
    this.socket.onerror = () => {};
  }

  request(frame: RequestFrame): Promise<Record<string, unknown>> {
    if (this.closed || this.socket.readyState !== 1) {
      return Promise.reject(new ParleyError('connection_lost', `the connection dropped before ${frame.type} was sent`));
    }
    return new Promise((resolve, reject) => {
      this.replies.set(frame.id, { type: frame.type, resolve, reject });
      this.socket.send(JSON.stringify(frame));
    });
  }

  notify(frame: { type: string; [field: string]: unknown }): void {
    if (!this.closed && this.socket.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // No-ops rather than null: the ws package throws an 'error' event nobody listens to.
    this.socket.onmessage = this.socket.onclose = this.socket.onerror = () => {};
    try {
      this.socket.close();
    } catch {
      // A socket still connecting may refuse to close; it is forgotten either way.
    }
    this.failReplies();
  }

  private onMessage(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    const reply = frame.id === undefined ? undefined : this.replies.get(frame.id);
    if (reply && (frame.type === 'ok' || frame.type === 'error' || frame.type === 'pong')) {
      this.replies.delete(frame.id!);
      const { type, id, ...fields } = frame;
      if (type === 'error') reply.reject(new ParleyError(fields.code, fields.message, undefined, fields, fields.retryAfter));
      else reply.resolve(fields);
      return;
    }
    this.handler.frame(frame);
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.failReplies();
    this.handler.ended();
  }

  private failReplies(): void {
    for (const [id, reply] of this.replies) {
      this.replies.delete(id);
      reply.reject(new ParleyError('connection_lost', `the connection dropped before ${reply.type} was answered`));
    }
  }
}

/** Requests over REST, as both HTTP transports send them. */
abstract class HttpTransport implements Transport {
  abstract readonly name: TransportName;
  protected readonly abort = new AbortController();
  protected closed = false;

  constructor(protected readonly http: HttpContext, protected readonly handler: TransportHandler) {}

  async request(frame: RequestFrame): Promise<Record<string, unknown>> {
    const { type, id, ...fields } = frame;
    const call = restCallOf(type, fields);
    if (!call) throw new ParleyError('not_supported', `${type} is not carried over ${this.name}: it needs a WebSocket`);
    let result: { answer: any; status: number };
    try {
      // Not this transport's signal: a request already sent goes on while the stream is replaced.
      result = await callRest(this.http, call);
    } catch (error) {
      if (error instanceof ParleyError) throw error;
      throw new ParleyError('connection_lost', `${type} got no answer: ${(error as Error).message}`);
    }
    return call.reply ? call.reply(result.answer, result.status) : (result.answer ?? {});
  }

  notify(frame: { type: string; [field: string]: unknown }): void {
    if (frame.type !== 'typing') return;
    const { type, ...fields } = frame;
    const call = restCallOf(type, fields);
    if (call) callRest(this.http, call).catch(() => {});
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
  }

  protected end(refused?: ParleyError): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.handler.ended(refused);
  }

  /** Delivers one frame in JSON; one the client cannot read is skipped, as over a WebSocket. */
  protected deliver(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    this.handler.frame(frame);
  }
}

/**
 * Pushes as Server-Sent Events over one `GET /v1/events` read through `fetch` (so the token
 * goes in a header, not the URL), parsed by {@link SseParser}. The stream starts from the
 * cursor given, or after the read markers; each event's `id:` is the cursor after it.
 */
export class SseTransport extends HttpTransport {
  readonly name = 'sse';

  constructor(http: HttpContext, cursor: string | null, handler: TransportHandler) {
    super(http, handler);
    void this.run(cursor);
  }

  private async run(cursor: string | null): Promise<void> {
    try {
      const path = `/v1/events${cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`}`;
      const response = await this.http.fetch(this.http.baseUrl + path, {
        headers: { Authorization: `Bearer ${await this.http.token()}`, Accept: 'text/event-stream' },
        signal: this.abort.signal,
      });
      if (!response.ok || !response.body) {
        this.end(response.ok ? undefined : await refusal(response));
        return;
      }
      const parser = new SseParser((event) => {
        if (this.closed) return;
        this.deliver(event.data);
        if (event.hasId) this.handler.cursor(event.lastEventId);
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.closed) break;
        parser.feed(value);
      }
    } catch {
      // A network failure, or close() aborting the read: end() tells them apart.
    }
    this.end();
  }
}

/**
 * Pushes in batches over `GET /v1/poll`, one poll after another, each from the cursor the
 * last one answered. The first poll has `timeout=0`, so it answers at once and proves the way
 * works; the next ones are held by the node up to `pollTimeout`.
 */
export class PollTransport extends HttpTransport {
  readonly name = 'poll';

  constructor(http: HttpContext, cursor: string | null, private readonly pollTimeout: number, handler: TransportHandler) {
    super(http, handler);
    void this.run(cursor);
  }

  private async run(start: string | null): Promise<void> {
    let cursor = start;
    let first = true;
    try {
      while (!this.closed) {
        const params = `${cursor === null ? '' : `cursor=${encodeURIComponent(cursor)}&`}timeout=${first ? 0 : this.pollTimeout}ms`;
        const response = await this.http.fetch(`${this.http.baseUrl}/v1/poll?${params}`, {
          headers: { Authorization: `Bearer ${await this.http.token()}` },
          signal: this.abort.signal,
        });
        if (!response.ok) {
          this.end(await refusal(response));
          return;
        }
        const answer = (await response.json()) as { cursor?: string; events: unknown[] };
        if (this.closed) return;
        if (first) this.handler.polling();
        first = false;
        let ended = false;
        for (const frame of answer.events) {
          if (this.closed) return;
          this.handler.frame(frame as ServerFrame);
          // A close frame ends the session (token expiry, node shutdown); the next poll is a new connection.
          if ((frame as ServerFrame).type === 'close') ended = true;
        }
        if (this.closed) return;
        if (answer.cursor !== undefined) {
          cursor = answer.cursor;
          this.handler.cursor(cursor);
        }
        if (ended) break;
      }
    } catch {
      // A network failure, or close() aborting the poll.
    }
    this.end();
  }
}
