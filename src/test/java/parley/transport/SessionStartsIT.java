package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.testing.InJvmNode;
import parley.testing.NodeProcess;
import parley.testing.TestCassandra;

/**
 * A node that may start one session at a time ({@code parley.chat.max-starting-sessions = 1})
 * through the wire, on both WebSocket edges and SSE: what a client is answered while the place
 * is taken, and that every way a start ends gives the place back.
 */
class SessionStartsIT {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  /** How long a start that never became a session counts: the node's ask-timeout here. */
  private static final Duration EXPIRY = Duration.ofSeconds(2);
  private static InJvmNode node;
  private static int websocketPort;

  @BeforeAll
  static void startNode() throws Exception {
    websocketPort = NodeProcess.freePort();
    node =
        InJvmNode.start(
            TestCassandra.keyspacesFor("SessionStartsIT"),
            0,
            0,
            ConfigFactory.parseString(
                "parley.http.websocket-port = " + websocketPort + "\n"
                    + "parley.chat.max-starting-sessions = 1\n"
                    + "parley.chat.ask-timeout = " + EXPIRY.toMillis() + "ms"));
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  private static URI nettyWs() {
    return URI.create("ws://127.0.0.1:" + websocketPort + "/v1/ws");
  }

  @Test
  void whileThePlaceIsTakenEveryEdgeAnswers503UntilTheStartExpires() throws Exception {
    String token = node.token("starts-busy");
    Client open = registered(node.clientPortWs(), token);
    // A start that never becomes a session: admitted, then not an upgrade (400). Its place
    // stays taken until the expiry, as for a client gone before its upgrade was answered.
    long takenAt = System.nanoTime();
    assertTrue(exchange(node.http().getPort(), "GET /v1/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n").startsWith("HTTP/1.1 400"));

    for (URI uri : new URI[] {node.clientPortWs(), nettyWs()}) {
      HttpResponse<?> refused = refused(uri, token).getResponse();
      assertEquals(503, refused.statusCode(), uri.toString());
      assertEquals("1", refused.headers().firstValue("Retry-After").orElse(null), uri.toString());
      assertEquals("unavailable", JSON.readTree(String.valueOf(refused.body())).path("code").asText(), uri.toString());
    }
    HttpResponse<String> sse = HTTP.send(
        HttpRequest.newBuilder(node.http().resolve("/v1/events")).header("Authorization", "Bearer " + token).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(503, sse.statusCode(), sse.body());
    assertEquals("1", sse.headers().firstValue("Retry-After").orElse(null));
    assertEquals("unavailable", JSON.readTree(sse.body()).path("code").asText());
    assertTrue(refusedTotal() >= 3, "counted in /metrics");

    Client admitted = awaitAdmitted(nettyWs(), token);
    assertTrue(Duration.ofNanos(System.nanoTime() - takenAt).compareTo(EXPIRY) >= 0, "refused until the expiry");
    admitted.await("welcome");
    admitted.close();
    open.close();
  }

  @Test
  void aRefusedTokenGivesThePlaceBack() throws Exception {
    String token = node.token("starts-token");
    try (Client open = registered(node.clientPortWs(), token)) {
      for (int i = 0; i < 3; i++) {
        assertEquals(401, refused(node.clientPortWs(), "not-a-token").getResponse().statusCode());
        assertEquals(401, refused(nettyWs(), "not-a-token").getResponse().statusCode());
      }
      try (Client client = Client.open(node.clientPortWs(), token)) {
        client.await("welcome");
      }
    }
  }

  @Test
  void aSessionTheUsersEntityRegisteredGivesThePlaceBackWhileItStaysOpen() throws Exception {
    String alice = node.token("starts-alice");
    String bob = node.token("starts-bob");
    try (Client a = registered(node.clientPortWs(), alice)) {
      try (Client b = Client.open(nettyWs(), bob)) {
        b.await("welcome");
        b.send("{\"type\":\"resume\",\"id\":\"r\"}");
        assertEquals("ok", b.awaitReply("r").path("type").asText());
      }
      a.send("{\"type\":\"ping\",\"id\":\"p\"}");
      assertEquals("pong", a.awaitReply("p").path("type").asText(), "the first session is still open");
    }
  }

  /**
   * A session that is open and no longer starting: the user's entity answers its registration
   * before the room list that {@code resume} asks it for, so once resume is answered the place
   * is free.
   */
  private static Client registered(URI uri, String token) throws Exception {
    Client client = awaitAdmitted(uri, token);
    client.await("welcome");
    client.send("{\"type\":\"resume\",\"id\":\"registered\"}");
    assertEquals("ok", client.awaitReply("registered").path("type").asText());
    return client;
  }

  /**
   * Opens a WebSocket, retrying on 503 as a client's backoff would: a start of an earlier
   * test may still hold the place (sessions closing give it back as they stop).
   */
  private static Client awaitAdmitted(URI uri, String token) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (true) {
      try {
        return Client.open(uri, token);
      } catch (ExecutionException e) {
        boolean busy = e.getCause() instanceof WebSocketHandshakeException h && h.getResponse().statusCode() == 503;
        if (!busy || System.nanoTime() > deadline) {
          throw e;
        }
        Thread.sleep(50);
      }
    }
  }

  private static WebSocketHandshakeException refused(URI uri, String token) {
    ExecutionException failed = assertThrows(ExecutionException.class, () -> Client.open(uri, token));
    return assertInstanceOf(WebSocketHandshakeException.class, failed.getCause());
  }

  private static long refusedTotal() throws Exception {
    String metrics = HTTP.send(HttpRequest.newBuilder(node.management().resolve("/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
    return metrics.lines()
        .filter(line -> line.startsWith("parley_session_starts_refused_total"))
        .mapToLong(line -> (long) Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)))
        .sum();
  }

  /** Sends {@code request} and reads until the server closes. */
  private static String exchange(int port, String request) throws Exception {
    try (Socket socket = new Socket("127.0.0.1", port)) {
      socket.setSoTimeout(20_000);
      socket.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      byte[] head = new byte[12];
      int read = socket.getInputStream().readNBytes(head, 0, head.length);
      return new String(head, 0, read, StandardCharsets.US_ASCII);
    }
  }

  /** A JDK WebSocket client that queues the frames it gets, parsed. */
  private static final class Client implements WebSocket.Listener, AutoCloseable {
    private final LinkedBlockingQueue<JsonNode> frames = new LinkedBlockingQueue<>();
    private final StringBuilder partial = new StringBuilder();
    private WebSocket socket;

    static Client open(URI uri, String token) throws Exception {
      Client client = new Client();
      client.socket =
          HTTP.newWebSocketBuilder()
              .header("Authorization", "Bearer " + token)
              .subprotocols("parley.v1")
              .buildAsync(uri, client)
              .get(20, TimeUnit.SECONDS);
      return client;
    }

    void send(String text) throws Exception {
      socket.sendText(text, true).get(20, TimeUnit.SECONDS);
    }

    JsonNode await(String type) throws Exception {
      return awaitFrame(frame -> type.equals(frame.path("type").asText()), "no " + type + " frame");
    }

    JsonNode awaitReply(String id) throws Exception {
      return awaitFrame(frame -> id.equals(frame.path("id").asText()), "no reply to " + id);
    }

    private JsonNode awaitFrame(java.util.function.Predicate<JsonNode> wanted, String missing) throws Exception {
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (System.nanoTime() < deadline) {
        JsonNode frame = frames.poll(100, TimeUnit.MILLISECONDS);
        if (frame != null && wanted.test(frame)) {
          return frame;
        }
      }
      throw new AssertionError(missing + " within 20 s");
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
    public void close() {
      socket.abort();
    }
  }
}
