import { Listeners } from './listeners.js';
import type { ClientEvents } from './client.js';
import { ParleyError } from './errors.js';
import { OtClient, TextOperation, type OtState } from './ot.js';
import type { CursorEntry, OpEntry, Reply, RequestFields, RequestType, Welcome, WireOperation } from './protocol.js';

/** What a document needs of its client: requests, pushes and who it is. `ParleyClient` is one. */
export interface DocumentConnection {
  /** Sends a request and resolves with its `ok` reply. */
  request<T extends RequestType>(type: T, fields: RequestFields<T>, options?: { timeout?: number }): Promise<Reply<T>>;
  /** Listens to a client event; returns the function that stops listening. */
  on<K extends keyof ClientEvents>(type: K, listener: (value: ClientEvents[K]) => void): () => void;
  readonly welcome: Welcome | null;
  readonly transport: string | null;
}

/** Another session's cursor, as indexes into the local text (every local edit included). */
export interface RemoteCursor {
  user: string;
  session: string;
  position: number;
  selectionEnd: number;
}

/** Why the local text was replaced by the server's: a wire code, or `diverged` (a server operation did not fit). */
export type ResyncCode = 'resync_required' | 'diverged' | string;

/** What a {@link ParleyDocument} emits, by event name. */
export interface DocumentEvents {
  /** Someone else's operation, `revision` on the server, as applied to the local text. */
  change: { operation: TextOperation; revision: number; author: string; clientOpId: string };
  /** The server holds this document's operation `clientOpId` as `revision`. */
  ack: { clientOpId: string; revision: number };
  /** The other sessions' cursors changed (moved, removed, or shifted by an edit). */
  cursors: ReadonlyMap<string, RemoteCursor>;
  /** The local text was replaced by the server's: unacknowledged local edits are gone. */
  resync: { code: ResyncCode; message: string };
  editors: { owner: string; editors: string[] };
  /** The document is gone for this client (`forbidden`, `doc_not_found`): it stops following it. */
  closed: { code: string; message: string };
}

/** One server revision as the document learned of it: an operation, or the ok of its own submission. */
type Step =
  | { kind: 'op'; revision: number; op: TextOperation; author: string; clientOpId: string }
  | { kind: 'ack'; revision: number; clientOpId: string };

/** A cursor as the server placed it: indexes into the server's text at `revision`. */
interface ServerCursor extends RemoteCursor {
  revision: number;
}

/** How many of the latest server operations are kept to move a cursor that refers to an older revision. */
const HISTORY = 64;
/** Errors after which a submission is sent again as it is (same clientOpId: never applied twice). */
const RETRY = new Set(['request_timeout', 'timeout', 'unavailable', 'rate_limited']);

/**
 * One collaboratively edited document as this client holds it (docs/protocol.md,
 * "Collaborative editing"): a local text the user edits at will, kept in step with the
 * server's by operational transformation, the same algorithms as the server's
 * (`TextOperation`, `OtClient`). At most one operation is in flight (`doc_submit`); edits made
 * meanwhile gather in one buffer; the server's operations are transformed against both before
 * they touch the local text, and the others' cursors are moved to local positions.
 *
 * Server revisions are taken strictly in order: an acknowledgement and the pushes around it
 * may be handled out of order (a reply resolves a promise, a push is an event), so whatever
 * comes ahead of its turn waits by revision. When the connection is replaced, the document is
 * opened again on the new one, the missed operations are fetched (`doc_ops`, its own in-flight
 * one among them counting as the acknowledgement) and what is still in flight is sent again
 * with its clientOpId. When that cannot work (`resync_required`, a refused operation) the
 * server's text replaces the local one and `resync` says so.
 *
 * Documents need the WebSocket transport: over SSE and long-polling the server pushes no
 * document operations.
 */
export class ParleyDocument {
  private readonly listeners = new Listeners<DocumentEvents>();
  private readonly stops: Array<() => void> = [];
  private readonly opIdPrefix = globalThis.crypto.randomUUID().slice(0, 8);
  private localText = '';
  private serverRevision = 0;
  /** False before the first open and during a resync: the revision is nothing to build on. */
  private based = false;
  /** Opened on the current connection and caught up: submissions may go out. */
  private live = false;
  private closed = false;
  /** The first doc_open was answered: a new connection must open the document again. */
  private opened = false;
  /** Why the pending reopen replaces the local text, said once the server's text is in. */
  private resyncReason: { code: ResyncCode; message: string } | null = null;
  private ot: OtState = OtClient.synced();
  private inFlightId: string | null = null;
  /** The connection the in-flight operation was last sent on; sent again on a new one. */
  private inFlightEpoch = -1;
  private opCount = 0;
  /** Counts connections (and resyncs); answers belonging to an earlier one are ignored. */
  private epoch = 0;
  private readonly ahead = new Map<number, Step>();
  /** The latest server operations, as the server applied them, for cursors of older revisions. */
  private readonly history: Array<{ revision: number; op: TextOperation }> = [];
  private readonly heldCursors = new Map<string, ServerCursor>();
  private readonly remoteCursors = new Map<string, RemoteCursor>();
  private fetchingMissing = false;
  private unsentCursor: [number, number] | null = null;
  private docOwner = '';
  private docRoom: string | undefined;
  private docEditors: string[] = [];

  private constructor(
    private readonly client: DocumentConnection,
    /** The document's id. */
    readonly id: string,
  ) {}

  /**
   * Opens document `id` on `client` (connected or connecting) and resolves once its text has
   * arrived; rejects with the server's code (`doc_not_found`, `forbidden`, …), or with
   * `not_supported` over a transport that cannot carry document pushes.
   */
  static async open(client: DocumentConnection, id: string): Promise<ParleyDocument> {
    const document = new ParleyDocument(client, id);
    document.listen();
    try {
      await document.openOn(document.epoch, true);
    } catch (error) {
      document.stop();
      throw error;
    }
    return document;
  }

  /** The local text, with every local edit. */
  get text(): string {
    return this.localText;
  }

  /** The server revision the local text reflects. */
  get revision(): number {
    return this.serverRevision;
  }

  /** The OT state: synchronized, awaiting confirm, or awaiting with buffer. */
  get state(): OtState {
    return this.ot;
  }

  /** True while some local edit is not acknowledged yet. */
  get pending(): boolean {
    return this.ot.kind !== 'synchronized';
  }

  /** True while opened on the current connection and caught up. */
  get isLive(): boolean {
    return this.live;
  }

  /** The user who created the document. */
  get owner(): string {
    return this.docOwner;
  }

  /** The room whose members may edit the document too, if any. */
  get room(): string | undefined {
    return this.docRoom;
  }

  /** Users allowed to edit besides the owner and the room's members. */
  get editors(): readonly string[] {
    return this.docEditors;
  }

  /** The other sessions' cursors by session id, as indexes into the local text. */
  get cursors(): ReadonlyMap<string, RemoteCursor> {
    return new Map(this.remoteCursors);
  }

  /** Listens to a document event; returns the function that stops listening. */
  on<K extends keyof DocumentEvents>(type: K, listener: (value: DocumentEvents[K]) => void): () => void {
    return this.listeners.on(type, listener);
  }

  /**
   * Applies `operation` (or its wire form) to the local text and sends it, or buffers it behind
   * the operation in flight. Throws `base_length_mismatch` if it does not fit the local text
   * (nothing changes then).
   */
  edit(operation: TextOperation | WireOperation): void {
    if (this.closed || !this.based) {
      throw new Error(this.closed ? 'the document is closed' : 'the document is resynchronizing');
    }
    const op = operation instanceof TextOperation ? operation : TextOperation.fromWire(operation);
    this.localText = op.apply(this.localText);
    this.moveCursors(op);
    const out = OtClient.applyClient(this.ot, op);
    this.ot = out.state;
    if (out.send) this.startSending(out.send);
  }

  /** Inserts `text` at `index` of the local text (UTF-16 code units). */
  insert(index: number, text: string): void {
    this.edit(TextOperation.builder().retain(index).insert(text).retain(this.localText.length - index).build());
  }

  /** Deletes `count` UTF-16 code units at `index` of the local text. */
  delete(index: number, count: number): void {
    this.edit(TextOperation.builder().retain(index).delete(count).retain(this.localText.length - index - count).build());
  }

  /**
   * Places this session's cursor at `position`, selecting up to `selectionEnd`, as indexes into
   * the local text. Sent when nothing is unacknowledged (the local text is then the server's);
   * a newer move replaces one not yet sent.
   */
  moveCursor(position: number, selectionEnd: number = position): void {
    this.unsentCursor = [position, selectionEnd];
    this.sendCursor();
  }

  /** Stops following the document (`doc_close`); unacknowledged edits stay unsent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.stop();
    await this.client.request('doc_close', { doc: this.id }).catch(() => undefined);
  }

  // Opening, reconnecting and resyncing.

  private listen(): void {
    const mine = (frame: { doc: string }) => frame.doc === this.id && !this.closed;
    this.stops.push(
      this.client.on('doc_op', (push) => {
        if (mine(push)) this.offer(opStep(push));
      }),
      this.client.on('doc_cursor', (push) => {
        if (mine(push)) this.placeCursor(push);
      }),
      this.client.on('doc_cursor_removed', (push) => {
        if (!mine(push)) return;
        this.heldCursors.delete(push.session);
        if (this.remoteCursors.delete(push.session)) this.emitCursors();
      }),
      this.client.on('doc_editors', (push) => {
        if (!mine(push)) return;
        this.docOwner = push.owner;
        this.docEditors = push.editors;
        this.emit('editors', { owner: push.owner, editors: push.editors });
      }),
      this.client.on('doc_resync', (push) => {
        if (!mine(push)) return;
        if (push.code === 'resync_required') this.resync(push.code, push.message);
        else this.end(push.code, push.message);
      }),
      this.client.on('state', ({ state }) => {
        if (this.closed) return;
        if (state === 'open' && this.opened) {
          // A new connection: the server follows the document only for connections that opened it.
          this.live = false;
          this.epoch += 1;
          void this.openOn(this.epoch, false).catch(() => undefined);
        } else {
          this.live = false;
        }
      }),
    );
  }

  /** `doc_open` on the current connection, then catches up from the local revision if there is one. */
  private async openOn(epoch: number, first: boolean): Promise<void> {
    if (this.client.transport !== null && this.client.transport !== 'websocket') {
      throw new ParleyError('not_supported', `documents need the WebSocket transport; the connection uses ${this.client.transport}`);
    }
    let reply: Reply<'doc_open'>;
    try {
      reply = await this.client.request('doc_open', { doc: this.id });
    } catch (error) {
      if (first || this.closed || epoch !== this.epoch) throw error;
      if (error instanceof ParleyError && (error.code === 'doc_not_found' || error.code === 'forbidden')) {
        this.end(error.code, error.message);
      } else if (error instanceof ParleyError && RETRY.has(error.code)) {
        // The connection stays; try again on it shortly.
        setTimeout(() => {
          if (epoch === this.epoch && !this.closed) void this.openOn(epoch, false).catch(() => undefined);
        }, 500);
      }
      // connection_lost: the next connection opens it again.
      throw error;
    }
    if (this.closed || epoch !== this.epoch) return;
    this.opened = true;
    this.docOwner = reply.owner;
    this.docRoom = reply.room;
    this.docEditors = reply.editors;
    if (!this.based || reply.revision <= this.serverRevision) {
      const resynced = !this.based && !first;
      if (!this.based) this.rebase(reply.text, reply.revision);
      this.resetCursors(reply.cursors, reply.revision);
      this.goLive();
      if (resynced) this.emitResync();
      return;
    }
    this.resetCursors(reply.cursors, reply.revision);
    await this.catchUp(epoch, reply);
  }

  /** Fetches what happened since the local revision, page by page; `opened` is the fallback. */
  private async catchUp(epoch: number, opened: Reply<'doc_open'>): Promise<void> {
    for (;;) {
      let page: Reply<'doc_ops'>;
      try {
        page = await this.client.request('doc_ops', { doc: this.id, revision: this.serverRevision });
      } catch (error) {
        if (this.closed || epoch !== this.epoch) return;
        if (error instanceof ParleyError && error.code === 'resync_required') {
          this.resyncReason = { code: error.code, message: error.message };
          this.rebase(opened.text, opened.revision);
          this.resetCursors(opened.cursors, opened.revision);
          this.goLive();
          this.emitResync();
        }
        return;
      }
      if (this.closed || epoch !== this.epoch) return;
      const before = this.serverRevision;
      for (const entry of page.ops) this.offer(opStep(entry));
      if (!morePages(page) || this.serverRevision === before) break;
    }
    this.goLive();
  }

  private goLive(): void {
    this.live = true;
    this.drain();
    const unacknowledged = OtClient.inFlight(this.ot);
    if (unacknowledged && this.inFlightEpoch !== this.epoch) this.submit(unacknowledged);
    this.sendCursor();
  }

  /** Gives up on the local edits: opens the document again and takes the server's text. */
  private resync(code: ResyncCode, message: string): void {
    this.resyncReason = { code, message };
    this.based = false;
    this.live = false;
    this.epoch += 1;
    void this.openOn(this.epoch, false).catch(() => undefined);
  }

  /** Takes the server's text at `revision` as the new base, dropping local edits. */
  private rebase(text: string, revision: number): void {
    this.localText = text;
    this.serverRevision = revision;
    this.ot = OtClient.synced();
    this.inFlightId = null;
    this.based = true;
    this.history.length = 0;
    for (const key of [...this.ahead.keys()]) if (key <= revision) this.ahead.delete(key);
  }

  private emitResync(): void {
    const reason = this.resyncReason ?? { code: 'resync_required', message: 'the document was opened again' };
    this.resyncReason = null;
    this.emit('resync', reason);
  }

  private end(code: string, message: string): void {
    this.stop();
    this.emit('closed', { code, message });
  }

  private stop(): void {
    this.closed = true;
    this.live = false;
    for (const stop of this.stops.splice(0)) stop();
  }

  // Server revisions, in order.

  private offer(step: Step): void {
    if (this.based && step.revision <= this.serverRevision) return;
    // An operation says everything an ack says, and more.
    if (step.kind === 'op' || !this.ahead.has(step.revision)) this.ahead.set(step.revision, step);
    this.drain();
  }

  private drain(): void {
    while (this.based && !this.closed) {
      const next = this.ahead.get(this.serverRevision + 1);
      if (!next) break;
      this.ahead.delete(next.revision);
      try {
        if (!this.take(next)) {
          // The ack of an operation this document no longer holds: fetch the operation itself.
          this.ahead.set(next.revision, next);
          this.fetchMissing();
          break;
        }
      } catch (error) {
        this.resync('diverged', `a server operation did not fit the local text: ${(error as Error).message}`);
        return;
      }
    }
    this.placeHeldCursors();
  }

  /** Applies the next revision; false for an ack this document cannot use. */
  private take(step: Step): boolean {
    const own = this.inFlightId !== null && step.clientOpId === this.inFlightId
      && (step.kind === 'ack' || step.author === this.client.welcome?.user);
    if (own) {
      this.remember(step.revision, OtClient.inFlight(this.ot)!);
      this.serverRevision = step.revision;
      const clientOpId = this.inFlightId!;
      this.inFlightId = null;
      const out = OtClient.serverAck(this.ot);
      this.ot = out.state;
      this.emit('ack', { clientOpId, revision: step.revision });
      if (out.send) this.startSending(out.send);
      this.sendCursor();
      return true;
    }
    if (step.kind !== 'op') return false;
    const incoming = OtClient.applyServer(this.ot, step.op);
    this.localText = incoming.apply.apply(this.localText);
    this.ot = incoming.state;
    this.serverRevision = step.revision;
    this.remember(step.revision, step.op);
    this.moveCursors(incoming.apply);
    this.emit('change', { operation: incoming.apply, revision: step.revision, author: step.author, clientOpId: step.clientOpId });
    return true;
  }

  private remember(revision: number, op: TextOperation): void {
    this.history.push({ revision, op });
    if (this.history.length > HISTORY) this.history.shift();
  }

  /** Fills a hole in the revisions from the document's retained operations. */
  private fetchMissing(): void {
    if (this.fetchingMissing || !this.live) return;
    this.fetchingMissing = true;
    const epoch = this.epoch;
    this.client.request('doc_ops', { doc: this.id, revision: this.serverRevision }).then(
      (page) => {
        this.fetchingMissing = false;
        if (this.closed || epoch !== this.epoch) return;
        const before = this.serverRevision;
        for (const entry of page.ops) this.offer(opStep(entry));
        if (morePages(page) && this.serverRevision > before) this.fetchMissing();
      },
      (error: Error) => {
        this.fetchingMissing = false;
        if (this.closed || epoch !== this.epoch) return;
        if (error instanceof ParleyError && error.code === 'resync_required') this.resync(error.code, error.message);
      },
    );
  }

  // Sending.

  private startSending(op: TextOperation): void {
    this.opCount += 1;
    this.inFlightId = `${this.opIdPrefix}.${this.opCount}`;
    this.inFlightEpoch = -1;
    if (this.live) this.submit(op);
  }

  private submit(op: TextOperation): void {
    const clientOpId = this.inFlightId!;
    const epoch = this.epoch;
    this.inFlightEpoch = epoch;
    this.client.request('doc_submit', { doc: this.id, clientOpId, revision: this.serverRevision, op: op.toWire() }).then(
      (reply) => {
        // An ack is a fact about the document, whichever connection brought it.
        if (!this.closed) this.offer({ kind: 'ack', revision: reply.revision, clientOpId });
      },
      (error: Error) => {
        if (this.closed || epoch !== this.epoch || clientOpId !== this.inFlightId) return;
        const code = error instanceof ParleyError ? error.code : 'unknown';
        if (code === 'connection_lost' || code === 'client_closed') return; // the next connection sends it again
        if (RETRY.has(code)) {
          setTimeout(() => {
            const again = OtClient.inFlight(this.ot);
            if (this.live && epoch === this.epoch && clientOpId === this.inFlightId && again) this.submit(again);
          }, 200);
          return;
        }
        // Refused (base_length_mismatch, document_too_large, …): the local edits cannot be kept.
        this.resync(code, error.message);
      },
    );
  }

  private sendCursor(): void {
    if (!this.unsentCursor || !this.live || this.pending) return;
    const [position, selectionEnd] = this.unsentCursor;
    this.unsentCursor = null;
    // Ephemeral: a lost or refused cursor is replaced by the next move.
    this.client.request('doc_cursor', { doc: this.id, revision: this.serverRevision, position, selectionEnd }).catch(() => undefined);
  }

  // The others' cursors.

  private resetCursors(entries: CursorEntry[], revision: number): void {
    this.remoteCursors.clear();
    this.heldCursors.clear();
    for (const entry of entries) this.placeCursor({ ...entry, revision }, false);
    this.emitCursors();
  }

  /** A cursor at a server revision, moved into the local text; held while that revision has not arrived. */
  private placeCursor(cursor: ServerCursor, notify = true): void {
    if (!this.based || cursor.revision > this.serverRevision) {
      this.heldCursors.set(cursor.session, cursor);
      return;
    }
    this.heldCursors.delete(cursor.session);
    let { position, selectionEnd } = cursor;
    if (cursor.revision < this.serverRevision) {
      const since = this.history.filter((entry) => entry.revision > cursor.revision);
      // Older than the operations kept: drop it; its editor's next move places it again.
      if (since.length === 0 || since[0].revision !== cursor.revision + 1) return;
      for (const { op } of since) [position, selectionEnd] = [op.transformIndex(position), op.transformIndex(selectionEnd)];
    }
    // The local text is the server's plus the edits not yet acknowledged.
    const pending = this.ot.kind === 'synchronized' ? [] : this.ot.kind === 'awaitingConfirm' ? [this.ot.outstanding] : [this.ot.outstanding, this.ot.buffer];
    for (const op of pending) [position, selectionEnd] = [op.transformIndex(position), op.transformIndex(selectionEnd)];
    const length = this.localText.length;
    this.remoteCursors.set(cursor.session, {
      user: cursor.user, session: cursor.session, position: clamp(position, length), selectionEnd: clamp(selectionEnd, length),
    });
    if (notify) this.emitCursors();
  }

  private placeHeldCursors(): void {
    for (const cursor of [...this.heldCursors.values()]) {
      if (cursor.revision <= this.serverRevision) this.placeCursor(cursor);
    }
  }

  /** Moves every remote cursor past `op`, just applied to the local text. */
  private moveCursors(op: TextOperation): void {
    if (this.remoteCursors.size === 0) return;
    for (const [session, cursor] of this.remoteCursors) {
      this.remoteCursors.set(session, { ...cursor, position: op.transformIndex(cursor.position), selectionEnd: op.transformIndex(cursor.selectionEnd) });
    }
    this.emitCursors();
  }

  private emitCursors(): void {
    this.emit('cursors', this.cursors);
  }

  private emit<K extends keyof DocumentEvents>(type: K, value: DocumentEvents[K]): void {
    this.listeners.emit(type, value);
  }
}

function opStep(entry: OpEntry): Step {
  return { kind: 'op', revision: entry.revision, op: TextOperation.fromWire(entry.op), author: entry.author, clientOpId: entry.clientOpId };
}

/** A `doc_ops` answer is one page: it ends before the newest revision when more follow. */
function morePages(page: Reply<'doc_ops'>): boolean {
  const last = page.ops.at(-1);
  return last !== undefined && last.revision < page.revision;
}

function clamp(index: number, length: number): number {
  return Math.max(0, Math.min(index, length));
}
