// Protocol v1 frames, written from docs/asyncapi.json (components.schemas) and docs/jobs.md.
// test/spec.test.js compares the enums here (error codes, push types, event kinds, close codes)
// with asyncapi.json, so a code added to the server fails the test until it is added here.

/** docs/asyncapi.json ErrorCode: the stable machine code of a refused request. */
export const ERROR_CODES = [
  'bad_frame', 'unknown_type', 'missing_field', 'bad_field', 'bad_text', 'frame_too_large',
  'body_too_large', 'bad_user_id', 'bad_room_id', 'bad_doc_id', 'bad_cursor', 'bad_timeout',
  'route_not_found', 'method_not_allowed',
  'token_missing', 'token_malformed', 'token_invalid', 'token_expired', 'token_lifetime_too_long',
  'token_issued_in_future', 'token_user_mismatch', 'origin_not_allowed', 'room_not_found',
  'room_exists', 'not_a_member', 'not_invited', 'forbidden', 'message_not_found', 'cursor_stale',
  'cursor_ahead', 'doc_not_found', 'doc_exists', 'bad_operation', 'base_length_mismatch',
  'bad_revision', 'resync_required', 'document_too_large', 'queue_not_found', 'job_not_found',
  'job_key_taken', 'idempotency_conflict', 'job_finished', 'lease_lost', 'version_mismatch',
  'rate_limited', 'unavailable', 'timeout', 'cursor_expired', 'export_not_found', 'job_not_completed',
] as const;

/** A code the server sends. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * REST-only codes of the server and worker keys (docs/jobs.md, Errors): not in the WebSocket
 * ErrorCode enum, since no WebSocket request can get them.
 */
export type KeyErrorCode =
  | 'server_key_missing' | 'server_key_invalid' | 'worker_key_missing' | 'worker_key_invalid';

/** Who may join a room: anyone (`public`), or those invited (`private`). */
export type Visibility = 'public' | 'private';
/** Last seq per room. */
export type Positions = Record<string, number>;

/** Every kind of room event (docs/asyncapi.json EventKind); the table in docs/protocol.md, Pushes, lists each one's fields. */
export const EVENT_KINDS = [
  'created', 'joined', 'left', 'invited', 'removed', 'topic', 'message', 'edited', 'deleted',
] as const;
/** What a room event records. */
export type EventKind = (typeof EVENT_KINDS)[number];

/** One event of a room's timeline (docs/protocol.md, Pushes). */
export interface RoomEvent {
  room: string;
  seq: number;
  ts: string;
  kind: EventKind;
  /** Who did it (for invited and removed: whom it was done to). */
  user: string;
  by?: string;
  clientMsgId?: string;
  body?: string;
  target?: number;
  topic?: string;
  visibility?: Visibility;
  /** In history and catch-up: a message a later edit changed. */
  edited?: true;
  /** In history and catch-up: a message later deleted (no body). */
  deleted?: true;
}

/**
 * The server's first frame on a WebSocket: whose connection it is, its session and node, and
 * in milliseconds the heartbeat interval and timeout and how long the token has left.
 */
export interface Welcome {
  user: string;
  session: string;
  node: string;
  protocol: 1;
  pingInterval?: number;
  pingTimeout?: number;
  tokenExpiresIn?: number;
}

/** Someone is typing in a room (ephemeral, never journaled). */
export interface TypingPush { room: string; user: string }
/** A member moved their read marker in a room to `seq`. */
export interface ReadPush { room: string; user: string; seq: number }
/** The recipient of your direct message at `seq` received it (`delivered`) or marked it `read`. */
export interface Receipt { room: string; seq: number; user: string; status: 'delivered' | 'read' }
/** A user came online (at least one WebSocket or SSE connection) or went offline; `lastSeen` as in `list_members`. */
export interface Presence { user: string; status: 'online' | 'offline'; lastSeen?: string }
/** You read too slowly and your buffer filled: delivery continues by itself after these positions (nothing to do). */
export interface Lagged { rooms: Positions }
/** After a `resume` answered `pending`: the room list was read; every room followed now. */
export interface ResumeComplete { rooms: Positions }
/** Your position in the room cannot be trusted: its events come again from seq 1, so drop what you hold of it. */
export interface Reload { room: string; code: 'cursor_stale' | 'cursor_ahead'; message: string }
/** SSE and long-poll only (listed here as the protocol's): re-read the jobs you follow. */
export interface JobsReset { code: 'jobs_restarted' | 'jobs_window'; message: string }

/**
 * Codes of the `close` frame (docs/protocol.md, Connection notices): 1008 a broken rule, 1012
 * the node is shutting down, 4401 the token expired, 4408 heartbeat timeout, 4429 too many connections.
 */
export const CLOSE_CODES = [1008, 1012, 4401, 4408, 4429] as const;
/** The last frame of a connection the server ends; its code, not the socket's, is what counts. */
export interface Close { code: (typeof CLOSE_CODES)[number]; reason: string }

/** Where a job is; `completed`, `failed` and `cancelled` are final. */
export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed' | 'cancelled';

/** A job as its submitter sees it (docs/jobs.md). Times are epoch milliseconds. */
export interface Job {
  id: string;
  queue: string;
  state: JobState;
  version: number;
  data: unknown;
  priority: number;
  attempts: number;
  attemptsMade: number;
  key?: string;
  progress: unknown;
  result: unknown;
  error: string | null;
  createdAt: number;
  runAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** An operation in its wire form (docs/protocol.md, Collaborative editing): a positive integer keeps that many UTF-16 units, a string inserts itself, a negative integer deletes that many units; `TextOperation` (ot.ts) reads and writes it. */
export type WireOperation = Array<number | string>;

/** Another connection's operation on a document you have open; `op` applies to the text at `revision - 1`. */
export interface DocOpPush { doc: string; revision: number; op: WireOperation; author: string; clientOpId: string }
/** Another editor placed their cursor (or selection, up to `selectionEnd`) in a document you have open, at `revision`. */
export interface DocCursorPush {
  doc: string; user: string; session: string; revision: number; position: number; selectionEnd: number;
}
/** An editor's cursor is gone from a document you have open (its connection closed). */
export interface DocCursorRemoved { doc: string; user: string; session: string }
/** A document's owner and editors, as they now are. */
export interface DocEditorsPush { doc: string; owner: string; editors: string[] }
/**
 * The server stopped following the document for this connection: `resync_required` (open it
 * again), `forbidden` (you may no longer read it) or `doc_not_found` (it is gone).
 */
export interface DocResync { doc: string; code: 'resync_required' | 'forbidden' | 'doc_not_found'; message: string }

/** Every frame the server pushes, by its `type` (the reply frames `ok`/`error`/`pong` aside). */
export interface Pushes {
  welcome: Welcome;
  ping: Record<string, never>;
  event: RoomEvent;
  typing: TypingPush;
  read: ReadPush;
  receipt: Receipt;
  presence: Presence;
  lagged: Lagged;
  resume_complete: ResumeComplete;
  reload: Reload;
  close: Close;
  job: { job: Job };
  jobs_reset: JobsReset;
  doc_op: DocOpPush;
  doc_cursor: DocCursorPush;
  doc_cursor_removed: DocCursorRemoved;
  doc_editors: DocEditorsPush;
  doc_resync: DocResync;
}

/** Any pushed frame, told apart by its `type`. */
export type Push = { [T in keyof Pushes]: { type: T } & Pushes[T] }[keyof Pushes];

// Replies (the `ok` frame's fields beside `type` and `id`).

/** The `ok` of a request that wrote a room event: the room and the event's `seq`. */
export interface Written { room: string; seq: number; ts?: string; clientMsgId?: string; duplicate?: boolean }
/** The `ok` of `send_dm`; `delivered` says whether the recipient had a live session when the message was stored. */
export interface DirectWritten extends Written { ts: string; clientMsgId: string; delivered: boolean; duplicate: boolean }
/** A room of `list_rooms`: your read marker and, if the room answered in time, its last seq, unread count and topic. */
export interface RoomEntry { room: string; readSeq: number; lastSeq?: number; unread?: number; direct?: boolean; topic?: string }
/** A member as `list_members` lists them; `online` and `lastSeen` only in rooms up to the presence limit. */
export interface Member { user: string; role: 'owner' | 'member'; online?: boolean; lastSeen?: string }
/** The `ok` of `list_members`; `settingsVersion` is what `set_topic`'s `ifVersion` names. */
export interface Members { room: string; visibility: Visibility; topic?: string; lastSeq: number; settingsVersion: number; members: Member[] }
/** A job as a worker holds it: the job plus its lease. */
export interface LeasedJob extends Job { leaseId: string; leaseUntil: number }
/** A page of a room's history, oldest first; `hasMore` when older events remain (ask again with `before`). */
export interface HistoryPage { room: string; events: RoomEvent[]; hasMore: boolean }
/** The `ok` of `mark_read`: your read marker now, and how many events are left unread. */
export interface MarkedRead { room: string; readSeq: number; unread: number }
/** An editor's cursor as `doc_open` lists it. */
export interface CursorEntry { user: string; session: string; position: number; selectionEnd: number }
/** One operation of a `doc_ops` page. */
export interface OpEntry { revision: number; op: WireOperation; author: string; clientOpId: string }

/** Each request: its fields and its `ok` reply (docs/protocol.md, Requests and replies). */
export interface Requests {
  create_room: [{ room: string; visibility?: Visibility; topic?: string }, Written];
  join: [{ room: string }, Written];
  leave: [{ room: string }, Written];
  invite: [{ room: string; user: string }, Written];
  remove_member: [{ room: string; user: string }, Written];
  set_topic: [{ room: string; topic: string; ifVersion?: number }, Written];
  list_rooms: [Record<string, never>, { rooms: RoomEntry[] }];
  list_members: [{ room: string }, Members];
  send: [{ room: string; clientMsgId: string; body: string }, Written & { ts: string; clientMsgId: string; duplicate: boolean }];
  send_dm: [{ to: string; clientMsgId: string; body: string }, DirectWritten];
  edit: [{ room: string; target: number; clientMsgId: string; body: string }, Written];
  delete: [{ room: string; target: number; clientMsgId: string }, Written];
  history: [{ room: string; before?: number; limit?: number }, HistoryPage];
  resume: [{ rooms?: Positions }, { rooms: Positions; pending?: true }];
  refresh: [{ token: string }, { tokenExpiresIn: number }];
  mark_read: [{ room: string; seq: number }, MarkedRead];
  ping: [Record<string, never>, Record<string, never>];
  doc_create: [{ doc: string; text?: string; editors?: string[]; room?: string }, { doc: string; revision: number; room?: string }];
  doc_open: [{ doc: string }, {
    doc: string; text: string; revision: number; owner: string; room?: string; editors: string[]; cursors: CursorEntry[];
  }];
  doc_submit: [{ doc: string; clientOpId: string; revision: number; op: WireOperation }, { doc: string; revision: number; clientOpId: string }];
  doc_ops: [{ doc: string; revision: number }, { doc: string; fromRevision: number; revision: number; ops: OpEntry[] }];
  doc_cursor: [{ doc: string; revision: number; position: number; selectionEnd?: number }, { doc: string }];
  doc_add_editor: [{ doc: string; user: string }, { doc: string; owner: string; editors: string[] }];
  doc_close: [{ doc: string }, { doc: string }];
  export_room: [{ room: string }, { room: string; jobId: string; job: Job }];
  job_submit: [{ queue: string; idempotencyKey?: string; job?: JobSubmission }, { job: Job; duplicate?: boolean }];
  job_status: [{ job: string; after?: number; waitMs?: number }, { job: Job }];
  job_cancel: [{ job: string; ifVersion?: number }, { job: Job }];
  job_fetch: [{ queue: string; max?: number; waitMs?: number; lease?: number; worker?: string }, { jobs: LeasedJob[] }];
  job_extend: [{ job: string; leaseId: string; lease?: number }, { job: Job }];
  job_progress: [{ job: string; leaseId: string; progress?: unknown }, { job: Job }];
  job_complete: [{ job: string; leaseId: string; result?: unknown }, { job: Job }];
  job_fail: [{ job: string; leaseId: string; error: string }, { job: Job }];
}

/** The `type` of every request that has a reply. */
export type RequestType = keyof Requests;
/** The fields of request `T`, beside `type` and `id`. */
export type RequestFields<T extends RequestType> = Requests[T][0];
/** The fields of request `T`'s `ok` reply, beside `type` and `id`. */
export type Reply<T extends RequestType> = Requests[T][1];

/** Fields of a job submission (docs/jobs.md, Submit); every one is optional. */
export interface JobSubmission {
  data?: unknown;
  priority?: number;
  delay?: number;
  runAt?: number;
  attempts?: number;
  backoff?: { type: 'fixed' | 'exponential'; delay: number; jitter?: number };
  timeout?: number;
  key?: string;
}

/** The `type` of every frame of the protocol's push direction (`jobs_reset` comes only over SSE and long-poll). */
export const PUSH_TYPES = [
  'welcome', 'ping', 'event', 'typing', 'read', 'receipt', 'presence', 'lagged', 'resume_complete',
  'reload', 'close', 'doc_op', 'doc_cursor', 'doc_cursor_removed', 'doc_editors', 'doc_resync', 'job', 'jobs_reset',
] as const satisfies ReadonlyArray<keyof Pushes>;

/** The `type` of every request, `pong` and `typing` (which have no reply) included. */
export const REQUEST_TYPES = [
  'ping', 'pong', 'resume', 'refresh', 'create_room', 'join', 'leave', 'invite', 'remove_member',
  'set_topic', 'list_rooms', 'list_members', 'send', 'send_dm', 'edit', 'delete', 'history',
  'mark_read', 'typing', 'doc_create', 'doc_open', 'doc_submit', 'doc_ops', 'doc_cursor',
  'doc_add_editor', 'doc_close', 'export_room', 'job_submit', 'job_status', 'job_cancel', 'job_fetch',
  'job_extend', 'job_progress', 'job_complete', 'job_fail',
] as const satisfies ReadonlyArray<RequestType | 'pong' | 'typing'>;

// Compile-time: the lists above name every push and request the types declare.
type Exhaustive<T extends never> = T;
/** @internal Fails to compile when PUSH_TYPES misses a push of `Pushes`. */
export type PushTypesComplete = Exhaustive<Exclude<keyof Pushes, (typeof PUSH_TYPES)[number]>>;
/** @internal Fails to compile when REQUEST_TYPES misses a request of `Requests`. */
export type RequestTypesComplete = Exhaustive<Exclude<RequestType, (typeof REQUEST_TYPES)[number]>>;
