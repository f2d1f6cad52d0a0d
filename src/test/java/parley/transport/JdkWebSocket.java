package parley.transport;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/** A JDK WebSocket client for the edge suites: it queues the frames it gets, parsed. */
final class JdkWebSocket implements WebSocket.Listener, AutoCloseable {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration WAIT = Duration.ofSeconds(20);
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  final LinkedBlockingQueue<JsonNode> frames = new LinkedBlockingQueue<>();
  final CompletableFuture<Integer> closed = new CompletableFuture<>();
  private final StringBuilder partial = new StringBuilder();
  WebSocket socket;

  /**
   * Opens {@code uri} with {@code token} as a bearer (none if null), then the subprotocols to
   * offer, then header name and value pairs starting at an {@code "Origin"}.
   */
  static JdkWebSocket open(URI uri, String token, String... protocolsThenHeaders) throws Exception {
    return openAsync(uri, token, protocolsThenHeaders).get(WAIT.toSeconds(), TimeUnit.SECONDS);
  }

  /** {@link #open} without waiting: the upgrade's refusal, if any, fails the future. */
  static CompletableFuture<JdkWebSocket> openAsync(URI uri, String token, String... protocolsThenHeaders) {
    JdkWebSocket client = new JdkWebSocket();
    WebSocket.Builder builder = HTTP.newWebSocketBuilder();
    if (token != null) {
      builder.header("Authorization", "Bearer " + token);
    }
    int protocols = 0;
    while (protocols < protocolsThenHeaders.length && !protocolsThenHeaders[protocols].equals("Origin")) {
      protocols++;
    }
    if (protocols > 0) {
      String[] rest = new String[protocols - 1];
      System.arraycopy(protocolsThenHeaders, 1, rest, 0, protocols - 1);
      builder.subprotocols(protocolsThenHeaders[0], rest);
    }
    for (int i = protocols; i + 1 < protocolsThenHeaders.length; i += 2) {
      builder.header(protocolsThenHeaders[i], protocolsThenHeaders[i + 1]);
    }
    return builder.buildAsync(uri, client).thenApply(socket -> {
      client.socket = socket;
      return client;
    });
  }

  void send(String text) throws Exception {
    socket.sendText(text, true).get(WAIT.toSeconds(), TimeUnit.SECONDS);
  }

  JsonNode await(String type) throws Exception {
    return awaitFrame(frame -> type.equals(frame.path("type").asText()), "no " + type + " frame");
  }

  JsonNode awaitReply(String id) throws Exception {
    return awaitFrame(frame -> id.equals(frame.path("id").asText()), "no reply to " + id);
  }

  /** The next frame that {@code wanted} accepts; the others are dropped. */
  private JsonNode awaitFrame(Predicate<JsonNode> wanted, String missing) throws Exception {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (System.nanoTime() < deadline) {
      JsonNode frame = frames.poll(100, TimeUnit.MILLISECONDS);
      if (frame != null && wanted.test(frame)) {
        return frame;
      }
    }
    throw new AssertionError(missing + " within " + WAIT);
  }

  @Override
  public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
    partial.append(data);
    if (last) {
      try {
        frames.add(JSON.readTree(partial.toString()));
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
      partial.setLength(0);
    }
    webSocket.request(1);
    return null;
  }

  @Override
  public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
    closed.complete(statusCode);
    return null;
  }

  @Override
  public void onError(WebSocket webSocket, Throwable error) {
    closed.completeExceptionally(error);
  }

  @Override
  public void close() {
    socket.abort();
  }
}
