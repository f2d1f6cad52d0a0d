package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocketHandshakeException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
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
 * is taken, and that a start gives the place back when its session is registered or when no
 * session will be made of it.
 */
class SessionStartsIT {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  /**
   * How long a start that never became a session counts: the node's ask-timeout here. Each
   * place below is given back well before it, so a test that waited for it would fail.
   */
  private static final Duration EXPIRY = Duration.ofSeconds(6);
  private static final Duration WELL_BEFORE_EXPIRY = Duration.ofSeconds(3);
  private static final int BURST = 20;
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

  /**
   * Users who never connected, opening at once: each start journals the user's first
   * last-seen, so with one place some are refused, whatever the machine's speed.
   */
  @Test
  void aBurstOfOpensOnEitherPortIsPartlyRefused503AndEveryoneGetsInAfterBackingOff() throws Exception {
    for (URI uri : new URI[] {node.clientPortWs(), nettyWs()}) {
      String prefix = "burst-" + uri.getPort() + "-";
      List<String> tokens = new ArrayList<>();
      for (int i = 0; i < BURST; i++) {
        tokens.add(node.token(prefix + i));
      }
      List<CompletableFuture<JdkWebSocket>> opening = new ArrayList<>();
      for (String token : tokens) {
        opening.add(JdkWebSocket.openAsync(uri, token, "parley.v1"));
      }
      List<JdkWebSocket> in = new ArrayList<>();
      List<String> refusedTokens = new ArrayList<>();
      HttpResponse<?> refusal = null;
      for (int i = 0; i < BURST; i++) {
        try {
          in.add(opening.get(i).get(20, TimeUnit.SECONDS));
        } catch (ExecutionException e) {
          WebSocketHandshakeException refused = assertInstanceOf(WebSocketHandshakeException.class, e.getCause());
          refusal = refused.getResponse();
          assertEquals(503, refusal.statusCode(), uri.toString());
          refusedTokens.add(tokens.get(i));
        }
      }
      assertTrue(!refusedTokens.isEmpty(), "with one place, a burst of " + BURST + " is partly refused on " + uri);
      assertEquals("1", refusal.headers().firstValue("Retry-After").orElse(null), uri.toString());
      assertEquals("unavailable", JSON.readTree(String.valueOf(refusal.body())).path("code").asText(), uri.toString());
      for (String token : refusedTokens) {
        in.add(awaitAdmitted(uri, token, Duration.ofSeconds(30)));
      }
      for (JdkWebSocket client : in) {
        client.await("welcome");
        client.close();
      }
    }
    assertTrue(refusedTotal() >= 2, "counted in /metrics");
  }

  @Test
  void aBurstOfSseStreamsIsPartlyRefused503() throws Exception {
    List<CompletableFuture<HttpResponse<java.io.InputStream>>> opening = new ArrayList<>();
    for (int i = 0; i < BURST; i++) {
      opening.add(HTTP.sendAsync(
          HttpRequest.newBuilder(node.http().resolve("/v1/events")).header("Authorization", "Bearer " + node.token("sse-burst-" + i)).build(),
          HttpResponse.BodyHandlers.ofInputStream()));
    }
    int refused = 0;
    for (CompletableFuture<HttpResponse<java.io.InputStream>> stream : opening) {
      HttpResponse<java.io.InputStream> response = stream.get(20, TimeUnit.SECONDS);
      try (java.io.InputStream body = response.body()) {
        if (response.statusCode() == 503) {
          refused++;
          assertEquals("1", response.headers().firstValue("Retry-After").orElse(null));
          assertEquals("unavailable", JSON.readTree(body).path("code").asText());
        } else {
          assertEquals(200, response.statusCode());
        }
      }
    }
    assertTrue(refused > 0, "with one place, a burst of " + BURST + " streams is partly refused");
  }

  @Test
  void anAdmittedRequestThatIsNoUpgradeGivesThePlaceBackAtOnce() throws Exception {
    String token = node.token("starts-plain");
    try (JdkWebSocket open = registered(node.clientPortWs(), token)) {
      // The entity's answer to the registration and resume's reply reach the session by two
      // asks, whose answers can swap: its place may come back just after resume was answered.
      String request = "GET /v1/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n";
      long deadline = System.nanoTime() + WELL_BEFORE_EXPIRY.toNanos();
      String first = exchange(node.http().getPort(), request);
      while (first.startsWith("HTTP/1.1 503") && System.nanoTime() < deadline) {
        first = exchange(node.http().getPort(), request);
      }
      assertTrue(first.startsWith("HTTP/1.1 400"), first);
      for (int port : new int[] {node.http().getPort(), websocketPort}) {
        for (int i = 0; i < 3; i++) {
          String answer = exchange(port, "GET /v1/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n");
          assertTrue(answer.startsWith("HTTP/1.1 400"), answer);
        }
      }
      // Only a place given back lets this in without a retry: an abandoned one counts until the expiry.
      awaitAdmitted(nettyWs(), node.token("starts-plain-next"), Duration.ZERO).close();
    }
  }

  @Test
  void aSessionTheUsersEntityRegisteredGivesThePlaceBackWhileItStaysOpen() throws Exception {
    String alice = node.token("starts-alice");
    String bob = node.token("starts-bob");
    try (JdkWebSocket a = registered(node.clientPortWs(), alice)) {
      try (JdkWebSocket b = awaitAdmitted(nettyWs(), bob, WELL_BEFORE_EXPIRY)) {
        b.await("welcome");
        b.send("{\"type\":\"resume\",\"id\":\"r\"}");
        assertEquals("ok", b.awaitReply("r").path("type").asText());
      }
      a.send("{\"type\":\"ping\",\"id\":\"p\"}");
      assertEquals("pong", a.awaitReply("p").path("type").asText(), "the first session is still open");
    }
    // An SSE stream's place comes back once its user's entity registered it, while it streams.
    HttpResponse<java.io.InputStream> sse = HTTP.send(
        HttpRequest.newBuilder(node.http().resolve("/v1/events")).header("Authorization", "Bearer " + node.token("starts-sse")).build(),
        HttpResponse.BodyHandlers.ofInputStream());
    try (java.io.InputStream stream = sse.body()) {
      assertEquals(200, sse.statusCode());
      awaitAdmitted(nettyWs(), node.token("starts-after-sse"), WELL_BEFORE_EXPIRY).close();
    }
  }

  /**
   * A session that is open and (all but) no longer starting: the user's entity answers its
   * registration before the room list that {@code resume} asks it for, but the two answers reach
   * the session by separate asks, so its place may come back just after resume is answered.
   */
  private static JdkWebSocket registered(URI uri, String token) throws Exception {
    JdkWebSocket client = awaitAdmitted(uri, token, Duration.ofSeconds(30));
    client.await("welcome");
    client.send("{\"type\":\"resume\",\"id\":\"registered\"}");
    assertEquals("ok", client.awaitReply("registered").path("type").asText());
    return client;
  }

  /**
   * Opens a WebSocket, retrying on 503 for up to {@code patience} as a client's backoff would
   * (a session of an earlier test may still be starting, or closing).
   */
  private static JdkWebSocket awaitAdmitted(URI uri, String token, Duration patience) throws Exception {
    long deadline = System.nanoTime() + patience.toNanos();
    while (true) {
      try {
        return JdkWebSocket.open(uri, token, "parley.v1");
      } catch (ExecutionException e) {
        boolean busy = e.getCause() instanceof WebSocketHandshakeException h && h.getResponse().statusCode() == 503;
        if (!busy || System.nanoTime() > deadline) {
          throw e;
        }
        Thread.sleep(50);
      }
    }
  }

  private static long refusedTotal() throws Exception {
    String metrics = HTTP.send(HttpRequest.newBuilder(node.management().resolve("/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
    return metrics.lines()
        .filter(line -> line.startsWith("parley_session_starts_refused_total"))
        .mapToLong(line -> (long) Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)))
        .sum();
  }

  /**
   * Sends {@code request} and returns the answer's start; on the WebSocket port, which closes
   * the connection after its answer, reads on until it has (and so has ended that start).
   */
  private static String exchange(int port, String request) throws Exception {
    try (Socket socket = new Socket("127.0.0.1", port)) {
      socket.setSoTimeout(20_000);
      socket.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      byte[] head = new byte[12];
      int read = socket.getInputStream().readNBytes(head, 0, head.length);
      if (port == websocketPort) {
        socket.getInputStream().readAllBytes();
      }
      return new String(head, 0, read, StandardCharsets.US_ASCII);
    }
  }
}
