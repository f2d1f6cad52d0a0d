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
  /** bench/peers/socketio-server.js: Socket.IO 4.8 room broadcast, nothing stored. */
  SOCKETIO,
  /** bench/peers/ws-server.js: bare `ws` broadcast, the ceiling. */
  WS;

  /** For set-up calls that block (Parley's dev token request), never on the measured path. */
  private static final ExecutorService BLOCKING =
      Executors.newFixedThreadPool(
          8,
          task -> {
            Thread thread = new Thread(task, "bench-setup");
            thread.setDaemon(true);
            return thread;
          });

  static Target named(String name) {
    return Arrays.stream(values())
        .filter(t -> t.label().equals(name))
        .findFirst()
        .orElseThrow(
            () -> new IllegalArgumentException("--target must be parley, socketio or ws, not " + name));
  }

  String label() {
    return name().toLowerCase();
  }

  /** Opens a connection for {@code user} to the server at {@code http} (its http:// address). */
  CompletableFuture<Link> connect(URI http, String user, Link.Listener listener) {
    return switch (this) {
      case PARLEY -> ParleyLink.connect(http, user, listener, BLOCKING);
      case SOCKETIO -> SocketIoLink.connect(http, listener);
      case WS -> WsLink.connect(http, listener);
    };
  }
}
