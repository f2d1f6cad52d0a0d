package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.client.ParleyClient;
import parley.ops.ParleyMetrics;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * Clients that vanish without closing, over real sockets against the real Cassandra: a
 * WebSocket client that stops answering heartbeats is closed and cleaned up, one that answers
 * stays, and a long poll never outlives its deadline. The node pings every 500 ms and allows
 * 1 s more, so a silent client is gone after 1.5 s.
 */
class DeadPeerIT {

  private static final Duration WAIT = Duration.ofSeconds(15);
  private static final long ALLOWED_SILENCE_MS = 1500;
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  static InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("DeadPeerIT"), 0, 0, config());
  }

  static Config config() {
    return ConfigFactory.parseString(
        """
        parley.chat.heartbeat-interval = 500ms
        parley.chat.heartbeat-timeout = 1s
        """);
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void aClientThatAnswersNothingIsClosedForHeartbeatTimeoutAndGoesOffline() throws Exception {
    try (ParleyClient watcher = connect("hb-watcher")) {
      watcher.createRoom("hb-room", "public", null).get(20, TimeUnit.SECONDS);
      watcher.resume(null).get(20, TimeUnit.SECONDS);
      SessionRegistry registry = SessionRegistry.get(node.system);
      // Connections of the tests before may still be ending.
      eventually(
          () -> registry.size() == 1 && sample("parley_connections{transport=\"websocket\"}") == 1,
          "only the watcher is connected");
      int sessionsBefore = 1;
      double socketsBefore = 1;
      double timeoutsBefore = sample("parley_heartbeat_timeouts_total");

      SilentSocket silent = SilentSocket.open(token("hb-silent"));
      JsonNode welcome = silent.next(WAIT);
      assertEquals("welcome", welcome.path("type").asText());
      assertEquals(500, welcome.path("pingInterval").asLong(), "the welcome states the contract");
      assertEquals(1000, welcome.path("pingTimeout").asLong());
      eventually(() -> registry.size() == sessionsBefore + 1, "the session is registered");

      silent.send("{\"type\":\"join\",\"id\":\"j\",\"room\":\"hb-room\"}");
      long lastSent = System.nanoTime();
      long deadline = lastSent + WAIT.toNanos();
      List<JsonNode> pings = new ArrayList<>();
      boolean joined = false;
      JsonNode close;
      while (true) {
        // Pings keep coming until the close: bound the whole wait, not each frame.
        JsonNode frame = silent.next(Duration.ofNanos(deadline - System.nanoTime()));
        String type = frame.path("type").asText();
        if (type.equals("close")) {
          close = frame;
          break;
        }
        if (type.equals("ping")) {
          pings.add(frame);
        }
        joined |= type.equals("ok") && frame.path("id").asText().equals("j");
      }
      long silentForMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - lastSent);

      assertTrue(joined, "the join was answered before the close");
      assertEquals(4408, close.path("code").asInt());
      assertEquals("heartbeat_timeout", close.path("reason").asText());
      assertFalse(pings.isEmpty(), "the server pinged before giving up");
      assertEquals("{\"type\":\"ping\"}", pings.get(0).toString(), "a ping carries no id");
      assertTrue(
          silentForMs >= ALLOWED_SILENCE_MS,
          "closed only after interval + timeout of silence, not after " + silentForMs + " ms");
      // Pekko HTTP ends every server-side WebSocket with 1000 (docs/protocol.md); the Netty
      // WebSocket port closes with the code itself (docs/transports.md).
      assertEquals(node.onWebSocketPort() ? 4408 : 1000, silent.closeStatus.get(WAIT.toSeconds(), TimeUnit.SECONDS));

      JsonNode offline =
          watcher.awaitPush(
              p -> "presence".equals(p.path("type").asText())
                  && "hb-silent".equals(p.path("user").asText())
                  && "offline".equals(p.path("status").asText()),
              WAIT);
      assertTrue(offline.hasNonNull("lastSeen"));
      eventually(() -> registry.size() == sessionsBefore, "the session left the registry");
      eventually(
          () -> sample("parley_connections{transport=\"websocket\"}") == socketsBefore,
          "the connection left the gauge");
      assertEquals(timeoutsBefore + 1, sample("parley_heartbeat_timeouts_total"));
    }
  }

  @Test
  void theReferenceClientAnswersPingsAndStaysThroughQuietIntervals() throws Exception {
    try (ParleyClient quiet = connect("hb-quiet");
        ParleyClient peer = connect("hb-peer")) {
      quiet.createRoom("hb-quiet-room", "public", null).get(20, TimeUnit.SECONDS);
      quiet.resume(null).get(20, TimeUnit.SECONDS);
      peer.join("hb-quiet-room").get(20, TimeUnit.SECONDS);
      peer.resume(null).get(20, TimeUnit.SECONDS);

      // Four intervals, well past the 1.5 s a silent client gets, sending nothing but pongs.
      assertThrows(
          TimeoutException.class,
          () -> quiet.closed().get(4 * 500 + 500, TimeUnit.MILLISECONDS),
          "the connection stays open");

      long seq = quiet.send("hb-quiet-room", "after-quiet", "still here").get(20, TimeUnit.SECONDS).seq();
      JsonNode received =
          peer.awaitPush(
              p -> "event".equals(p.path("type").asText()) && p.path("seq").asLong() == seq, WAIT);
      assertEquals("still here", received.path("body").asText());
    }
  }

  @Test
  void aLongPollWhoseSessionCannotPlaceItselfStillEndsAfterItsDeadline() throws Exception {
    // An ask timeout this short means the user entity never answers the poll's session in
    // time, so it never learns where to start: before the deadline, such a poll (and its
    // session) waited forever.
    InJvmNode unanswering =
        InJvmNode.start(
            TestCassandra.keyspacesFor("DeadPeerITPoll"),
            0,
            0,
            ConfigFactory.parseString("parley.chat.ask-timeout = 1ms"));
    try {
      SessionRegistry registry = SessionRegistry.get(unanswering.system);
      String token = ParleyClient.devToken(unanswering.http(), "hb-poller");
      HttpResponse<String> answer =
          HTTP.sendAsync(
                  HttpRequest.newBuilder(unanswering.http().resolve("/v1/poll?timeout=1s"))
                      .header("Authorization", "Bearer " + token)
                      .build(),
                  HttpResponse.BodyHandlers.ofString())
              .get(WAIT.toSeconds(), TimeUnit.SECONDS);

      assertEquals(200, answer.statusCode(), answer.body());
      assertEquals("[]", Frames.read(answer.body()).path("events").toString());
      eventually(() -> registry.size() == 0, "the poll's session ended");
    } finally {
      unanswering.close();
    }
  }

  // ---------------------------------------------------------------------------------------

  private static ParleyClient connect(String user) throws Exception {
    return ParleyClient.connect(node.ws(), token(user)).get(20, TimeUnit.SECONDS);
  }

  private static String token(String user) {
    return ParleyClient.devToken(node.http(), user);
  }

  private static double sample(String name) {
    String scrape = ParleyMetrics.get(node.system).registry().scrape();
    for (String line : scrape.split("\n")) {
      if (line.startsWith(name + " ")) {
        return Double.parseDouble(line.substring(name.length() + 1).trim());
      }
    }
    throw new AssertionError("no sample " + name + " in\n" + scrape);
  }

  private static void eventually(BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not within " + WAIT + ": " + what);
      }
      Thread.sleep(20);
    }
  }

  /**
   * A raw WebSocket client that authenticates and then answers nothing: it reads frames but
   * never sends a pong.
   */
  private static final class SilentSocket implements WebSocket.Listener {
    final LinkedBlockingQueue<String> frames = new LinkedBlockingQueue<>();
    final CompletableFuture<Integer> closeStatus = new CompletableFuture<>();
    private final StringBuilder parts = new StringBuilder();
    private WebSocket socket;

    static SilentSocket open(String token) throws Exception {
      SilentSocket listener = new SilentSocket();
      listener.socket =
          HTTP.newWebSocketBuilder()
              .header("Authorization", "Bearer " + token)
              .subprotocols(ParleyClient.SUBPROTOCOL)
              .buildAsync(node.ws(), listener)
              .get(WAIT.toSeconds(), TimeUnit.SECONDS);
      return listener;
    }

    void send(String frame) throws Exception {
      socket.sendText(frame, true).get(WAIT.toSeconds(), TimeUnit.SECONDS);
    }

    JsonNode next(Duration within) throws InterruptedException {
      String frame = frames.poll(within.toNanos(), TimeUnit.NANOSECONDS);
      if (frame == null) {
        throw new AssertionError("no awaited frame in time; had: " + frames);
      }
      return Frames.read(frame);
    }

    @Override
    public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
      parts.append(data);
      if (last) {
        frames.add(parts.toString());
        parts.setLength(0);
      }
      ws.request(1);
      return null;
    }

    @Override
    public CompletionStage<?> onClose(WebSocket ws, int statusCode, String reason) {
      closeStatus.complete(statusCode);
      return null;
    }

    @Override
    public void onError(WebSocket ws, Throwable error) {
      closeStatus.completeExceptionally(error);
    }
  }
}
