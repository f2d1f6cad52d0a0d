package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.ConfigFactory;
import java.net.Socket;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.client.ParleyClient;
import parley.protocol.Codec;
import parley.testing.InJvmNode;
import parley.testing.SseClient;
import parley.testing.TestCassandra;

/**
 * What a hostile or merely unusual HTTP client meets, over real sockets against a real node
 * and Cassandra: a user in a thousand rooms resumes over WebSocket, SSE and long-poll (short
 * cursors), sockets trickling header lines are closed, pages of other origins are refused
 * while allowed ones get CORS, and the management routes ask for their token.
 */
class HostileHttpIT {

  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final int ROOMS = 1000;
  private static final Duration HEADER_TIMEOUT = Duration.ofSeconds(2);
  private static final int MAX_CURSOR_CHARS = 1024;
  private static final String APP = "https://app.example";
  private static InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    node = InJvmNode.start(
        TestCassandra.keyspacesFor("HostileHttpIT"),
        0,
        0,
        ConfigFactory.parseString("""
            parley.chat.rooms-per-minute = 100000
            parley.chat.user-rate-per-second = 100000
            parley.chat.user-rate-burst = 100000
            parley.chat.rate-per-second = 100000
            parley.chat.rate-burst = 100000
            parley.http.request-header-timeout = 2s
            parley.ops.management-token = "test-management-token"
            parley.http.allowed-origins = "https://app.example"
            # A poll answers at the latest its timeout plus this after it started; a first
            # poll reads a page of each of a thousand rooms, slow on a busy 2-core machine.
            parley.chat.ask-timeout = 60s
            """));
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void aUserInAThousandRoomsResumesOverWebSocketSseAndLongPollWithShortCursors() throws Exception {
    String token = node.token("hoarder");
    List<String> rooms = new ArrayList<>();
    for (int i = 0; i < ROOMS; i++) {
      // Forty characters: sixteen of them moved already make a 1,000-character cursor, so
      // only a bound on the cursor's length (not on its number of rooms) keeps it short.
      rooms.add(String.format("hoarder-project-room-with-a-long-id-%04d", i));
    }
    try (ParleyClient client = ParleyClient.connect(node.ws(), token).get(20, TimeUnit.SECONDS)) {
      long start = System.nanoTime();
      for (int from = 0; from < ROOMS; from += 100) {
        List<CompletableFuture<Long>> created = new ArrayList<>();
        rooms.subList(from, from + 100).forEach(room -> created.add(client.createRoom(room, "public", null)));
        for (CompletableFuture<Long> c : created) {
          c.get(30, TimeUnit.SECONDS);
        }
      }
      System.out.printf("[cursor] %d rooms created in %d ms%n", ROOMS, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));

      // What version 1 spelled out: every room, by name, with its seq and epoch.
      Map<String, ResumeCursor.Position> everyRoom = new TreeMap<>();
      rooms.forEach(room -> everyRoom.put(room, new ResumeCursor.Position(1, 1_764_800_000_000L)));
      System.out.printf("[cursor] %d rooms: version 1 cursor %d chars%n", ROOMS, version1(everyRoom).length());

      // Long-poll: the first cursor names a checkpoint of all thousand rooms.
      JsonNode first = poll(token, null, "0");
      String cursor = first.path("cursor").asText();
      System.out.printf("[cursor] %d rooms: long-poll cursor %d chars%n", ROOMS, cursor.length());
      assertTrue(!cursor.isEmpty() && cursor.length() < 200, "a short cursor naming a checkpoint: " + cursor);

      // Messages in forty rooms: more than a cursor's delta holds, so a new checkpoint follows.
      List<String> busy = rooms.subList(0, 40);
      sendOneEach(client, busy, "p");
      TreeSet<String> polled = new TreeSet<>();
      int longest = 0;
      while (polled.size() < busy.size()) {
        JsonNode answer = poll(token, cursor, "5s");
        for (JsonNode frame : answer.path("events")) {
          if ("message".equals(frame.path("kind").asText())) {
            assertTrue(polled.add(frame.path("room").asText() + "@" + frame.path("seq").asLong()), "each event once: " + frame);
          }
        }
        cursor = answer.path("cursor").asText();
        longest = Math.max(longest, cursor.length());
      }
      System.out.printf("[cursor] %d rooms: longest long-poll cursor %d chars%n", ROOMS, longest);
      assertTrue(longest <= MAX_CURSOR_CHARS, "a poll's cursor stays short: " + longest);
      assertEquals(0, poll(token, cursor, "0").path("events").size(), "nothing twice");

      // SSE: the id of the last event seen, resumed as Last-Event-ID, with the same bound.
      String lastId;
      try (SseClient sse = SseClient.connect(node.http(), token, cursor)) {
        assertEquals(200, sse.status);
        List<String> next = rooms.subList(100, 140);
        sendOneEach(client, next, "s");
        List<SseClient.Event> got = awaitEvents(sse, next.size());
        assertEquals(new TreeSet<>(next), new TreeSet<>(got.stream().map(e -> e.data().path("room").asText()).toList()));
        lastId = got.get(got.size() - 1).id();
      }
      System.out.printf("[cursor] %d rooms: SSE Last-Event-ID %d chars%n", ROOMS, lastId.length());
      assertNotNull(lastId);
      assertTrue(lastId.length() <= MAX_CURSOR_CHARS, lastId);

      List<String> missed = rooms.subList(500, 530);
      sendOneEach(client, missed, "m");
      try (SseClient again = SseClient.connect(node.http(), token, lastId)) {
        assertEquals(200, again.status);
        List<String> resumed = awaitEvents(again, missed.size()).stream().map(e -> e.data().path("room").asText()).sorted().toList();
        assertEquals(missed, resumed, "exactly what was missed, in a thousand rooms");
        lastId = timelineEvents(again).get(missed.size() - 1).id();
        assertTrue(lastId.length() <= MAX_CURSOR_CHARS, lastId);
      }

      // WebSocket: one resume frame names all thousand rooms (under the 64 KiB frame limit).
      Map<String, Long> seen = new TreeMap<>();
      rooms.forEach(room -> seen.put(room, 1L));
      for (List<String> sent : List.of(busy, rooms.subList(100, 140), missed)) {
        sent.forEach(room -> seen.put(room, 2L));
      }
      List<String> offline = rooms.subList(700, 720);
      sendOneEach(client, offline, "w");
      try (ParleyClient reader = ParleyClient.connect(node.ws(), token).get(20, TimeUnit.SECONDS)) {
        Map<String, Long> resumedAt = reader.resume(seen).get(30, TimeUnit.SECONDS);
        System.out.printf("[cursor] %d rooms: WebSocket resume frame naming every room %d bytes%n", ROOMS, Codec.JSON.writeValueAsString(seen).length() + 40);
        assertEquals(seen, resumedAt);
        reader.awaitPush(p -> messagesIn(reader).size() >= offline.size(), WAIT);
        assertEquals(offline, messagesIn(reader), "exactly what was missed, in a thousand rooms");
      }

    }
  }

  /** The rooms of the message events a client was pushed, sorted. */
  private static List<String> messagesIn(ParleyClient client) {
    return client.pushes().stream()
        .filter(p -> "event".equals(p.path("type").asText()) && "message".equals(p.path("kind").asText()))
        .map(p -> p.path("room").asText())
        .sorted()
        .toList();
  }

  @Test
  void aVersion1CursorFromAnOlderServerIsStillAccepted() throws Exception {
    String token = node.token("oldtimer");
    assertEquals(200, node.rest("POST", "/v1/rooms", token, "{\"room\":\"oldtimer-room\"}", null).statusCode());
    assertEquals(200, node.rest("POST", "/v1/rooms/oldtimer-room/messages", token, "{\"body\":\"one\"}", "o-1").statusCode());
    assertEquals(200, node.rest("POST", "/v1/rooms/oldtimer-room/messages", token, "{\"body\":\"two\"}", "o-2").statusCode());
    JsonNode answer = poll(token, version1(Map.of("oldtimer-room", new ResumeCursor.Position(2, 0))), "0");
    assertEquals(List.of(3L), stream(answer.path("events")).map(f -> f.path("seq").asLong()).toList());
    assertTrue(answer.path("cursor").asText().startsWith("2."), "answered with a version 2 cursor");
  }

  @Test
  void anExpiredOrUnknownCheckpointIsRefusedWithCursorExpired() throws Exception {
    String token = node.token("forgetful");
    assertEquals(200, node.rest("POST", "/v1/rooms", token, "{\"room\":\"forgetful-room\"}", null).statusCode());
    HttpResponse<String> refused = pollResponse(token, "2.AAAAAAAAAAAAAAAA.", "0");
    assertEquals(410, refused.statusCode(), refused.body());
    assertEquals("cursor_expired", Frames.read(refused.body()).path("code").asText());
  }

  @Test
  void socketsThatTrickleHeaderLinesAreClosedWithinTheBoundWhileHonestClientsGetIn() throws Exception {
    String token = node.token("patient");
    assertEquals(200, node.rest("POST", "/v1/rooms", token, "{\"room\":\"patient-room\"}", null).statusCode());
    try (ParleyClient webSocket = ParleyClient.connect(node.ws(), token).get(20, TimeUnit.SECONDS);
        SseClient sse = SseClient.connect(node.http(), token, null)) {
      webSocket.resume(null).get(20, TimeUnit.SECONDS);
      int count = 30;
      List<Socket> sockets = new ArrayList<>();
      List<CompletableFuture<Long>> held = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        Socket socket = new Socket("127.0.0.1", node.httpPort);
        long opened = System.nanoTime();
        socket.setSoTimeout(20_000);
        socket.getOutputStream().write(("GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\n").getBytes(StandardCharsets.US_ASCII));
        sockets.add(socket);
        held.add(CompletableFuture.supplyAsync(() -> {
          try {
            while (socket.getInputStream().read() != -1) {
              // The node answers nothing to a request it never fully received.
            }
          } catch (java.io.IOException closed) {
            // A reset counts as closed too.
          }
          return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - opened);
        }));
      }
      // Each socket sends one more header line every 300 ms, well within the idle timeout.
      Thread trickler = new Thread(() -> {
        for (int line = 0; !Thread.currentThread().isInterrupted(); line++) {
          for (Socket socket : sockets) {
            try {
              socket.getOutputStream().write(("X-Trickle-" + line + ": x\r\n").getBytes(StandardCharsets.US_ASCII));
            } catch (java.io.IOException closed) {
              // Closed by the node: what the test waits for.
            }
          }
          try {
            Thread.sleep(300);
          } catch (InterruptedException e) {
            return;
          }
        }
      });
      trickler.start();
      try {
        HttpResponse<String> honest = HTTP.send(HttpRequest.newBuilder(node.http().resolve("/v1/info")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, honest.statusCode(), "an honest client gets in while the trickling sockets are open");
        long longest = 0;
        for (CompletableFuture<Long> h : held) {
          longest = Math.max(longest, h.get(20, TimeUnit.SECONDS));
        }
        System.out.printf("[slowloris] %d sockets trickling header lines: held at most %d ms (bound %d ms)%n", count, longest, HEADER_TIMEOUT.toMillis());
        assertTrue(longest < HEADER_TIMEOUT.toMillis() + 1500, "closed within the bound: " + longest + " ms");
      } finally {
        trickler.interrupt();
        for (Socket socket : sockets) {
          socket.close();
        }
      }
      // Streams already running outlive the request-head bound.
      assertEquals(200, node.rest("POST", "/v1/rooms/patient-room/messages", token, "{\"body\":\"still here\"}", "still-1").statusCode());
      webSocket.awaitPush(p -> "still here".equals(p.path("body").asText()), WAIT);
      sse.await(e -> "still here".equals(e.data().path("body").asText()), WAIT);
    }
  }

  @Test
  void pagesOfAnAllowedOriginGetCorsOnRestSseAndLongPollAndOthersAreRefused() throws Exception {
    String token = node.token("webapp");
    assertEquals(200, node.rest("POST", "/v1/rooms", token, "{\"room\":\"webapp-room\"}", null).statusCode());

    HttpResponse<String> preflight = HTTP.send(
        HttpRequest.newBuilder(node.http().resolve("/v1/rooms/webapp-room/messages"))
            .method("OPTIONS", HttpRequest.BodyPublishers.noBody())
            .header("Origin", APP)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization, content-type")
            .build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(200, preflight.statusCode(), preflight.body());
    assertEquals(APP, preflight.headers().firstValue("Access-Control-Allow-Origin").orElse(null));
    assertTrue(preflight.headers().firstValue("Access-Control-Allow-Methods").orElse("").contains("POST"));
    assertTrue(preflight.headers().firstValue("Access-Control-Allow-Headers").orElse("").toLowerCase().contains("authorization"));
    assertTrue(preflight.headers().firstValue("Access-Control-Max-Age").isPresent());

    HttpResponse<String> posted = HTTP.send(
        HttpRequest.newBuilder(node.http().resolve("/v1/rooms/webapp-room/messages"))
            .header("Origin", APP)
            .header("Authorization", "Bearer " + token)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", "cors-1")
            .POST(HttpRequest.BodyPublishers.ofString("{\"body\":\"from the app\"}"))
            .build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(200, posted.statusCode(), posted.body());
    assertEquals(APP, posted.headers().firstValue("Access-Control-Allow-Origin").orElse(null));
    assertTrue(posted.headers().firstValue("Access-Control-Expose-Headers").orElse("").contains("ETag"));

    HttpResponse<java.io.InputStream> stream = HTTP.send(
        HttpRequest.newBuilder(node.http().resolve("/v1/events?access_token=" + token))
            .header("Origin", APP)
            .header("Accept", "text/event-stream")
            .build(),
        HttpResponse.BodyHandlers.ofInputStream());
    stream.body().close();
    assertEquals(200, stream.statusCode());
    assertEquals(APP, stream.headers().firstValue("Access-Control-Allow-Origin").orElse(null));

    HttpResponse<String> polled = HTTP.send(
        HttpRequest.newBuilder(node.http().resolve("/v1/poll?timeout=0"))
            .header("Origin", APP)
            .header("Authorization", "Bearer " + token)
            .build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(200, polled.statusCode(), polled.body());
    assertEquals(APP, polled.headers().firstValue("Access-Control-Allow-Origin").orElse(null));

    String evil = "https://evil.example";
    for (HttpRequest refused : List.of(
        HttpRequest.newBuilder(node.http().resolve("/v1/rooms/webapp-room/messages"))
            .method("OPTIONS", HttpRequest.BodyPublishers.noBody())
            .header("Origin", evil)
            .header("Access-Control-Request-Method", "POST")
            .build(),
        HttpRequest.newBuilder(node.http().resolve("/v1/rooms/webapp-room/messages?limit=5"))
            .header("Origin", evil)
            .header("Authorization", "Bearer " + token)
            .build(),
        HttpRequest.newBuilder(node.http().resolve("/v1/events?access_token=" + token))
            .header("Origin", evil)
            .build(),
        HttpRequest.newBuilder(node.http().resolve("/v1/poll?timeout=0"))
            .header("Origin", evil)
            .header("Authorization", "Bearer " + token)
            .build())) {
      HttpResponse<String> answer = HTTP.send(refused, HttpResponse.BodyHandlers.ofString());
      assertEquals(403, answer.statusCode(), refused.method() + " " + refused.uri());
      assertEquals("origin_not_allowed", Frames.read(answer.body()).path("code").asText(), answer.body());
      assertTrue(answer.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
    }

    // Clients that are no web page (no Origin) get no CORS headers and are not refused.
    HttpResponse<String> plain = node.rest("GET", "/v1/rooms/webapp-room/messages?limit=5", token, null, null);
    assertEquals(200, plain.statusCode(), plain.body());
    assertTrue(plain.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
  }

  @Test
  void restBodiesOverTheFrameLimitAreRefusedAsJsonHoweverTheyAreSent() throws Exception {
    String token = node.token("bulky");
    assertEquals(200, node.rest("POST", "/v1/rooms", token, "{\"room\":\"bulky-room\"}", null).statusCode());
    String justOver = "{\"body\":\"" + "x".repeat(65_536) + "\"}";
    String overTheParser = "{\"body\":\"" + "x".repeat(2 * 1024 * 1024) + "\"}";

    // With a Content-Length, the frame limit (64 KiB), and past the server's 1 MiB parsing limit.
    assertTooLarge(bodyCall("/v1/rooms/bulky-room/messages", token, "big-1", HttpRequest.BodyPublishers.ofString(justOver)));
    assertTooLarge(bodyCall("/v1/rooms/bulky-room/messages", token, "big-2", HttpRequest.BodyPublishers.ofString(overTheParser)));
    // Chunked (no length known up front), on a job submission too.
    assertTooLarge(bodyCall("/v1/rooms/bulky-room/messages", token, "big-3", HttpRequest.BodyPublishers.ofInputStream(
        () -> new java.io.ByteArrayInputStream(justOver.getBytes(StandardCharsets.UTF_8)))));
    assertTooLarge(bodyCall("/v1/queues/default/jobs", token, "big-4", HttpRequest.BodyPublishers.ofString(
        "{\"data\":\"" + "y".repeat(70_000) + "\"}")));
    // Under the frame limit the field's own limit speaks (16 KiB bodies).
    HttpResponse<String> longBody = bodyCall("/v1/rooms/bulky-room/messages", token, "big-5",
        HttpRequest.BodyPublishers.ofString("{\"body\":\"" + "z".repeat(20_000) + "\"}"));
    assertEquals(413, longBody.statusCode(), longBody.body());
    assertEquals("body_too_large", Frames.read(longBody.body()).path("code").asText(), longBody.body());

    // Nothing of them was written, and the room takes the next message.
    HttpResponse<String> fine = bodyCall("/v1/rooms/bulky-room/messages", token, "fine", HttpRequest.BodyPublishers.ofString("{\"body\":\"fits\"}"));
    assertEquals(200, fine.statusCode(), fine.body());
    assertEquals(2, Frames.read(fine.body()).path("seq").asLong(), "created, then this message: " + fine.body());
  }

  @Test
  void pathsAndMethodsTheApiDoesNotHaveAreJsonErrorsToo() throws Exception {
    String token = node.token("lost");
    HttpResponse<String> nowhere = HTTP.send(
        HttpRequest.newBuilder(node.http().resolve("/v1/nowhere/at/all")).header("Authorization", "Bearer " + token).build(),
        HttpResponse.BodyHandlers.ofString());
    assertJsonError(404, "route_not_found", nowhere);
    HttpResponse<String> wrongMethod = HTTP.send(
        HttpRequest.newBuilder(node.http().resolve("/v1/rooms")).header("Authorization", "Bearer " + token)
            .PUT(HttpRequest.BodyPublishers.ofString("{}")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertJsonError(405, "method_not_allowed", wrongMethod);
    // The web client's pages outside /v1 are untouched.
    assertEquals(200, HTTP.send(HttpRequest.newBuilder(node.http().resolve("/")).build(), HttpResponse.BodyHandlers.ofString()).statusCode());
  }

  private static void assertJsonError(int status, String code, HttpResponse<String> response) {
    assertEquals(status, response.statusCode(), response.body());
    assertEquals("application/json", response.headers().firstValue("Content-Type").orElse(""), response.body());
    JsonNode error = Frames.read(response.body());
    assertEquals("error", error.path("type").asText(), response.body());
    assertEquals(code, error.path("code").asText(), response.body());
    assertFalse(error.path("message").asText().isEmpty(), response.body());
  }

  private static HttpResponse<String> bodyCall(String path, String token, String key, HttpRequest.BodyPublisher body) throws Exception {
    return HTTP.send(
        HttpRequest.newBuilder(node.http().resolve(path))
            .header("Authorization", "Bearer " + token)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .POST(body)
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static void assertTooLarge(HttpResponse<String> response) {
    assertJsonError(413, "frame_too_large", response);
  }

  @Test
  void theManagementPortAsksForItsTokenExceptOnProbes() throws Exception {
    assertEquals(200, management("/ready", null).statusCode());
    assertEquals(200, management("/alive", null).statusCode());
    for (String path : List.of("/cluster/members", "/shard-distribution", "/shard-distribution/room/general")) {
      HttpResponse<String> missing = management(path, null);
      assertEquals(401, missing.statusCode(), path);
      assertEquals("token_missing", Frames.read(missing.body()).path("code").asText(), path);
      assertTrue(missing.headers().firstValue("WWW-Authenticate").orElse("").startsWith("Bearer"), path);
      HttpResponse<String> wrong = management(path, "not-the-token");
      assertEquals(401, wrong.statusCode(), path);
      assertEquals("token_invalid", Frames.read(wrong.body()).path("code").asText(), path);
      assertEquals(200, management(path, "test-management-token").statusCode(), path);
    }
    assertTrue(Frames.read(management("/cluster/members", "test-management-token").body()).has("members"));
  }

  private static HttpResponse<String> management(String path, String bearer) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(node.management().resolve(path));
    if (bearer != null) {
      request.header("Authorization", "Bearer " + bearer);
    }
    return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  /** The stream's first {@code n} timeline events, once it has them; fails if any came twice. */
  private static List<SseClient.Event> awaitEvents(SseClient sse, int n) throws InterruptedException {
    sse.await(e -> timelineEvents(sse).size() >= n, WAIT);
    List<SseClient.Event> events = timelineEvents(sse);
    assertEquals(n, events.size(), "timeline events on the stream");
    return events;
  }

  private static List<SseClient.Event> timelineEvents(SseClient sse) {
    return sse.events().stream().filter(e -> "event".equals(e.type())).toList();
  }

  private static void sendOneEach(ParleyClient client, List<String> rooms, String prefix) throws Exception {
    List<CompletableFuture<?>> sends = new ArrayList<>();
    rooms.forEach(room -> sends.add(client.send(room, prefix + "-" + room, "hello " + room)));
    for (CompletableFuture<?> send : sends) {
      send.get(30, TimeUnit.SECONDS);
    }
  }

  private static java.util.stream.Stream<JsonNode> stream(JsonNode array) {
    List<JsonNode> list = new ArrayList<>();
    array.forEach(list::add);
    return list.stream();
  }

  private static String version1(Map<String, ResumeCursor.Position> positions) {
    ObjectNode node = Codec.JSON.createObjectNode();
    node.put("v", 1);
    ObjectNode r = node.putObject("r");
    positions.forEach((room, p) -> r.putArray(room).add(p.seq()).add(p.epoch()));
    return Base64.getUrlEncoder().withoutPadding().encodeToString(node.toString().getBytes(StandardCharsets.UTF_8));
  }

  private static HttpResponse<String> pollResponse(String token, String cursor, String timeout) {
    String query = "?timeout=" + timeout + (cursor == null ? "" : "&cursor=" + URLEncoder.encode(cursor, StandardCharsets.UTF_8));
    try {
      return HTTP.send(
          HttpRequest.newBuilder(node.http().resolve("/v1/poll" + query)).header("Authorization", "Bearer " + token).build(),
          HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static JsonNode poll(String token, String cursor, String timeout) {
    HttpResponse<String> response = pollResponse(token, cursor, timeout);
    assertEquals(200, response.statusCode(), response.body());
    return Frames.read(response.body());
  }
}
