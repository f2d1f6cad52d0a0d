import { ParleyError } from './errors.js';
import type { ErrorCode } from './protocol.js';

/** The node's HTTP side as the client uses it: its base URL, `fetch` and the token. */
export interface HttpContext {
  /** `http(s)://host`, without a trailing slash. */
  readonly baseUrl: string;
  readonly fetch: typeof fetch;
  /** The token of the current connection (fetched from the token source if there is none yet). */
  token(): Promise<string>;
  /** A new token from the callback after a 401, or null when the token is a fixed string. */
  renewToken(): Promise<string | null>;
}

/** A REST call: the protocol request it carries, as docs/transports.md (REST) maps it. */
export interface RestCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Turns the REST answer into the WebSocket `ok` reply's fields (jobs answer the job itself). */
  reply?: (answer: any, status: number) => Record<string, unknown>;
}

/**
 * Calls the node with the token in `Authorization`; a 401 is tried once more with a token
 * from the callback (the old one may have expired meanwhile). The answer's JSON on success; a
 * refusal throws a {@link ParleyError} with the wire code and the HTTP status.
 */
export async function callRest(http: HttpContext, call: RestCall, signal?: AbortSignal): Promise<{ answer: any; status: number }> {
  const attempt = (token: string) =>
    http.fetch(http.baseUrl + call.path, {
      method: call.method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(call.body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...call.headers,
      },
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      signal,
    });
  let response = await attempt(await http.token());
  if (response.status === 401) {
    const renewed = await http.renewToken();
    if (renewed !== null) {
      await response.body?.cancel();
      response = await attempt(renewed);
    }
  }
  if (!response.ok) throw await refusal(response);
  const text = await response.text();
  return { answer: text ? JSON.parse(text) : undefined, status: response.status };
}

/**
 * The `ParleyError` of a non-2xx answer: `{"type":"error","code":…,"message":…}` with its status,
 * and its `Retry-After` when it gives one in seconds.
 */
export async function refusal(response: Response): Promise<ParleyError> {
  const retryAfter = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
  let body: Record<string, any> = {};
  try {
    const text = await response.text();
    body = text ? JSON.parse(text) : {};
  } catch {
    // A proxy's HTML error page: the status is all there is.
  }
  return new ParleyError(
    (body.code ?? 'unavailable') as ErrorCode, body.message ?? `HTTP ${response.status}`, response.status, body,
    Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined,
  );
}

const enc = encodeURIComponent;

/** A job id is `<queue>:<partition>:<hex>`: keep its colons, escape anything else. */
export function jobPath(id: string): string {
  return id.split(':').map(enc).join(':');
}

function query(params: Record<string, unknown>): string {
  const pairs = Object.entries(params).filter(([, value]) => value !== undefined);
  return pairs.length === 0 ? '' : `?${pairs.map(([key, value]) => `${key}=${enc(String(value))}`).join('&')}`;
}

/**
 * The REST form of a protocol request (docs/transports.md, REST; docs/jobs.md for jobs), or
 * null for a request REST does not carry (document subscriptions and cursors, `doc_ops`,
 * worker requests): over SSE and long-polling those are refused with `not_supported`.
 * `resume` and `refresh` never get here: an SSE stream or a poll resumes by its cursor and
 * renews its token by reconnecting.
 */
export function restCallOf(type: string, f: Record<string, any>): RestCall | null {
  const room = f.room === undefined ? '' : `/v1/rooms/${enc(f.room)}`;
  const key = (id: string | undefined): Record<string, string> => (id === undefined ? {} : { 'Idempotency-Key': id });
  const ifMatch = (version: number | undefined): Record<string, string> => (version === undefined ? {} : { 'If-Match': `"${version}"` });
  switch (type) {
    case 'list_rooms':
      return { method: 'GET', path: '/v1/rooms' };
    case 'create_room':
      return { method: 'POST', path: '/v1/rooms', body: { room: f.room, visibility: f.visibility, topic: f.topic } };
    case 'join':
    case 'leave':
      return { method: 'POST', path: `${room}/${type}` };
    case 'invite':
      return { method: 'POST', path: `${room}/invite`, body: { user: f.user } };
    case 'remove_member':
      return { method: 'DELETE', path: `${room}/members/${enc(f.user)}` };
    case 'list_members':
      return { method: 'GET', path: `${room}/members` };
    case 'set_topic':
      return { method: 'PUT', path: `${room}/topic`, body: { topic: f.topic }, headers: ifMatch(f.ifVersion) };
    case 'history':
      return { method: 'GET', path: `${room}/messages${query({ before: f.before, limit: f.limit })}` };
    case 'send':
      return { method: 'POST', path: `${room}/messages`, body: { body: f.body }, headers: key(f.clientMsgId) };
    case 'edit':
      return { method: 'PATCH', path: `${room}/messages/${enc(f.target)}`, body: { body: f.body }, headers: key(f.clientMsgId) };
    case 'delete':
      return { method: 'DELETE', path: `${room}/messages/${enc(f.target)}`, headers: key(f.clientMsgId) };
    case 'mark_read':
      return { method: 'POST', path: `${room}/read`, body: { seq: f.seq } };
    case 'typing':
      return { method: 'POST', path: `${room}/typing` };
    case 'export_room':
      return { method: 'POST', path: `${room}/export` };
    case 'send_dm':
      return { method: 'POST', path: `/v1/dm/${enc(f.to)}`, body: { body: f.body }, headers: key(f.clientMsgId) };
    case 'doc_create':
      return { method: 'POST', path: '/v1/docs', body: { doc: f.doc, text: f.text, editors: f.editors, room: f.room } };
    case 'doc_open':
      return { method: 'GET', path: `/v1/docs/${enc(f.doc)}` };
    case 'doc_submit':
      return { method: 'POST', path: `/v1/docs/${enc(f.doc)}/ops`, body: { revision: f.revision, op: f.op, clientOpId: f.clientOpId } };
    case 'job_submit':
      // A repeated Idempotency-Key answers 200 with the job as it is, a new job 201 (docs/jobs.md).
      return {
        method: 'POST',
        path: `/v1/queues/${enc(f.queue)}/jobs`,
        body: f.job ?? {},
        headers: key(f.idempotencyKey),
        reply: (job, status) => (status === 200 && f.idempotencyKey !== undefined ? { job, duplicate: true } : { job }),
      };
    case 'job_status':
      return {
        method: 'GET',
        path: `/v1/jobs/${jobPath(f.job)}${query({ after: f.after, wait: f.after === undefined ? undefined : f.waitMs })}`,
        reply: (job) => ({ job }),
      };
    case 'job_cancel':
      return { method: 'DELETE', path: `/v1/jobs/${jobPath(f.job)}`, headers: ifMatch(f.ifVersion), reply: (job) => ({ job }) };
    case 'ping':
      // No ping over REST: a round trip to the node's info is the same measure.
      return { method: 'GET', path: '/v1/info', reply: () => ({}) };
    default:
      return null;
  }
}
