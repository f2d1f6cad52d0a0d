import type { ErrorCode, KeyErrorCode } from './protocol.js';

/**
 * Codes this client gives a request that got no answer from the server: `request_timeout` (no
 * reply within the request's timeout), `connection_lost` (the socket dropped with the request
 * in flight: it may or may not have been carried out, so resend writes with the same
 * clientMsgId), `client_closed` (close() was called), `not_supported` (a request the current
 * transport cannot carry: over SSE and long-polling, those REST has no form of).
 */
export type ClientErrorCode = 'request_timeout' | 'connection_lost' | 'client_closed' | 'not_supported';

/** A refused or unanswered request. Switch on `code`; `message` is for people. */
export class ParleyError extends Error {
  override readonly name = 'ParleyError';

  constructor(
    readonly code: ErrorCode | KeyErrorCode | ClientErrorCode,
    message: string,
    /** The HTTP status, for a REST call. */
    readonly status?: number,
    /** The whole error body or frame, for codes that carry more (job_key_taken's jobId). */
    readonly details?: Record<string, unknown>,
    /** Seconds the server asked to wait before trying again: the error's `retryAfter` (an HTTP answer's `Retry-After`). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  /** The server says the same request may simply be sent again (docs/protocol.md, Error codes). */
  get retryable(): boolean {
    return this.code === 'rate_limited' || this.code === 'unavailable' || this.code === 'timeout';
  }
}
