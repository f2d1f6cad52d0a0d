/** A `send` or `sendDm` not yet acknowledged, as the offline queue keeps it. */
export interface QueuedSend {
  /** Names the write: the server writes a resent `clientMsgId` once (docs/protocol.md, Idempotency). */
  clientMsgId: string;
  /** The room of a `send`. */
  room?: string;
  /** The recipient of a direct message (`sendDm`), sent with `send_dm`; no `room` then. */
  to?: string;
  body: string;
  /** Epoch milliseconds when it was first sent; the queue resends in this order. */
  queuedAt: number;
}

/**
 * Where the client keeps sends until the server acknowledges them, so that a send made just
 * before a crash, a reload or a lost connection is sent again by the next client with the same
 * store. Every method may be asynchronous; the client awaits `put` before the send goes out.
 */
export interface SendStore {
  /** Keeps a send, replacing one with the same `clientMsgId`. */
  put(send: QueuedSend): Promise<void>;
  /** Forgets a send (acknowledged, or refused for good); unknown ids are ignored. */
  delete(clientMsgId: string): Promise<void>;
  /** Every queued send, oldest first. */
  list(): Promise<QueuedSend[]>;
}

/** Keeps sends in this process only: it survives reconnects, not a restart. Node's default. */
export class MemorySendStore implements SendStore {
  private readonly sends = new Map<string, QueuedSend>();

  async put(send: QueuedSend): Promise<void> {
    this.sends.set(send.clientMsgId, { ...send });
  }

  async delete(clientMsgId: string): Promise<void> {
    this.sends.delete(clientMsgId);
  }

  async list(): Promise<QueuedSend[]> {
    return [...this.sends.values()].map((send) => ({ ...send })).sort(byAge);
  }
}

/**
 * Keeps sends in IndexedDB (database `name`, one object store keyed by `clientMsgId`), so they
 * survive a page reload. The browser's default. Pass `indexedDB` to use another factory.
 */
export class IndexedDBSendStore implements SendStore {
  private static readonly STORE = 'sends';
  private db: Promise<IDBDatabase> | null = null;

  constructor(
    private readonly name = 'parley-sends',
    private readonly factory: IDBFactory = (globalThis as { indexedDB?: IDBFactory }).indexedDB!,
  ) {
    if (!factory) throw new Error('no IndexedDB here: use MemorySendStore');
  }

  async put(send: QueuedSend): Promise<void> {
    await this.run('readwrite', (store) => store.put({ ...send }));
  }

  async delete(clientMsgId: string): Promise<void> {
    await this.run('readwrite', (store) => store.delete(clientMsgId));
  }

  async list(): Promise<QueuedSend[]> {
    const all = await this.run('readonly', (store) => store.getAll() as IDBRequest<QueuedSend[]>);
    return all.sort(byAge);
  }

  /** Closes the database (a page that deletes it, or a test, needs it closed). */
  async close(): Promise<void> {
    if (this.db) (await this.db).close();
    this.db = null;
  }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const request = this.factory.open(this.name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(IndexedDBSendStore.STORE, { keyPath: 'clientMsgId' });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return this.db;
  }

  /** One request in a transaction of its own, resolved once the transaction has committed. */
  private async run<T>(mode: IDBTransactionMode, action: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.open();
    return new Promise((resolve, reject) => {
      const transaction = db.transaction(IndexedDBSendStore.STORE, mode);
      const request = action(transaction.objectStore(IndexedDBSendStore.STORE));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  }
}

/** IndexedDB where there is one (browsers), memory elsewhere (Node). */
export function defaultSendStore(): SendStore {
  return (globalThis as { indexedDB?: IDBFactory }).indexedDB ? new IndexedDBSendStore() : new MemorySendStore();
}

function byAge(a: QueuedSend, b: QueuedSend): number {
  return a.queuedAt - b.queuedAt;
}
