package parley.client;

/**
 * How a connection ended: the WebSocket close code and reason.
 *
 * <p>The server uses 1000 for a normal close, 1008 when it drops a client (repeated
 * {@code rate_limited}) and 1012 when the node restarts. When the connection broke without a
 * close frame, the code is 1006 (as browsers report it) and the reason describes the failure.
 */
public record CloseStatus(int code, String reason) {

  public static final int NORMAL = 1000;
  public static final int ABNORMAL = 1006;

  public boolean normal() {
    return code == NORMAL;
  }
}
