export { ParleyClient } from './client.js';
export type {
  ClientEvents, ClientOptions, ConnectionState, Resent, TokenSource, TransportName, WebSocketConstructor, WebSocketLike,
} from './client.js';
export { ParleyError } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { IndexedDBSendStore, MemorySendStore } from './sendStore.js';
export type { QueuedSend, SendStore } from './sendStore.js';
export { DEFAULT_TRANSPORTS } from './transports.js';
export { CLOSE_CODES, ERROR_CODES, EVENT_KINDS, PUSH_TYPES, REQUEST_TYPES } from './protocol.js';
export type * from './protocol.js';
export { OperationBuilder, OtClient, TextOperation } from './ot.js';
export type { OtState } from './ot.js';
export { ParleyDocument } from './document.js';
export type { DocumentConnection, DocumentEvents, RemoteCursor, ResyncCode } from './document.js';
export { JobWorker } from './worker.js';
export type { JobContext, JobHandler, WorkerConnectOptions, WorkerOptions } from './worker.js';
