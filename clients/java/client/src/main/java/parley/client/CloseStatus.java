package parley.client;

/**
 * How a connection ended: the WebSocket close code and reason.
 *
 * <p>A Parley server always closes with 1000 (Pekko HTTP lets it send no other status); why
 * it closed comes just before, as a {@code close} push whose {@code code} is 1008 when it drops
 * a client (repeated {@code rate_limited}), 1012 when the node restarts, 4401 when the token
 * expired without a {@code refresh}, or 4408 when the client answered no heartbeat in time. When the connection broke without a close frame, the code is
 * 1006 (as browsers report it) and the reason describes the failure.
 */
public record CloseStatus(int code, String reason) {

  public static final int NORMAL = 1000;
  public static final int ABNORMAL = 1006;

  public boolean normal() {
    return code == NORMAL;
  }
}
