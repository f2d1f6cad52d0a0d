package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.client.ParleyClient;
import parley.ops.ParleyMetrics;
import parley.testing.InJvmNode;
import parley.testing.PausableSocket;
import parley.testing.SseClient;
import parley.testing.TestCassandra;

/**
 * Every transport over real HTTP against the real Cassandra: WebSocket, SSE with REST for
 * actions, and long-polling, with the same semantics.
 */
class TransportsIT {

  private static final Duration WAIT = Duration.ofSeconds(20);
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("TransportsIT"));
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void webSocketSseAndLongPollUsersSeeTheSameMessagesInTheSameOrder() throws Exception {
    String bobToken = token(node, "bob");
    String carolToken = token(node, "carol");
    try (ParleyClient alice = ParleyClient.connect(node.ws(), token(node, "alice")).get(20, TimeUnit.SECONDS)) {
      alice.createRoom("mix", "public", null).get(20, TimeUnit.SECONDS);
      alice.resume(null).get(20, TimeUnit.SECONDS);
      assertEquals(200, rest(node, "POST", "/v1/rooms/mix/join", bobToken, null, null).statusCode());
      assertEquals(200, rest(node, "POST", "/v1/rooms/mix/join", carolToken, null, null).statusCode());
      String carolCursor = poll(node, carolToken, null, "0").path("cursor").asText();

      try (SseClient bob = SseClient.connect(node.http(), bobToken, null)) {
        assertEquals(200, bob.status);
        List<CompletableFuture<?>> sends = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
          sends.add(alice.send("mix", "a-" + i, "alice " + i));
          int n = i;
          sends.add(CompletableFuture.supplyAsync(() -> rest(node, "POST", "/v1/rooms/mix/messages", bobToken, "{\"body\":\"bob " + n + "\"}", "b-" + n)));
          sends.add(CompletableFuture.supplyAsync(() -> rest(node, "POST", "/v1/rooms/mix/messages", carolToken, "{\"body\":\"carol " + n + "\"}", "c-" + n)));
        }
        for (CompletableFuture<?> send : sends) {
          Object result = send.get(30, TimeUnit.SECONDS);
          if (result instanceof HttpResponse<?> response) {
            assertEquals(200, response.statusCode(), String.valueOf(response.body()));
          }
        }
        long last = 3 + 30;

        List<String> viaWebSocket = new ArrayList<>();
        alice.awaitPush(p -> "mix".equals(p.path("room").asText()) && p.path("seq").asLong() == last, WAIT);
        alice.pushes().stream()
            .filter(p -> "event".equals(p.path("type").asText()) && "message".equals(p.path("kind").asText()))
            .forEach(p -> viaWebSocket.add(p.path("seq").asLong() + ":" + p.path("body").asText()));

        bob.await(e -> e.data().path("seq").asLong() == last, WAIT);
        List<String> viaSse = new ArrayList<>();
        bob.events().stream()
            .filter(e -> "event".equals(e.type()) && "message".equals(e.data().path("kind").asText()))
            .forEach(e -> viaSse.add(e.data().path("seq").asLong() + ":" + e.data().path("body").asText()));

        List<String> viaPoll = new ArrayList<>();
        String cursor = carolCursor;
        long seen = 0;
        while (seen < last) {
          JsonNode answer = poll(node, carolToken, cursor, "5s");
          for (JsonNode frame : answer.path("events")) {
            if ("event".equals(frame.path("type").asText())) {
              seen = frame.path("seq").asLong();
              if ("message".equals(frame.path("kind").asText())) {
                viaPoll.add(frame.path("seq").asLong() + ":" + frame.path("body").asText());
              }
            }
          }
          cursor = answer.path("cursor").asText();
        }

        assertEquals(30, viaWebSocket.size());
        assertEquals(viaWebSocket, viaSse, "SSE saw the same messages in the same order");
        assertEquals(viaWebSocket, viaPoll, "long-poll saw the same messages in the same order");
      }
    }
  }

  @Test
  void sseResumesExactlyAfterLastEventId() throws Exception {
    String token = token(node, "dora");
    assertEquals(200, rest(node, "POST", "/v1/rooms", token, "{\"room\":\"sse-resume\"}", null).statusCode());
    String lastId;
    try (SseClient first = SseClient.connect(node.http(), token, null)) {
      rest(node, "POST", "/v1/rooms/sse-resume/messages", token, "{\"body\":\"one\"}", "s-1");
      lastId = first.await(e -> e.data().path("seq").asLong() == 2, WAIT).id();
      assertNotNull(lastId, "timeline events carry a resumable id");
    }
    rest(node, "POST", "/v1/rooms/sse-resume/messages", token, "{\"body\":\"two\"}", "s-2");
    rest(node, "POST", "/v1/rooms/sse-resume/messages", token, "{\"body\":\"three\"}", "s-3");
    try (SseClient again = SseClient.connect(node.http(), token, lastId)) {
      again.await(e -> e.data().path("seq").asLong() == 4, WAIT);
      List<Long> seqs = again.events().stream().filter(e -> "event".equals(e.type())).map(e -> e.data().path("seq").asLong()).toList();
      assertEquals(List.of(3L, 4L), seqs, "exactly what was missed");
    }
  }

  @Test
  void badCursorsAndTimeoutsGetClearErrors() throws Exception {
    String token = token(node, "emil");
    rest(node, "POST", "/v1/rooms", token, "{\"room\":\"emils\"}", null);
    assertError(400, "bad_cursor", pollResponse(node, token, "not-a-cursor", "0"));
    assertError(400, "bad_timeout", pollResponse(node, token, null, "soon"));
    String stranger = new ResumeCursor(Map.of("someone-elses", new ResumeCursor.Position(3, 1))).encode();
    assertError(403, "not_a_member", pollResponse(node, token, stranger, "0"));

    JsonNode now = poll(node, token, null, "0");
    ResumeCursor mine = ResumeCursor.decode(now.path("cursor").asText());
    long epoch = mine.rooms().get("emils").epoch();
    String future = new ResumeCursor(Map.of("emils", new ResumeCursor.Position(999, epoch))).encode();
    JsonNode ahead = poll(node, token, future, "2s");
    assertEquals("cursor_ahead", ahead.path("events").get(0).path("code").asText());
    String wiped = new ResumeCursor(Map.of("emils", new ResumeCursor.Position(1, epoch + 1))).encode();
    JsonNode stale = poll(node, token, wiped, "2s");
    assertEquals("reload", stale.path("events").get(0).path("type").asText());
    assertEquals("cursor_stale", stale.path("events").get(0).path("code").asText());

    long start = System.nanoTime();
    JsonNode empty = poll(node, token, now.path("cursor").asText(), "0");
    assertEquals(0, empty.path("events").size(), "a short poll answers at once");
    assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5));
  }

  @Test
  void aPollThatStartsWithAJobResetAnswersWithACursorThatStillNamesItsRooms() throws Exception {
    // The job catch-up and the room list come from the user's entity by different paths: a
    // job push delivered before the room list is in would be handed out with a cursor that
    // names no room, and the next poll would start over from the read markers.
    String token = token(node, "jo");
    assertEquals(200, rest(node, "POST", "/v1/rooms", token, "{\"room\":\"placed\"}", null).statusCode());
    rest(node, "POST", "/v1/rooms/placed/messages", token, "{\"body\":\"read already\"}", "p-1");
    ResumeCursor read = ResumeCursor.decode(poll(node, token, null, "0").path("cursor").asText());
    assertEquals(2, read.positions().get("placed").seq());
    for (int round = 0; round < 5; round++) {
      // A place counted by an incarnation of the entity that is gone (as after a restart).
      String stale = new ResumeCursor(read.checkpoint(), read.base(), read.rooms(), new ResumeCursor.Jobs("gone" + round, 0)).encode();
      JsonNode answer = poll(node, token, stale, "0");
      assertEquals(1, answer.path("events").size(), answer.toString());
      assertEquals("jobs_restarted", answer.path("events").get(0).path("code").asText());
      ResumeCursor after = ResumeCursor.decode(answer.path("cursor").asText());
      assertEquals(read.positions(), after.positions(), "round " + round + ": " + answer);
      assertNotNull(after.jobs());
    }
  }

  @Test
  void aLongPollIsHeldUntilSomethingHappens() throws Exception {
    String token = token(node, "fay");
    rest(node, "POST", "/v1/rooms", token, "{\"room\":\"held\"}", null);
    String cursor = poll(node, token, null, "0").path("cursor").asText();
    CompletableFuture<JsonNode> held = CompletableFuture.supplyAsync(() -> poll(node, token, cursor, "20s"));
    assertFalse(held.isDone());
    rest(node, "POST", "/v1/rooms/held/messages", token, "{\"body\":\"wake up\"}", "w-1");
    JsonNode answer = held.get(20, TimeUnit.SECONDS);
    assertEquals("wake up", answer.path("events").get(0).path("body").asText());
  }

  @Test
  void everyTransportResumesAfterItsNodeRestarts() throws Exception {
    Config ks = TestCassandra.keyspacesFor("TransportsITRestart");
    Map<String, Long> wsPositions;
    String sseId;
    String pollCursor;
    String token;
    try (InJvmNode first = InJvmNode.start(ks)) {
      token = token(first, "gus");
      try (ParleyClient gus = ParleyClient.connect(first.ws(), token).get(20, TimeUnit.SECONDS)) {
        gus.createRoom("durable", "public", null).get(20, TimeUnit.SECONDS);
        gus.resume(null).get(20, TimeUnit.SECONDS);
        gus.send("durable", "d-1", "before restart").get(20, TimeUnit.SECONDS);
        gus.awaitPush(p -> p.path("seq").asLong() == 2, WAIT);
        wsPositions = gus.positions();
      }
      try (SseClient sse = SseClient.connect(first.http(), token, null)) {
        sseId = sse.await(e -> e.data().path("seq").asLong() == 2, WAIT).id();
      }
      pollCursor = poll(first, token, null, "0").path("cursor").asText();
    }
    try (InJvmNode second = InJvmNode.start(ks)) {
      token = token(second, "gus");
      rest(second, "POST", "/v1/rooms/durable/messages", token, "{\"body\":\"after restart\"}", "d-2");
      try (ParleyClient gus = ParleyClient.connect(second.ws(), token).get(20, TimeUnit.SECONDS)) {
        gus.resume(wsPositions).get(20, TimeUnit.SECONDS);
        JsonNode missed = gus.awaitPush(p -> p.path("seq").asLong() == 3, WAIT);
        assertEquals("after restart", missed.path("body").asText());
        assertEquals(1, gus.pushes().stream().filter(p -> "event".equals(p.path("type").asText())).count(), gus.pushes().toString());
      }
      try (SseClient sse = SseClient.connect(second.http(), token, sseId)) {
        assertEquals("after restart", sse.await(e -> e.data().path("seq").asLong() == 3, WAIT).data().path("body").asText());
        assertEquals(1, sse.events().stream().filter(e -> "event".equals(e.type())).count());
      }
      JsonNode polled = poll(second, token, pollCursor, "5s");
      // The user's entity restarted with the node, so its memory of job pushes is gone: said
      // first (docs/transports.md, Job pushes), then the room's event from the journal.
      assertEquals(2, polled.path("events").size(), polled.toString());
      assertEquals("jobs_restarted", polled.path("events").get(0).path("code").asText());
      assertEquals("after restart", polled.path("events").get(1).path("body").asText());
    }
  }

  @Test
  void aSlowReaderLagsInPlaceAndStillGetsEveryMessageOnceInOrder() throws Exception {
    Config ks = TestCassandra.keyspacesFor("TransportsITSlow");
    // A paused reader answers no heartbeat; on a busy machine the writes can outlast the
    // heartbeat deadline, which would close it for the wrong reason (DeadPeerIT tests that).
    Config fast = ConfigFactory.parseString("parley.chat.rate-per-second = 100000\nparley.chat.rate-burst = 100000\nparley.chat.user-rate-per-second = 100000\nparley.chat.user-rate-burst = 100000\nparley.chat.outbound-buffer = 256\nparley.chat.heartbeat-timeout = 10m");
    int total = Integer.getInteger("parley.test.slow.messages", 50_000);
    try (InJvmNode slowNode = InJvmNode.start(ks, 0, 0, fast);
        ParleyClient writer = ParleyClient.connect(slowNode.ws(), token(slowNode, "hana")).get(20, TimeUnit.SECONDS)) {
      writer.createRoom("firehose", "public", null).get(20, TimeUnit.SECONDS);
      try (SlowReader reader = SlowReader.connect(slowNode.ws(), token(slowNode, "ivan"))) {
        reader.request("{\"type\":\"join\",\"id\":\"j\",\"room\":\"firehose\"}");
        reader.request("{\"type\":\"resume\",\"id\":\"r\"}");
        reader.awaitSeq(2, WAIT);
        reader.pause();
        long heapBefore = usedHeapAfterGc();
        List<CompletableFuture<?>> inFlight = new ArrayList<>();
        for (int i = 0; i < total; i++) {
          inFlight.add(writer.send("firehose", "m-" + i, "message " + i));
          if (inFlight.size() == 500) {
            for (CompletableFuture<?> f : inFlight) {
              f.get(60, TimeUnit.SECONDS);
            }
            inFlight.clear();
          }
        }
        for (CompletableFuture<?> f : inFlight) {
          f.get(60, TimeUnit.SECONDS);
        }
        long heapDuring = usedHeapAfterGc();
        System.out.printf("slow reader: heap %d MB before, %d MB with %d messages unread%n", heapBefore >> 20, heapDuring >> 20, total);
        assertTrue(heapDuring - heapBefore < 96L << 20, "the node buffers a bounded amount for a reader that stopped");
        // Requests sent while the reader's buffer is full: their replies cannot be fetched
        // again like events, so each must still arrive.
        for (int i = 0; i < 5; i++) {
          reader.request("{\"type\":\"list_rooms\",\"id\":\"lagging-" + i + "\"}");
        }

        reader.resume();
        reader.awaitSeq(2 + total, Duration.ofMinutes(3));
        reader.awaitReplies(Set.of("lagging-0", "lagging-1", "lagging-2", "lagging-3", "lagging-4"), WAIT);
        assertTrue(reader.sawLagged, "the reader was told it lagged");
        assertTrue(reader.inOrderWithoutDuplicates, "every message once, in order: " + reader.problem);
        assertEquals(2 + total, reader.lastSeq);
      }
    }
  }

  @Test
  void shuttingDownANodeTellsWebSocketClientsToReconnect() throws Exception {
    Config ks = TestCassandra.keyspacesFor("TransportsITDrain");
    InJvmNode draining = InJvmNode.start(ks);
    ParleyClient jo = ParleyClient.connect(draining.ws(), token(draining, "jo")).get(20, TimeUnit.SECONDS);
    CoordinatedShutdown.get(draining.system).run(CoordinatedShutdown.unknownReason());
    JsonNode close = jo.awaitPush(p -> "close".equals(p.path("type").asText()), WAIT);
    assertEquals(1012, close.path("code").asInt());
    jo.closed().get(20, TimeUnit.SECONDS);
    draining.close();
  }

  // ---------------------------------------------------------------------------------------

  @Test
  void restCallsOfOneUserAreRateLimitedWithRetryAfter() throws Exception {
    String flooder = token(node, "rest-flooder");
    String bystander = token(node, "rest-bystander");
    // The node's default rate per user: 40 per second, bursts of 80. 200 calls at once go past it.
    // Threads of their own: the common pool has one thread on two cores, which would send the
    // calls one after another, slower than the limit.
    java.util.concurrent.ExecutorService senders = java.util.concurrent.Executors.newFixedThreadPool(50);
    List<HttpResponse<String>> responses = new ArrayList<>();
    try {
      List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        calls.add(CompletableFuture.supplyAsync(() -> rest(node, "GET", "/v1/rooms", flooder, null, null), senders));
      }
      for (CompletableFuture<HttpResponse<String>> call : calls) {
        responses.add(call.get(WAIT.toSeconds(), TimeUnit.SECONDS));
      }
    } finally {
      senders.shutdown();
    }

    List<HttpResponse<String>> limited = responses.stream().filter(r -> r.statusCode() == 429).toList();
    assertTrue(
        limited.size() >= 30,
        limited.size() + " of 200 calls were limited; statuses "
            + responses.stream().collect(java.util.stream.Collectors.groupingBy(HttpResponse::statusCode, java.util.stream.Collectors.counting())));
    assertTrue(responses.stream().allMatch(r -> r.statusCode() == 200 || r.statusCode() == 429), "only answers or refusals");
    HttpResponse<String> refusal = limited.get(0);
    assertError(429, "rate_limited", refusal);
    long retryAfter = Long.parseLong(refusal.headers().firstValue("Retry-After").orElseThrow());
    assertTrue(retryAfter >= 1, "Retry-After in whole seconds");
    assertEquals(200, rest(node, "GET", "/v1/rooms", bystander, null, null).statusCode(), "other users are not limited");

    // Waiting as told is enough to be served again.
    Thread.sleep(TimeUnit.SECONDS.toMillis(retryAfter));
    assertEquals(200, rest(node, "GET", "/v1/rooms", flooder, null, null).statusCode());
  }

  @Test
  void pollsCountAgainstTheUsersRateAndHeldPollsAsConnections() throws Exception {
    String poller = token(node, "poll-flooder");
    String bystander = token(node, "poll-bystander");
    // Held polls: the node's default of 20 connections per user holds for them too. Twenty
    // polls held for a minute take every slot, so the twenty-first is refused with Retry-After
    // while the others are still held (and so is a WebSocket: a held poll is a connection).
    assertEquals(200, rest(node, "POST", "/v1/rooms", poller, "{\"room\":\"poll-limit-room\"}", null).statusCode());
    String cursor = Frames.read(pollResponse(node, poller, null, "0").body()).path("cursor").asText();
    java.util.concurrent.ExecutorService pollers = java.util.concurrent.Executors.newFixedThreadPool(20);
    try {
      List<CompletableFuture<HttpResponse<String>>> held = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        held.add(CompletableFuture.supplyAsync(() -> pollResponse(node, poller, cursor, "60s"), pollers));
      }
      awaitHeldPolls(20);
      HttpResponse<String> refused = pollResponse(node, poller, cursor, "0");
      assertError(429, "rate_limited", refused);
      assertTrue(Long.parseLong(refused.headers().firstValue("Retry-After").orElseThrow()) >= 1, "Retry-After in whole seconds");
      assertTrue(held.stream().noneMatch(CompletableFuture::isDone), "the held polls are still held");
      assertEquals(200, pollResponse(node, bystander, null, "0").statusCode(), "other users are not limited");

      // A message in the poller's room answers every held poll: their slots are free again.
      assertEquals(200, rest(node, "POST", "/v1/rooms/poll-limit-room/messages", poller, "{\"body\":\"wake up\"}", "wake-1").statusCode());
      for (CompletableFuture<HttpResponse<String>> poll : held) {
        HttpResponse<String> answer = poll.get(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertEquals(200, answer.statusCode());
        assertTrue(answer.body().contains("wake up"), answer.body());
      }
      awaitHeldPolls(0);
      assertEquals(200, pollResponse(node, poller, cursor, "0").statusCode(), "answered polls no longer count");
    } finally {
      pollers.shutdownNow();
    }

    // Each poll is one request of the user's shared rate (40/s, bursts of 80): 150 short polls
    // at once go past it.
    java.util.concurrent.ExecutorService senders = java.util.concurrent.Executors.newFixedThreadPool(15);
    List<HttpResponse<String>> answers = new ArrayList<>();
    try {
      List<CompletableFuture<HttpResponse<String>>> polls = new ArrayList<>();
      for (int i = 0; i < 150; i++) {
        polls.add(CompletableFuture.supplyAsync(() -> pollResponse(node, bystander, null, "0"), senders));
      }
      for (CompletableFuture<HttpResponse<String>> poll : polls) {
        answers.add(poll.get(WAIT.toSeconds(), TimeUnit.SECONDS));
      }
    } finally {
      senders.shutdown();
    }
    long limited = answers.stream().filter(r -> r.statusCode() == 429).count();
    assertTrue(limited >= 30, limited + " of 150 polls were limited");
    assertTrue(answers.stream().allMatch(r -> r.statusCode() == 200 || r.statusCode() == 429), "only answers or refusals");
  }

  /** Waits until the node's long-poll gauge shows {@code count} held polls. */
  private static void awaitHeldPolls(int count) throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    double held = -1;
    while (System.nanoTime() < deadline) {
      held = ParleyMetrics.get(node.system).registry().get("parley.connections").tag("transport", ParleyMetrics.LONG_POLL).gauge().value();
      if (held == count) {
        return;
      }
      Thread.sleep(50);
    }
    throw new AssertionError("held polls: " + held + ", expected " + count);
  }

  private static long usedHeapAfterGc() {
    Runtime runtime = Runtime.getRuntime();
    System.gc();
    return runtime.totalMemory() - runtime.freeMemory();
  }

  private static String token(InJvmNode on, String user) {
    return ParleyClient.devToken(on.http(), user);
  }

  private static HttpResponse<String> rest(
      InJvmNode on, String method, String path, String token, String body, String idempotencyKey) {
    return on.rest(method, path, token, body, idempotencyKey);
  }

  private static HttpResponse<String> pollResponse(InJvmNode on, String token, String cursor, String timeout) {
    String query = "?timeout=" + timeout + (cursor == null ? "" : "&cursor=" + URLEncoder.encode(cursor, StandardCharsets.UTF_8));
    try {
      return HTTP.send(
          HttpRequest.newBuilder(on.http().resolve("/v1/poll" + query)).header("Authorization", "Bearer " + token).build(),
          HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static JsonNode poll(InJvmNode on, String token, String cursor, String timeout) {
    HttpResponse<String> response = pollResponse(on, token, cursor, timeout);
    assertEquals(200, response.statusCode(), response.body());
    return Frames.read(response.body());
  }

  private static void assertError(int status, String code, HttpResponse<String> response) {
    assertEquals(status, response.statusCode(), response.body());
    assertEquals(code, Frames.read(response.body()).path("code").asText());
  }

  /** What a {@link PausableSocket} reader saw: every room event once and in order, or not. */
  private static final class SlowReader implements AutoCloseable {
    private PausableSocket socket;
    volatile long lastSeq;
    volatile boolean sawLagged;
    volatile boolean inOrderWithoutDuplicates = true;
    volatile String problem = "";
    private final Set<String> replies = new HashSet<>();

    static SlowReader connect(URI ws, String token) throws Exception {
      SlowReader reader = new SlowReader();
      reader.socket = PausableSocket.connect(ws, token, reader::onFrame);
      return reader;
    }

    void request(String frame) {
      socket.send(frame);
    }

    void pause() {
      socket.pause();
    }

    void resume() {
      socket.resume();
    }

    synchronized void awaitSeq(long seq, Duration timeout) throws InterruptedException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (lastSeq < seq) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new AssertionError("reached seq " + lastSeq + ", not " + seq);
        }
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
    }

    synchronized void awaitReplies(Set<String> ids, Duration timeout) throws InterruptedException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (!replies.containsAll(ids)) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new AssertionError("replies to " + replies + ", not to all of " + ids);
        }
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
    }

    private void onFrame(JsonNode frame) {
      String type = frame.path("type").asText();
      if ("ok".equals(type)) {
        synchronized (this) {
          replies.add(frame.path("id").asText());
          notifyAll();
        }
      } else if ("lagged".equals(type)) {
        sawLagged = true;
      } else if ("event".equals(type)) {
        long seq = frame.path("seq").asLong();
        if (seq != lastSeq + 1 && lastSeq != 0) {
          inOrderWithoutDuplicates = false;
          problem = "got " + seq + " after " + lastSeq;
        }
        synchronized (this) {
          lastSeq = seq;
          notifyAll();
        }
      }
    }

    @Override
    public void close() {
      socket.close();
    }
  }
}
