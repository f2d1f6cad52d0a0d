package parley.transport;

import java.util.function.Supplier;

/**
 * How a session's frames reach its client. Each transport (WebSocket, SSE, long-poll) gives
 * the session one of these; the session never knows which it talks to.
 */
public interface Outbound {

  /**
   * Queues one frame (a JSON object) for the client. False when the client's bounded buffer
   * is full: the client reads too slowly and the session must let it catch up later.
   */
  boolean offer(String frame);

  /**
   * Queues a timeline event; {@code cursor} gives the client's resume cursor just after it,
   * for transports that hand positions to the client (SSE's {@code id:}, long-poll's cursor).
   */
  default boolean offerEvent(String frame, Supplier<String> cursor) {
    return offer(frame);
  }

  /**
   * The client's cursor once the session has placed itself in every room (before any event),
   * for transports that answer with a cursor even when nothing happened.
   */
  default void started(String cursor) {}

  /** Frames queued and not yet taken by the client. */
  default int backlog() {
    return 0;
  }

  /**
   * Ends the connection. {@code code} is a WebSocket close code (1012 service restart, 1008
   * policy), sent with {@code reason} in a last {@code close} frame.
   */
  void close(int code, String reason);
}
