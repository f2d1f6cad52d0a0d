package parley.bench;

import java.net.URI;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import parley.client.ParleyClient;

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

  /** For set-up calls that block (Parley's dev token request). */
  private static final ExecutorService BLOCKING =
      Executors.newFixedThreadPool(
          32,
          task -> {
            Thread thread = new Thread(task, "bench-setup");
            thread.setDaemon(true);
            return thread;
          });

  /** Dev tokens fetched ahead by {@link #fetchTokens}, by user; each is used once. */
  private static final Map<String, String> TOKENS = new ConcurrentHashMap<>();

  /**
   * Fetches Parley dev tokens for {@code users} now, so that their connections open without
   * that call: a real client holds its token (from the application's login) before it
   * connects, and the dev token endpoint stands in for the application. Returns tokens/s.
   */
  static double fetchTokens(URI http, List<String> users) {
    long start = System.nanoTime();
    CompletableFuture.allOf(
            users.stream()
                .map(user -> CompletableFuture.runAsync(() -> TOKENS.put(user, ParleyClient.devToken(http, user)), BLOCKING))
                .toArray(CompletableFuture[]::new))
        .join();
    return users.size() / ((System.nanoTime() - start) / 1e9);
  }

  /** The tokens fetched for {@code users} and not used yet, to {@link #reuse} once used. */
  static Map<String, String> fetched(List<String> users) {
    Map<String, String> tokens = new HashMap<>();
    users.forEach(user -> tokens.put(user, TOKENS.get(user)));
    return tokens;
  }

  /** Makes these tokens the next ones used again, as clients that kept them. */
  static void reuse(Map<String, String> tokens) {
    TOKENS.putAll(tokens);
  }

  private static CompletableFuture<String> tokenFor(URI http, String user) {
    String fetched = TOKENS.remove(user);
    return fetched != null
        ? CompletableFuture.completedFuture(fetched)
        : CompletableFuture.supplyAsync(() -> ParleyClient.devToken(http, user), BLOCKING);
  }

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
      case PARLEY -> ParleyLink.connect(tokenFor(http, user), clientPortWebSocket(http), user, listener);
      case PARLEY_NETTY -> {
        if (websocketPort == 0) {
          throw new IllegalArgumentException("--target parley-netty needs --ws-port");
        }
        yield ParleyLink.connect(tokenFor(http, user), webSocketOf(http), user, listener);
      }
      case SOCKETIO -> SocketIoLink.connect(http, listener);
      // The echo answers the same upgrade as the ws peer; an idle connection sends nothing.
      case WS, PEKKO_ECHO -> WsLink.connect(http, listener);
    };
  }
}
