package parley.client;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A failure seen by {@link ParleyClient}, named by a stable machine code.
 *
 * <p>Codes from the server are passed through unchanged (for example {@code not_a_member},
 * {@code token_expired}, {@code timeout}); the client adds its own for what happens on its side
 * of the socket, listed below. A refused WebSocket upgrade or dev-token call also carries the
 * HTTP status.
 */
public class ParleyException extends RuntimeException {

  /** No reply (or no welcome, or no matching push) in time; a write may be retried as is. */
  public static final String TIMEOUT = "timeout";

  /** The connection closed before the reply arrived, or was already closed. */
  public static final String CLOSED = "closed";

  /** The server could not be reached. */
  public static final String CONNECT_FAILED = "connect_failed";

  /** The upgrade failed without a Parley error body, or did not select {@code parley.v1}. */
  public static final String HANDSHAKE_FAILED = "handshake_failed";

  /** The server said something protocol v1 does not allow (a bad welcome, a bad reply). */
  public static final String PROTOCOL_ERROR = "protocol_error";

  private final String code;
  private final int httpStatus;
  private final JsonNode frame;

  public ParleyException(String code, String message) {
    this(code, message, -1, null);
  }

  public ParleyException(String code, String message, Throwable cause) {
    this(code, message, -1, cause);
  }

  public ParleyException(String code, String message, int httpStatus) {
    this(code, message, httpStatus, null);
  }

  private ParleyException(String code, String message, int httpStatus, Throwable cause) {
    this(code, message, httpStatus, cause, null);
  }

  private ParleyException(String code, String message, int httpStatus, Throwable cause, JsonNode frame) {
    super(code + ": " + message, cause);
    this.code = code;
    this.httpStatus = httpStatus;
    this.frame = frame;
  }

  /** The server's {@code error} reply to a request, as it came. */
  static ParleyException of(JsonNode error) {
    return new ParleyException(error.path("code").asText("unknown"), error.path("message").asText(""), -1, null, error);
  }

  /** The machine code; the contract callers branch on. */
  public String code() {
    return code;
  }

  /**
   * The server's {@code error} frame, when the failure is one: its fields beyond code and
   * message (a job refusal's {@code jobId}, say).
   */
  public Optional<JsonNode> frame() {
    return Optional.ofNullable(frame);
  }

  /** The HTTP status, when the failure was an HTTP answer rather than a WebSocket frame. */
  public OptionalInt httpStatus() {
    return httpStatus < 0 ? OptionalInt.empty() : OptionalInt.of(httpStatus);
  }
}
