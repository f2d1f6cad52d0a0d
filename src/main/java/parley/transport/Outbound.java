package parley.transport;

/**
 * How a session's frames reach its client. Each transport (WebSocket, SSE, long-poll) gives
 * the session one of these; the session never knows which it talks to.
 */
public interface Outbound {

  /**
   * Queues one frame (a JSON object) for the client. False when the client's bounded buffer
   * is full: the client reads too slowly and the session must let it resume later.
   */
  boolean offer(String frame);

  /** Ends the connection; {@code code} is a WebSocket close code, {@code reason} a short text. */
  void close(int code, String reason);
}
