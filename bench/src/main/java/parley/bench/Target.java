package parley.bench;

import java.net.URI;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/** The kinds of server the load tool drives with the same scenarios. */
enum Target {
  /** A Parley node (protocol v1); every message is journaled before it is acknowledged. */
  PARLEY,
  /**
   * A Parley node's WebSocket port on Netty ({@code parley.http.websocket-port}): tokens from
   * the node at {@code --url}, sockets to {@code --ws-port} of the same host.
   */
  PARLEY_NETTY,
  /** bench/peers/socketio-server.js: Socket.IO 4.8 room broadcast, nothing stored. */
  SOCKETIO,
  /** bench/peers/ws-server.js: bare `ws` broadcast, the ceiling. */
  WS,
  /**
   * bench/peers/PekkoEcho.java: a bare Pekko HTTP WebSocket echo, the floor of Parley's own
   * transport. It has no rooms, so it is a target of {@code connections} only.
   */
  PEKKO_ECHO;

  /** For set-up calls that block (Parley's dev token request), never on the measured path. */
  private static final ExecutorService BLOCKING =
      Executors.newFixedThreadPool(
          8,
          task -> {
            Thread thread = new Thread(task, "bench-setup");
            thread.setDaemon(true);
            return thread;
          });

  /** The Netty WebSocket port {@link #PARLEY_NETTY} connects to ({@code --ws-port}). */
  private static volatile int websocketPort;

  static void websocketPort(int port) {
    websocketPort = port;
  }

  /** {@code /v1/ws} of the node at {@code http}: on its WebSocket port when {@code --ws-port} names one. */
  static URI webSocketOf(URI http) {
    return websocketPort == 0
        ? clientPortWebSocket(http)
        : URI.create("ws://" + http.getHost() + ":" + websocketPort + "/v1/ws");
  }

  private static URI clientPortWebSocket(URI http) {
    return URI.create("ws" + http.toString().substring(4)).resolve("/v1/ws");
  }

  static Target named(String name) {
    return Arrays.stream(values())
        .filter(t -> t.label().equals(name))
        .findFirst()
        .orElseThrow(
            () -> new IllegalArgumentException("--target must be parley, parley-netty, socketio, ws or pekko-echo, not " + name));
  }

  String label() {
    return name().toLowerCase().replace('_', '-');
  }

  /** Whether the server has rooms to join and broadcast into, as fan-out needs. */
  boolean hasRooms() {
    return this != PEKKO_ECHO;
  }

  /** Opens a connection for {@code user} to the server at {@code http} (its http:// address). */
  CompletableFuture<Link> connect(URI http, String user, Link.Listener listener) {
    return switch (this) {
      case PARLEY -> ParleyLink.connect(http, clientPortWebSocket(http), user, listener, BLOCKING);
      case PARLEY_NETTY -> {
        if (websocketPort == 0) {
          throw new IllegalArgumentException("--target parley-netty needs --ws-port");
        }
        yield ParleyLink.connect(http, webSocketOf(http), user, listener, BLOCKING);
      }
      case SOCKETIO -> SocketIoLink.connect(http, listener);
      // The echo answers the same upgrade as the ws peer; an idle connection sends nothing.
      case WS, PEKKO_ECHO -> WsLink.connect(http, listener);
    };
  }
}
