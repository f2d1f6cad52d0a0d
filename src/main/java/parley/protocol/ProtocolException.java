package parley.protocol;

/**
 * A request the client got wrong, found while decoding it: one error reply with a stable
 * code, and the connection stays. {@code id} is the request's id when it could be read.
 */
public final class ProtocolException extends RuntimeException {

  private final ErrorCode code;
  private final String id;

  public ProtocolException(ErrorCode code, String message) {
    this(code, message, null);
  }

  private ProtocolException(ErrorCode code, String message, String id) {
    super(message, null, false, false);
    this.code = code;
    this.id = id;
  }

  public ErrorCode code() {
    return code;
  }

  /** The id of the request this refuses, or null. */
  public String id() {
    return id;
  }

  ProtocolException withId(String requestId) {
    return new ProtocolException(code, getMessage(), requestId);
  }

  public Reply.Failure toFailure() {
    return Reply.Failure.of(code, getMessage());
  }
}
