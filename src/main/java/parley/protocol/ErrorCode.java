package parley.protocol;

import java.util.Locale;
import java.util.Optional;

/**
 * Every error code of protocol v1: its wire name, the HTTP status REST, SSE and long-polling
 * answer it with, and whether the same request may simply be sent again. The one table of
 * codes: transports take statuses from here, and docs/protocol.md lists the same codes.
 */
public enum ErrorCode {
  // The frame or request itself.
  BAD_FRAME(400, false),
  UNKNOWN_TYPE(400, false),
  MISSING_FIELD(400, false),
  BAD_FIELD(400, false),
  BAD_TEXT(400, false),
  FRAME_TOO_LARGE(413, false),
  BODY_TOO_LARGE(413, false),
  BAD_USER_ID(400, false),
  BAD_ROOM_ID(400, false),
  BAD_DOC_ID(400, false),
  BAD_CURSOR(400, false),
  BAD_TIMEOUT(400, false),
  /** REST: no route of the client API has this path. */
  ROUTE_NOT_FOUND(404, false),
  /** REST: the path exists, not with this method. */
  METHOD_NOT_ALLOWED(405, false),
  // Tokens (refused before a connection starts, or a refresh on an open one).
  TOKEN_MISSING(401, false),
  TOKEN_MALFORMED(401, false),
  TOKEN_INVALID(401, false),
  TOKEN_EXPIRED(401, false),
  TOKEN_LIFETIME_TOO_LONG(401, false),
  TOKEN_ISSUED_IN_FUTURE(401, false),
  /** A {@code refresh} whose token names another user than the connection's. */
  TOKEN_USER_MISMATCH(403, false),
  /** A browser page from an origin the node does not allow opened a WebSocket or SSE stream. */
  ORIGIN_NOT_ALLOWED(403, false),
  // Rooms and messages.
  ROOM_NOT_FOUND(404, false),
  ROOM_EXISTS(409, false),
  NOT_A_MEMBER(403, false),
  NOT_INVITED(403, false),
  FORBIDDEN(403, false),
  MESSAGE_NOT_FOUND(404, false),
  CURSOR_STALE(409, false),
  CURSOR_AHEAD(409, false),
  CURSOR_EXPIRED(410, false),
  // Documents.
  DOC_NOT_FOUND(404, false),
  DOC_EXISTS(409, false),
  BAD_OPERATION(400, false),
  BASE_LENGTH_MISMATCH(400, false),
  BAD_REVISION(400, false),
  RESYNC_REQUIRED(409, false),
  DOCUMENT_TOO_LARGE(413, false),
  // Jobs (docs/jobs.md).
  QUEUE_NOT_FOUND(404, false),
  JOB_NOT_FOUND(404, false),
  JOB_KEY_TAKEN(409, false),
  IDEMPOTENCY_CONFLICT(409, false),
  JOB_FINISHED(409, false),
  LEASE_LOST(409, false),
  /** An If-Match named a version that is no longer the resource's (optimistic concurrency). */
  VERSION_MISMATCH(412, false),
  /** {@code GET /v1/jobs/{id}/result} of a job that has not completed (yet, or at all). */
  JOB_NOT_COMPLETED(409, false),
  /** The job has no streamed result (not an export), or its export rows have expired. */
  EXPORT_NOT_FOUND(404, false),
  // Load and availability: send the same request again (writes with the same client id).
  RATE_LIMITED(429, true),
  UNAVAILABLE(503, true),
  TIMEOUT(504, true);

  private final int httpStatus;
  private final boolean retryable;

  ErrorCode(int httpStatus, boolean retryable) {
    this.httpStatus = httpStatus;
    this.retryable = retryable;
  }

  /** The code as it travels: {@code room_not_found}. */
  public String wire() {
    return name().toLowerCase(Locale.ROOT);
  }

  public int httpStatus() {
    return httpStatus;
  }

  public boolean retryable() {
    return retryable;
  }

  public static Optional<ErrorCode> fromWire(String code) {
    if (code == null || !code.equals(code.toLowerCase(Locale.ROOT))) {
      return Optional.empty();
    }
    try {
      return Optional.of(valueOf(code.toUpperCase(Locale.ROOT)));
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  /**
   * The wire code for a refusal an entity gave. Entities speak the protocol's codes, apart
   * from the document's generic ones, which the wire names after documents; a code no table
   * knows is a defect, surfaced as {@code unavailable} rather than an invented code.
   */
  public static ErrorCode ofEntity(String code) {
    return switch (code) {
      case "not_found" -> DOC_NOT_FOUND;
      case "already_exists" -> DOC_EXISTS;
      case "bad_request" -> BAD_FIELD;
      default -> fromWire(code).orElse(UNAVAILABLE);
    };
  }
}
