package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.testing.CapturedLog;
import parley.testing.InJvmNode;
import parley.testing.PausableSocket;
import parley.testing.RawWebSocket;
import parley.testing.TestCassandra;

/**
 * The protocol as docs/protocol.md and docs/transports.md promise it, checked through the wire
 * with a raw client that does only what the docs say (no reference client smoothing over
 * anything): each test pins a defect that a client written from the docs ran into.
 */
class ProtocolContractIT {

  private static final Duration WAIT = Duration.ofSeconds(20);
  static InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("ProtocolContractIT"), 0, 0, config());
  }

  static Config config() {
    // Short heartbeats, so the SSE keep-alive shows within the test.
    return ConfigFactory.parseString(
        "parley.chat.heartbeat-interval = 300ms\nparley.chat.heartbeat-timeout = 30s\n"
            + "parley.http.allowed-origins = \"https://app.example\"\n"
            + "parley.chat.max-connections-per-user = 4\nparley.chat.rooms-per-minute = 5\n"
            // One typing notice per user and room a minute (2 s by default): a window
            // that a burst of calls surely fits in, however busy the machine.
            + "parley.chat.typing-interval = 1m");
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void aConnectionThatHasNotResumedIsSentNoRoomEventsAndThenEachExactlyOnce() throws Exception {
    String token = node.token("unresumed");
    try (Wire late = Wire.connect(token); Wire active = Wire.connect(token)) {
      active.request("{\"type\":\"resume\",\"id\":\"r\"}");
      active.request("{\"type\":\"create_room\",\"id\":\"c\",\"room\":\"early\"}");
      active.request("{\"type\":\"send\",\"id\":\"s\",\"room\":\"early\",\"clientMsgId\":\"m1\",\"body\":\"one\"}");
      // The user entity has the room (it tells the user's connections right after this).
      active.awaitReply("{\"type\":\"list_rooms\",\"id\":\"l\"}", ok -> ok.path("rooms").size() == 1);
      late.request("{\"type\":\"ping\",\"id\":\"p1\"}");
      late.request("{\"type\":\"ping\",\"id\":\"p2\"}");
      assertTrue(late.events("early").isEmpty(), "room events before resume: " + late.events("early"));

      JsonNode resumed = late.request("{\"type\":\"resume\",\"id\":\"r2\",\"rooms\":{\"early\":0}}");
      assertEquals(0, resumed.path("rooms").path("early").asLong());
      late.awaitEvent("early", 2);
      late.request("{\"type\":\"ping\",\"id\":\"p3\"}");
      assertEquals(List.of(1L, 2L), late.events("early"), "each event once, in order");
    }
  }

  @Test
  void theUsersOtherConnectionsFollowARoomFromItsStart() throws Exception {
    String token = node.token("twodevices");
    try (Wire phone = Wire.connect(token); Wire laptop = Wire.connect(token)) {
      phone.request("{\"type\":\"resume\",\"id\":\"r\"}");
      laptop.request("{\"type\":\"resume\",\"id\":\"r\"}");
      laptop.request("{\"type\":\"create_room\",\"id\":\"c\",\"room\":\"started\"}");
      JsonNode created = phone.awaitEvent("started", 1);
      assertEquals("created", created.path("kind").asText());

      // Joining over REST reaches the live connections from the join event on too.
      node.rest("POST", "/v1/rooms", node.token("owner2"), "{\"room\":\"joinedlater\"}", null);
      assertEquals(200, node.rest("POST", "/v1/rooms/joinedlater/join", token, null, null).statusCode());
      assertEquals("joined", phone.awaitEvent("joinedlater", 2).path("kind").asText());
      assertEquals("joined", laptop.awaitEvent("joinedlater", 2).path("kind").asText());
    }
  }

  @Test
  void aCreateRoomThatDiffersFromTheRoomIsRefusedAndAnExactRepeatIsNot() throws Exception {
    try (Wire owner = Wire.connect(node.token("creator"))) {
      assertEquals("ok", owner.request("{\"type\":\"create_room\",\"id\":\"1\",\"room\":\"plaza\",\"topic\":\"hi\"}").path("type").asText());
      assertEquals("ok", owner.request("{\"type\":\"create_room\",\"id\":\"2\",\"room\":\"plaza\",\"topic\":\"hi\"}").path("type").asText());
      JsonNode conflict = owner.request("{\"type\":\"create_room\",\"id\":\"3\",\"room\":\"plaza\",\"visibility\":\"private\",\"topic\":\"hi\"}");
      assertEquals("room_exists", conflict.path("code").asText());
      assertEquals("room_exists", owner.request("{\"type\":\"create_room\",\"id\":\"4\",\"room\":\"plaza\"}").path("code").asText());
      assertEquals("public", owner.request("{\"type\":\"list_members\",\"id\":\"5\",\"room\":\"plaza\"}").path("visibility").asText());
    }
  }

  @Test
  void sseRefusesACursorForSomeoneElsesRoomWithAStatusBeforeTheStream() throws Exception {
    node.rest("POST", "/v1/rooms", node.token("keeper"), "{\"room\":\"vault\",\"visibility\":\"private\"}", null);
    String cursor = new ResumeCursor(Map.of("vault", new ResumeCursor.Position(0, 0))).encode();
    HttpResponse<String> response =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(node.http().resolve("/v1/events?cursor=" + URLEncoder.encode(cursor, StandardCharsets.UTF_8)))
                    .header("Authorization", "Bearer " + node.token("outsider"))
                    .timeout(WAIT)
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    assertEquals(403, response.statusCode(), response.body());
    assertEquals("not_a_member", Frames.read(response.body()).path("code").asText());
  }

  @Test
  void sseKeepsAnIdleStreamOpenWithCommentLinesNotEmptyEvents() throws Exception {
    HttpResponse<InputStream> response =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(node.http().resolve("/v1/events"))
                    .header("Authorization", "Bearer " + node.token("idler"))
                    .build(),
                HttpResponse.BodyHandlers.ofInputStream());
    assertEquals(200, response.statusCode());
    try (BufferedReader lines = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
      List<String> seen = new ArrayList<>();
      String line;
      int comments = 0;
      while (comments < 2 && (line = lines.readLine()) != null) {
        seen.add(line);
        if (line.startsWith(":")) {
          comments++;
        }
        assertFalse(line.equals("data:") || line.equals("data: "), "an empty event: " + seen);
      }
      assertEquals(2, comments, "two idle intervals, two comment lines: " + seen);
      assertEquals(List.of("event: welcome"), seen.stream().filter(l -> l.startsWith("event:")).toList());
    }
  }

  @Test
  void restAnswersAreTheWebSocketsOkRepliesWithTheCodesStatus() throws Exception {
    String token = node.token("resty");
    node.rest("POST", "/v1/rooms", token, "{\"room\":\"restroom\"}", null);
    node.rest("POST", "/v1/rooms/restroom/messages", token, "{\"body\":\"a\"}", "k1");
    node.rest("POST", "/v1/rooms/restroom/messages", token, "{\"body\":\"b\"}", "k2");

    HttpResponse<String> read = node.rest("POST", "/v1/rooms/restroom/read", token, "{\"seq\":2}", null);
    assertEquals(200, read.statusCode(), read.body());
    JsonNode marked = Frames.read(read.body());
    assertEquals(2, marked.path("readSeq").asLong());
    assertEquals(1, marked.path("unread").asLong(), read.body());
    assertFalse(marked.has("type") || marked.has("id"));

    HttpResponse<String> typing = node.rest("POST", "/v1/rooms/restroom/typing", token, null, null);
    assertEquals(204, typing.statusCode());
    assertEquals("", typing.body());

    assertError(404, "doc_not_found", node.rest("GET", "/v1/docs/nosuchdoc", token, null, null));
    assertEquals(200, node.rest("POST", "/v1/docs", token, "{\"doc\":\"restdoc\",\"text\":\"abc\"}", null).statusCode());
    assertError(409, "doc_exists", node.rest("POST", "/v1/docs", token, "{\"doc\":\"restdoc\"}", null));
    assertError(400, "base_length_mismatch", node.rest("POST", "/v1/docs/restdoc/ops", token, "{\"revision\":0,\"op\":[9,\"x\"],\"clientOpId\":\"o1\"}", null));
    assertError(400, "bad_frame", node.rest("POST", "/v1/rooms/restroom/read", token, "{\"seq\":1} trailing", null));
  }

  /** Contention by optimistic versions on room settings: a stale If-Match changes nothing. */
  @Test
  void aTopicChangeNamesTheSettingsVersionItReadOverRestAndTheWebSocket() throws Exception {
    String owner = node.token("versioner");
    node.rest("POST", "/v1/rooms", owner, "{\"room\":\"versioned\"}", null);
    node.rest("POST", "/v1/rooms/versioned/messages", owner, "{\"body\":\"chat does not move the version\"}", "v1");
    long version = Frames.read(node.rest("GET", "/v1/rooms/versioned/members", owner, null, null).body()).path("settingsVersion").asLong();
    assertEquals(1, version, "the created event's seq");

    HttpResponse<String> first = putTopic(owner, "first", "\"" + version + "\"");
    assertEquals(200, first.statusCode(), first.body());
    long changed = Frames.read(first.body()).path("seq").asLong();
    assertError(412, "version_mismatch", putTopic(owner, "lost update", "\"" + version + "\""));
    assertError(400, "bad_field", putTopic(owner, "lost update", "W/\"x\""));
    try (Wire ws = Wire.connect(owner)) {
      JsonNode stale = ws.request("{\"type\":\"set_topic\",\"id\":\"t1\",\"room\":\"versioned\",\"topic\":\"lost update\",\"ifVersion\":" + version + "}");
      assertEquals("version_mismatch", stale.path("code").asText(), stale.toString());
      JsonNode fresh = ws.request("{\"type\":\"set_topic\",\"id\":\"t2\",\"room\":\"versioned\",\"topic\":\"second\",\"ifVersion\":" + changed + "}");
      assertEquals("ok", fresh.path("type").asText(), fresh.toString());
    }
    JsonNode members = Frames.read(node.rest("GET", "/v1/rooms/versioned/members", owner, null, null).body());
    assertEquals("second", members.path("topic").asText());
    assertTrue(members.path("settingsVersion").asLong() > changed, members.toString());
  }

  private static HttpResponse<String> putTopic(String token, String topic, String ifMatch) throws Exception {
    return java.net.http.HttpClient.newHttpClient().send(
        java.net.http.HttpRequest.newBuilder(node.http().resolve("/v1/rooms/versioned/topic"))
            .header("Authorization", "Bearer " + token)
            .header("Content-Type", "application/json")
            .header("If-Match", ifMatch)
            .PUT(java.net.http.HttpRequest.BodyPublishers.ofString("{\"topic\":\"" + topic + "\"}"))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void listMembersSaysWhoIsOnlineNow() throws Exception {
    String owner = node.token("host");
    node.rest("POST", "/v1/rooms", owner, "{\"room\":\"lounge\"}", null);
    node.rest("POST", "/v1/rooms/lounge/join", node.token("neveron"), null, null);
    String guest = node.token("guest");
    node.rest("POST", "/v1/rooms/lounge/join", guest, null, null);
    try (Wire online = Wire.connect(guest)) {
      online.request("{\"type\":\"resume\",\"id\":\"r\"}");
      JsonNode members = awaitMembers("lounge", owner, m -> member(m, "guest").path("online").asBoolean());
      assertTrue(member(members, "guest").path("lastSeen").isTextual());
      assertFalse(member(members, "neveron").path("online").asBoolean(true), members.toString());
      assertFalse(member(members, "neveron").has("lastSeen"), members.toString());
    }
    JsonNode after = awaitMembers("lounge", owner, m -> !member(m, "guest").path("online").asBoolean(true));
    assertTrue(member(after, "guest").path("lastSeen").isTextual());
  }

  @Test
  void aSocketClosedBeforeItSaysAnythingEndsItsSessionAtOnce() throws Exception {
    String owner = node.token("haunt-owner");
    node.rest("POST", "/v1/rooms", owner, "{\"room\":\"haunted\"}", null);
    String ghost = node.token("ghost");
    node.rest("POST", "/v1/rooms/haunted/join", ghost, null, null);
    // A socket that never sends a frame, not even a pong.
    PausableSocket silent = PausableSocket.connect(node.ws(), ghost, frame -> {});
    awaitMembers("haunted", owner, m -> member(m, "ghost").path("online").asBoolean());
    long closed = System.nanoTime();
    silent.close();
    // Well inside the heartbeat deadline (300 ms + 30 s here), which used to end such sessions.
    awaitMembers("haunted", owner, m -> !member(m, "ghost").path("online").asBoolean(true));
    long tookMs = (System.nanoTime() - closed) / 1_000_000;
    assertTrue(tookMs < 10_000, "offline after " + tookMs + " ms");
  }

  @Test
  void pagesFromOriginsTheNodeDoesNotAllowAreRefusedBeforeTheUpgrade() throws Exception {
    String token = node.token("browser");
    java.util.concurrent.ExecutionException refused =
        org.junit.jupiter.api.Assertions.assertThrows(
            java.util.concurrent.ExecutionException.class,
            () -> webSocketFrom("http://evil.example", token).get(20, TimeUnit.SECONDS));
    java.net.http.WebSocketHandshakeException handshake =
        org.junit.jupiter.api.Assertions.assertInstanceOf(java.net.http.WebSocketHandshakeException.class, refused.getCause());
    assertEquals(403, handshake.getResponse().statusCode());

    webSocketFrom("https://app.example", token).get(20, TimeUnit.SECONDS).abort();
    webSocketFrom(node.http().toString().replaceAll("/$", ""), token).get(20, TimeUnit.SECONDS).abort();

    HttpResponse<String> sse =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(node.http().resolve("/v1/events"))
                    .header("Authorization", "Bearer " + token)
                    .header("Origin", "http://evil.example")
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    assertError(403, "origin_not_allowed", sse);
  }

  @Test
  void theWebClientComesWithSecurityHeadersAndNoServerBanner() throws Exception {
    HttpResponse<String> page =
        HttpClient.newHttpClient().send(HttpRequest.newBuilder(node.http().resolve("/")).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, page.statusCode());
    String csp = page.headers().firstValue("Content-Security-Policy").orElse("");
    assertTrue(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), csp);
    assertEquals("nosniff", page.headers().firstValue("X-Content-Type-Options").orElse(""));
    assertEquals("no-referrer", page.headers().firstValue("Referrer-Policy").orElse(""));
    assertTrue(page.headers().firstValue("Server").isEmpty(), "no version banner: " + page.headers().map());
  }

  private static java.util.concurrent.CompletableFuture<java.net.http.WebSocket> webSocketFrom(String origin, String token) {
    return HttpClient.newHttpClient()
        .newWebSocketBuilder()
        .header("Origin", origin)
        .header("Authorization", "Bearer " + token)
        .buildAsync(node.ws(), new java.net.http.WebSocket.Listener() {});
  }

  @Test
  void aUsersRequestsShareOneRateAcrossTheirConnections() throws Exception {
    String token = node.token("spreader");
    List<Wire> wires = List.of(Wire.connect(token), Wire.connect(token), Wire.connect(token));
    try {
      long started = System.nanoTime();
      for (Wire wire : wires) {
        for (int i = 0; i < 40; i++) {
          wire.send("{\"type\":\"ping\",\"id\":\"p" + i + "\"}");
        }
      }
      int answered = 0;
      int limited = 0;
      for (Wire wire : wires) {
        for (int i = 0; i < 40; i++) {
          JsonNode reply = wire.await(f -> f.path("id").asText().startsWith("p"));
          if ("pong".equals(reply.path("type").asText())) {
            answered++;
          } else {
            assertEquals("rate_limited", reply.path("code").asText(), reply.toString());
            limited++;
          }
        }
      }
      double seconds = (System.nanoTime() - started) / 1e9;
      // Each connection stayed within its own burst (40); the user's (80, refilled at 40/s) did not hold 120.
      assertTrue(limited > 0, "120 requests from three connections, none refused");
      assertTrue(answered <= 80 + Math.ceil(40 * seconds) + 1, answered + " answered in " + seconds + " s");
    } finally {
      wires.forEach(Wire::close);
    }
  }

  @Test
  void oneConnectionPastTheUsersLimitIsToldSoAndClosed() throws Exception {
    String token = node.token("crowd");
    List<Wire> open = new ArrayList<>();
    try {
      for (int i = 0; i < 4; i++) {
        open.add(Wire.connect(token));
      }
      LinkedBlockingQueue<JsonNode> frames = new LinkedBlockingQueue<>();
      try (PausableSocket fifth = PausableSocket.connect(node.ws(), token, frames::add)) {
        JsonNode first = frames.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertNotNull(first);
        assertEquals("close", first.path("type").asText(), first.toString());
        assertEquals(4429, first.path("code").asInt());
        assertEquals("too_many_connections", first.path("reason").asText());
      }
      open.remove(0).close();
      // Once that session has ended, there is room again.
      long deadline = System.nanoTime() + WAIT.toNanos();
      while (true) {
        LinkedBlockingQueue<JsonNode> again = new LinkedBlockingQueue<>();
        try (PausableSocket socket = PausableSocket.connect(node.ws(), token, again::add)) {
          JsonNode first = again.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
          assertNotNull(first);
          if ("welcome".equals(first.path("type").asText())) {
            break;
          }
        }
        assertTrue(System.nanoTime() < deadline, "no room for a new connection after one closed");
        Thread.sleep(100); // polling a condition: the closed session's end
      }
    } finally {
      open.forEach(Wire::close);
    }
  }

  @Test
  void aUserCreatesAtMostTheConfiguredRoomsAMinute() throws Exception {
    try (Wire wire = Wire.connect(node.token("founder"))) {
      for (int i = 0; i < 5; i++) {
        assertEquals("ok", wire.request("{\"type\":\"create_room\",\"id\":\"c" + i + "\",\"room\":\"founded-" + i + "\"}").path("type").asText());
      }
      JsonNode sixth = wire.request("{\"type\":\"create_room\",\"id\":\"c5\",\"room\":\"founded-5\"}");
      assertEquals("rate_limited", sixth.path("code").asText(), sixth.toString());
      long retryAfter = sixth.path("retryAfter").asLong();
      assertTrue(retryAfter >= 1 && retryAfter <= 12, "five a minute: the next in at most 12 s, " + sixth);
      assertEquals("room_not_found", wire.request("{\"type\":\"join\",\"id\":\"j\",\"room\":\"founded-5\"}").path("code").asText());
    }
  }

  @Test
  void overRestTheRoomBeyondTheLimitIs429WithRetryAfter() throws Exception {
    String token = node.token("restfounder");
    for (int i = 0; i < 5; i++) {
      assertEquals(200, node.rest("POST", "/v1/rooms", token, "{\"room\":\"restfounded-" + i + "\"}", null).statusCode());
    }
    HttpResponse<String> sixth = node.rest("POST", "/v1/rooms", token, "{\"room\":\"restfounded-5\"}", null);
    assertError(429, "rate_limited", sixth);
    // Five a minute: the next one is admitted about 12 s from now, said in whole seconds.
    long retryAfter = Long.parseLong(sixth.headers().firstValue("Retry-After").orElseThrow(() -> new AssertionError("no Retry-After")));
    assertTrue(retryAfter >= 1 && retryAfter <= 12, "Retry-After " + retryAfter);
    assertEquals(retryAfter, Frames.read(sixth.body()).path("retryAfter").asLong(), sixth.body());
    assertTrue(Frames.read(sixth.body()).path("message").asText().contains("retry after " + retryAfter + " s"), sixth.body());
  }

  @Test
  void aRemovedMemberLosesTheRoomAndCannotMarkItRead() throws Exception {
    String owner = node.token("warden");
    String member = node.token("exile");
    node.rest("POST", "/v1/rooms", owner, "{\"room\":\"cell\",\"visibility\":\"private\"}", null);
    node.rest("POST", "/v1/rooms/cell/invite", owner, "{\"user\":\"exile\"}", null);
    assertEquals(200, node.rest("POST", "/v1/rooms/cell/join", member, null, null).statusCode());
    node.rest("POST", "/v1/rooms/cell/messages", owner, "{\"body\":\"hi\"}", "w1");
    assertEquals(200, node.rest("DELETE", "/v1/rooms/cell/members/exile", owner, null, null).statusCode());

    assertError(404, "room_not_found", node.rest("POST", "/v1/rooms/cell/read", member, "{\"seq\":999999999}", null));
    // The user entity learns of the removal right after the room wrote it.
    JsonNode rooms = awaitGet("/v1/rooms", member, list -> list.path("rooms").isEmpty()).path("rooms");
    assertEquals(0, rooms.size(), "the removed room is still listed: " + rooms);
  }

  @Test
  void overTheWebSocketARemovedMemberCannotMarkTheRoomReadAndNoLongerListsOrResumesIt() throws Exception {
    try (Wire owner = Wire.connect(node.token("jailer")); Wire member = Wire.connect(node.token("convict"))) {
      owner.request("{\"type\":\"create_room\",\"id\":\"c\",\"room\":\"block\",\"visibility\":\"private\"}");
      owner.request("{\"type\":\"invite\",\"id\":\"i\",\"room\":\"block\",\"user\":\"convict\"}");
      assertEquals("ok", member.request("{\"type\":\"join\",\"id\":\"j\",\"room\":\"block\"}").path("type").asText());
      long last = owner.request("{\"type\":\"send\",\"id\":\"s\",\"room\":\"block\",\"clientMsgId\":\"m\",\"body\":\"hi\"}").path("seq").asLong();

      // A member's marker stays within the timeline, whatever seq it names.
      JsonNode clamped = member.request("{\"type\":\"mark_read\",\"id\":\"r1\",\"room\":\"block\",\"seq\":999999999}");
      assertEquals(last, clamped.path("readSeq").asLong(), clamped.toString());
      assertEquals(0, clamped.path("unread").asLong(), clamped.toString());

      assertEquals("ok", owner.request("{\"type\":\"remove_member\",\"id\":\"x\",\"room\":\"block\",\"user\":\"convict\"}").path("type").asText());
      JsonNode refused = member.request("{\"type\":\"mark_read\",\"id\":\"r2\",\"room\":\"block\",\"seq\":999999999}");
      // Removed from a private room, the member is a stranger to it (docs/protocol.md, Privacy).
      assertEquals("room_not_found", refused.path("code").asText(), refused.toString());
      // At once: the room no longer counts the member, whatever the user entity knows yet.
      JsonNode rooms = member.request("{\"type\":\"list_rooms\",\"id\":\"l\"}");
      assertEquals(0, rooms.path("rooms").size(), rooms.toString());
      // Within moments: the room's outbox tells the user entity, which resume reads.
      JsonNode resumed = member.awaitReply("{\"type\":\"resume\",\"id\":\"res\"}", reply -> !reply.path("rooms").has("block"));
      assertFalse(resumed.path("rooms").has("block"), resumed.toString());
    }
  }

  /**
   * The room, not the connection, tells the user's room list of a join: a connection that is
   * gone the moment it sent its joins leaves every room that took one listed for the user.
   */
  @Test
  void joinsSentByAConnectionClosedAtOnceAreAllListedOnTheUsersNextConnection() throws Exception {
    List<String> rooms = List.of("drop-in-1", "drop-in-2", "drop-in-3", "drop-in-4");
    for (String room : rooms) {
      node.rest("POST", "/v1/rooms", node.token("host-" + room), "{\"room\":\"" + room + "\",\"visibility\":\"public\"}", null);
    }
    try (Wire hasty = Wire.connect(node.token("passer"))) {
      assertEquals("ok", hasty.request("{\"type\":\"join\",\"id\":\"first\",\"room\":\"drop-in-1\"}").path("type").asText());
      for (String room : rooms.subList(1, rooms.size())) {
        hasty.send("{\"type\":\"join\",\"id\":\"" + room + "\",\"room\":\"" + room + "\"}");
      }
    }
    try (Wire later = Wire.connect(node.token("passer"))) {
      // The rooms that took a join (the connection may have gone before some were read) and
      // the user's list must come to agree; joins still in flight may land meanwhile.
      Set<String> joined = new TreeSet<>();
      Set<String> listed = new TreeSet<>();
      long deadline = System.nanoTime() + WAIT.toNanos();
      while (System.nanoTime() < deadline) {
        joined.clear();
        for (String room : rooms) {
          JsonNode members = Frames.read(node.rest("GET", "/v1/rooms/" + room + "/members", node.token("host-" + room), null, null).body());
          members.path("members").forEach(m -> {
            if ("passer".equals(m.path("user").asText())) {
              joined.add(room);
            }
          });
        }
        listed.clear();
        later.request("{\"type\":\"list_rooms\",\"id\":\"l\"}").path("rooms").forEach(r -> listed.add(r.path("room").asText()));
        if (joined.equals(listed)) {
          break;
        }
        Thread.sleep(100); // polling a condition: the user entities learning of the joins
      }
      assertTrue(joined.contains("drop-in-1"), joined.toString());
      assertEquals(joined, listed, "rooms that took a join, and the rooms listed");
      Set<String> resumed = new TreeSet<>();
      later.request("{\"type\":\"resume\",\"id\":\"res\"}").path("rooms").fieldNames().forEachRemaining(resumed::add);
      assertTrue(resumed.containsAll(joined), "resumed " + resumed + ", joined " + joined);
    }
  }

  /**
   * A stranger asking about a private room, someone else's direct messages or a document gets
   * exactly the answers it would get if there were no such thing, over the WebSocket and REST
   * (docs/protocol.md, Privacy): nothing tells it which exist, or who writes to whom.
   */
  @Test
  void aStrangerCannotTellPrivateRoomsDirectMessagesOrDocumentsFromNone() throws Exception {
    String keeper = node.token("keeper");
    assertEquals(200, node.rest("POST", "/v1/rooms", keeper, "{\"room\":\"vault\",\"visibility\":\"private\"}", null).statusCode());
    node.rest("POST", "/v1/rooms/vault/messages", keeper, "{\"body\":\"the combination\"}", "k1");
    assertEquals(200, node.rest("POST", "/v1/dm/confidant", keeper, "{\"body\":\"between us\"}", "k2").statusCode());
    assertEquals(200, node.rest("POST", "/v1/docs", keeper, "{\"doc\":\"ledger\",\"text\":\"sums\"}", null).statusCode());
    assertEquals(200, node.rest("POST", "/v1/docs", keeper, "{\"doc\":\"plans\",\"text\":\"x\",\"room\":\"vault\"}", null).statusCode());
    String directRoom = parley.chat.Ids.directRoom("keeper", "confidant");

    Map<String, List<String>> rooms = new java.util.LinkedHashMap<>();
    for (String room : List.of("vault", "no-vault", directRoom, parley.chat.Ids.directRoom("keeper", "nobody"))) {
      rooms.put(room, roomAnswersOverTheWebSocket(room));
      rooms.put("REST " + room, roomAnswersOverRest(room));
    }
    System.out.println("ProtocolContractIT: a stranger's answers: " + rooms);
    assertEquals(rooms.get("no-vault"), rooms.get("vault"));
    assertEquals(rooms.get("REST no-vault"), rooms.get("REST vault"));
    assertEquals(rooms.get("no-vault"), rooms.get(directRoom));
    assertEquals(rooms.get("REST no-vault"), rooms.get("REST " + directRoom));
    assertEquals(rooms.get("no-vault"), rooms.get(parley.chat.Ids.directRoom("keeper", "nobody")));
    assertTrue(rooms.get("no-vault").stream().allMatch(code -> code.equals("room_not_found")), rooms.get("no-vault").toString());

    Map<String, List<String>> docs = new java.util.LinkedHashMap<>();
    for (String doc : List.of("ledger", "plans", "no-ledger")) {
      docs.put(doc, docAnswers(doc));
    }
    System.out.println("ProtocolContractIT: a stranger's answers about documents: " + docs);
    assertEquals(docs.get("no-ledger"), docs.get("ledger"));
    assertEquals(docs.get("no-ledger"), docs.get("plans"));
    try (Wire stranger = Wire.connect(node.token("eavesdropper"))) {
      List<String> created = new ArrayList<>();
      for (String room : List.of("vault", "no-vault")) {
        created.add(stranger.request(frame("doc_create", "c-" + room, "doc", "mine-" + room, "room", room)).path("code").asText());
        created.add(Frames.read(node.rest("POST", "/v1/docs", node.token("eavesdropper"), "{\"doc\":\"rest-" + room + "\",\"room\":\"" + room + "\"}", null).body()).path("code").asText());
      }
      assertEquals(List.of("room_not_found", "room_not_found", "room_not_found", "room_not_found"), created);
    }
  }

  /** The code of each answer to every request naming {@code room}, sent by a stranger over a WebSocket. */
  private static List<String> roomAnswersOverTheWebSocket(String room) throws Exception {
    try (Wire stranger = Wire.connect(node.token("snoop"))) {
      List<String> frames = List.of(
          frame("join", "1", "room", room),
          frame("leave", "2", "room", room),
          frame("invite", "3", "room", room, "user", "eve"),
          frame("remove_member", "4", "room", room, "user", "keeper"),
          frame("set_topic", "5", "room", room, "topic", "mine"),
          frame("send", "6", "room", room, "clientMsgId", "s", "body", "hello?"),
          frame("edit", "7", "room", room, "target", 2, "clientMsgId", "e", "body", "x"),
          frame("delete", "8", "room", room, "target", 2, "clientMsgId", "d"),
          frame("history", "9", "room", room),
          frame("list_members", "10", "room", room),
          frame("mark_read", "11", "room", room, "seq", 2));
      List<String> codes = new ArrayList<>();
      for (String f : frames) {
        JsonNode reply = stranger.request(f);
        codes.add("error".equals(reply.path("type").asText()) ? reply.path("code").asText() : reply.path("type").asText());
      }
      return codes;
    }
  }

  /** The status and code of each REST call naming {@code room}, made by a stranger. */
  private static List<String> roomAnswersOverRest(String room) {
    String token = node.token("peeper");
    String at = "/v1/rooms/" + room;
    List<HttpResponse<String>> answers = List.of(
        node.rest("POST", at + "/join", token, null, null),
        node.rest("POST", at + "/leave", token, null, null),
        node.rest("POST", at + "/invite", token, "{\"user\":\"eve\"}", null),
        node.rest("DELETE", at + "/members/keeper", token, null, null),
        node.rest("PUT", at + "/topic", token, "{\"topic\":\"mine\"}", null),
        node.rest("POST", at + "/messages", token, "{\"body\":\"hello?\"}", "s-" + room),
        node.rest("PATCH", at + "/messages/2", token, "{\"body\":\"x\"}", "e-" + room),
        node.rest("DELETE", at + "/messages/2", token, null, "d-" + room),
        node.rest("GET", at + "/messages", token, null, null),
        node.rest("GET", at + "/members", token, null, null),
        node.rest("POST", at + "/read", token, "{\"seq\":2}", null),
        node.rest("POST", at + "/typing", token, null, null));
    return answers.stream()
        .map(r -> r.statusCode() + " " + (r.body().isEmpty() ? "" : Frames.read(r.body()).path("code").asText()))
        .toList();
  }

  /** The code of each answer to every request naming {@code doc}, by a stranger over a WebSocket and REST. */
  private static List<String> docAnswers(String doc) throws Exception {
    List<String> codes = new ArrayList<>();
    try (Wire stranger = Wire.connect(node.token("spy"))) {
      for (String f : List.of(
          frame("doc_open", "1", "doc", doc),
          frame("doc_submit", "2", "doc", doc, "clientOpId", "o", "revision", 0, "op", List.of("x")),
          frame("doc_ops", "3", "doc", doc, "revision", 0),
          frame("doc_add_editor", "4", "doc", doc, "user", "spy"))) {
        codes.add(stranger.request(f).path("code").asText());
      }
    }
    String token = node.token("spy");
    for (HttpResponse<String> r : List.of(
        node.rest("GET", "/v1/docs/" + doc, token, null, null),
        node.rest("POST", "/v1/docs/" + doc + "/ops", token, "{\"clientOpId\":\"o\",\"revision\":0,\"op\":[\"x\"]}", null))) {
      codes.add(r.statusCode() + " " + Frames.read(r.body()).path("code").asText());
    }
    return codes;
  }

  /** A request frame: its type, id, then field names and values in turn. */
  private static String frame(String type, String id, Object... fields) {
    Map<String, Object> frame = new java.util.LinkedHashMap<>();
    frame.put("type", type);
    frame.put("id", id);
    for (int i = 0; i < fields.length; i += 2) {
      frame.put((String) fields[i], fields[i + 1]);
    }
    try {
      return parley.protocol.Codec.JSON.writeValueAsString(frame);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  void aRequestWithoutIdIsAnsweredWithoutOne() throws Exception {
    try (Wire wire = Wire.connect(node.token("anonymous"))) {
      wire.send("{\"type\":\"list_rooms\"}");
      JsonNode reply = wire.await(f -> "ok".equals(f.path("type").asText()));
      assertFalse(reply.has("id"), reply.toString());
      assertTrue(reply.path("rooms").isArray());
    }
  }

  @Test
  void strictJsonTrailingTextAndDuplicateKeysAreBadFrames() throws Exception {
    try (Wire wire = Wire.connect(node.token("strict"))) {
      assertEquals("bad_frame", wire.request("{\"type\":\"ping\",\"id\":\"1\"} {}").path("code").asText());
      assertEquals("bad_frame", wire.request("{\"type\":\"ping\",\"id\":\"2\",\"id\":\"3\"}").path("code").asText());
      assertEquals("pong", wire.request("{\"type\":\"ping\",\"id\":\"4\"}").path("type").asText());
    }
  }

  @Test
  void aLoneSurrogateIsRefusedAtTheEdgeAndTheRoomGoesOn() throws Exception {
    String attacker = node.token("mallory");
    String member = node.token("member");
    node.rest("POST", "/v1/rooms", member, "{\"room\":\"target\"}", null);
    node.rest("POST", "/v1/rooms/target/join", attacker, null, null);
    try (Wire mallory = Wire.connect(attacker); Wire victim = Wire.connect(member)) {
      victim.request("{\"type\":\"resume\",\"id\":\"r\"}");
      String lone = "\\ud800";
      assertEquals("bad_text", mallory.request("{\"type\":\"send\",\"id\":\"1\",\"room\":\"target\",\"clientMsgId\":\"p\",\"body\":\"" + lone + "\"}").path("code").asText());
      assertEquals("bad_text", mallory.request("{\"type\":\"send\",\"id\":\"2\",\"room\":\"target\",\"clientMsgId\":\"q\",\"body\":\"ok " + "\\udc00" + " x\"}").path("code").asText());
      assertEquals("bad_text", mallory.request("{\"type\":\"send_dm\",\"id\":\"3\",\"to\":\"member\",\"clientMsgId\":\"r\",\"body\":\"" + lone + "\"}").path("code").asText());
      assertEquals("bad_text", mallory.request("{\"type\":\"create_room\",\"id\":\"4\",\"room\":\"t2\",\"topic\":\"" + lone + "\"}").path("code").asText());
      assertError(400, "bad_text", node.rest("POST", "/v1/rooms/target/messages", attacker, "{\"body\":\"" + lone + "\"}", "rest-lone"));
      // A surrogate pair is text like any other.
      assertEquals("ok", mallory.request("{\"type\":\"send\",\"id\":\"5\",\"room\":\"target\",\"clientMsgId\":\"s\",\"body\":\"\\ud83d\\ude00\"}").path("type").asText());
      JsonNode sent = victim.request("{\"type\":\"send\",\"id\":\"6\",\"room\":\"target\",\"clientMsgId\":\"v\",\"body\":\"still here\"}");
      assertEquals("ok", sent.path("type").asText(), sent.toString());
      assertEquals("\ud83d\ude00", victim.awaitEvent("target", sent.path("seq").asLong() - 1).path("body").asText());
      assertEquals("still here", victim.awaitEvent("target", sent.path("seq").asLong()).path("body").asText());
    }
  }

  /**
   * docs/protocol.md: at most one typing notice per user and room in each window, whatever the
   * connection or transport. 30 REST calls at once and then a typing frame on the user's
   * WebSocket reach another member as one notice. (The node here allows one a minute.)
   */
  @Test
  void typingIsOneNoticePerUserAndRoomWhetherSentOverRestOrTheWebSocket() throws Exception {
    String watcherToken = node.token("onlooker");
    String typistToken = node.token("typist");
    String markerToken = node.token("latecomer");
    node.rest("POST", "/v1/rooms", watcherToken, "{\"room\":\"keyboard\"}", null);
    assertEquals(200, node.rest("POST", "/v1/rooms/keyboard/join", typistToken, null, null).statusCode());
    assertEquals(200, node.rest("POST", "/v1/rooms/keyboard/join", markerToken, null, null).statusCode());
    try (Wire watcher = Wire.connect(watcherToken); Wire typist = Wire.connect(typistToken)) {
      watcher.request("{\"type\":\"resume\",\"id\":\"r\"}");
      awaitLive(watcher, "keyboard", markerToken, "latecomer");

      // Threads of their own: the common pool has one thread on two cores.
      ExecutorService callers = Executors.newFixedThreadPool(30);
      try {
        List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
          calls.add(CompletableFuture.supplyAsync(() -> node.rest("POST", "/v1/rooms/keyboard/typing", typistToken, null, null), callers));
        }
        for (CompletableFuture<HttpResponse<String>> call : calls) {
          HttpResponse<String> typed = call.get(WAIT.toSeconds(), TimeUnit.SECONDS);
          assertEquals(204, typed.statusCode(), typed.body());
        }
      } finally {
        callers.shutdown();
      }
      typist.send("{\"type\":\"typing\",\"room\":\"keyboard\"}");
      // Frames are handled in order: the pong says the typing frame has been handled.
      assertEquals("pong", typist.request("{\"type\":\"ping\",\"id\":\"p\"}").path("type").asText());

      // Another member's notice, sent after all of them, comes through the room after them.
      assertEquals(204, node.rest("POST", "/v1/rooms/keyboard/typing", markerToken, null, null).statusCode());
      watcher.await(f -> isTyping(f, "keyboard", "latecomer"));
      List<JsonNode> notices = watcher.received().stream().filter(f -> isTyping(f, "keyboard", "typist")).toList();
      assertEquals(1, notices.size(), "typing notices of the typist: " + notices);
    }
  }

  private static boolean isTyping(JsonNode frame, String room, String user) {
    return "typing".equals(frame.path("type").asText())
        && room.equals(frame.path("room").asText())
        && user.equals(frame.path("user").asText());
  }

  /**
   * Until {@code watcher} gets the room's pushes live (its node's hub subscribes to the room
   * after the resume is answered): {@code member} marks the room read until its {@code read}
   * push arrives. Unlike typing, marking read is not throttled, so it can be repeated.
   */
  private static void awaitLive(Wire watcher, String room, String memberToken, String member) throws Exception {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (System.nanoTime() < deadline) {
      HttpResponse<String> read = node.rest("POST", "/v1/rooms/" + room + "/read", memberToken, "{\"seq\":1}", null);
      assertEquals(200, read.statusCode(), read.body());
      if (watcher.awaitWithin(Duration.ofMillis(500), f -> "read".equals(f.path("type").asText())
          && room.equals(f.path("room").asText()) && member.equals(f.path("user").asText())) != null) {
        return;
      }
    }
    throw new AssertionError(room + "'s pushes never reached the connection");
  }

  /** docs/protocol.md: `history`'s `limit` is 1–200; a number is checked as it is, before it is narrowed. */
  @Test
  void restHistoryRefusesNumbersOutOfRangeInsteadOfNarrowingThem() throws Exception {
    String token = node.token("chronicler");
    node.rest("POST", "/v1/rooms", token, "{\"room\":\"annals\"}", null);
    // 4294967346 is 50 once cast to an int; 9223372036854775808 is one past the largest long.
    for (String query : List.of("limit=4294967346", "limit=-1", "limit=0", "limit=201", "before=9223372036854775808", "before=-1")) {
      HttpResponse<String> answer = node.rest("GET", "/v1/rooms/annals/messages?" + query, token, null, null);
      assertEquals(400, answer.statusCode(), query + ": " + answer.body());
      assertEquals("bad_field", Frames.read(answer.body()).path("code").asText(), query + ": " + answer.body());
    }
    HttpResponse<String> page = node.rest("GET", "/v1/rooms/annals/messages?limit=200&before=9223372036854775807", token, null, null);
    assertEquals(200, page.statusCode(), page.body());
    assertEquals(1, Frames.read(page.body()).path("events").size(), page.body());
  }

  /**
   * docs/protocol.md, Direct messages: nobody owns a direct message room, so neither party can
   * shut the other out, bring in a third or give it a topic, over the WebSocket or REST.
   */
  @Test
  void neitherPartyOfADirectMessageRoomCanRemoveInviteOrSetATopicAndBothKeepIt() throws Exception {
    String firstToken = node.token("pen-pal");
    String secondToken = node.token("penfriend");
    assertEquals(200, node.rest("POST", "/v1/dm/penfriend", firstToken, "{\"body\":\"dear friend\"}", "letter-1").statusCode());
    String dm = parley.chat.Ids.directRoom("pen-pal", "penfriend");
    Map<String, String> parties = Map.of("pen-pal", firstToken, "penfriend", secondToken);

    List<String> answers = new ArrayList<>();
    for (Map.Entry<String, String> party : parties.entrySet()) {
      String other = party.getKey().equals("pen-pal") ? "penfriend" : "pen-pal";
      try (Wire wire = Wire.connect(party.getValue())) {
        answers.add(wire.request(frame("remove_member", "1", "room", dm, "user", other)).path("code").asText());
        answers.add(wire.request(frame("invite", "2", "room", dm, "user", "intruder")).path("code").asText());
        answers.add(wire.request(frame("set_topic", "3", "room", dm, "topic", "ours")).path("code").asText());
      }
      String at = "/v1/rooms/" + dm;
      for (HttpResponse<String> r : List.of(
          node.rest("DELETE", at + "/members/" + other, party.getValue(), null, null),
          node.rest("POST", at + "/invite", party.getValue(), "{\"user\":\"intruder\"}", null),
          node.rest("PUT", at + "/topic", party.getValue(), "{\"topic\":\"ours\"}", null))) {
        answers.add(r.statusCode() + " " + Frames.read(r.body()).path("code").asText());
      }
    }
    List<String> refused = List.of("forbidden", "forbidden", "forbidden", "403 forbidden", "403 forbidden", "403 forbidden");
    assertEquals(List.of(refused, refused), List.of(answers.subList(0, 6), answers.subList(6, 12)));

    for (String token : parties.values()) {
      JsonNode members = Frames.read(node.rest("GET", "/v1/rooms/" + dm + "/members", token, null, null).body());
      Set<String> names = new TreeSet<>();
      members.path("members").forEach(m -> names.add(m.path("user").asText()));
      assertEquals(Set.of("pen-pal", "penfriend"), names, members.toString());
      assertFalse(members.has("topic"), members.toString());
      JsonNode rooms = Frames.read(node.rest("GET", "/v1/rooms", token, null, null).body()).path("rooms");
      assertTrue(rooms.findValuesAsText("room").contains(dm), rooms.toString());
      JsonNode history = Frames.read(node.rest("GET", "/v1/rooms/" + dm + "/messages", token, null, null).body());
      assertTrue(history.path("events").findValuesAsText("body").contains("dear friend"), history.toString());
    }
  }

  /** A member's REST mark_read past the end is kept at the room's last seq, and so is the read push. */
  @Test
  void aRestMarkReadPastTheEndIsClampedAndOtherMembersArePushedTheClampedSeq() throws Exception {
    String ownerToken = node.token("librarian");
    String readerToken = node.token("bookworm");
    node.rest("POST", "/v1/rooms", ownerToken, "{\"room\":\"stacks\"}", null);
    assertEquals(200, node.rest("POST", "/v1/rooms/stacks/join", readerToken, null, null).statusCode());
    try (Wire owner = Wire.connect(ownerToken)) {
      owner.request("{\"type\":\"resume\",\"id\":\"r\"}");
      awaitLive(owner, "stacks", readerToken, "bookworm");
      long last = owner.request("{\"type\":\"send\",\"id\":\"s\",\"room\":\"stacks\",\"clientMsgId\":\"m\",\"body\":\"new arrivals\"}").path("seq").asLong();

      HttpResponse<String> read = node.rest("POST", "/v1/rooms/stacks/read", readerToken, "{\"seq\":999999999}", null);
      assertEquals(200, read.statusCode(), read.body());
      assertEquals(last, Frames.read(read.body()).path("readSeq").asLong(), read.body());
      assertEquals(0, Frames.read(read.body()).path("unread").asLong(), read.body());

      // Past the warm-up's read pushes, which say 1.
      JsonNode pushed = owner.await(f -> "read".equals(f.path("type").asText()) && "bookworm".equals(f.path("user").asText())
          && f.path("seq").asLong() != 1);
      assertEquals(last, pushed.path("seq").asLong(), pushed.toString());
    }
  }

  /**
   * A raw socket whose upgrade is followed by a text frame that is not UTF-8, or by nothing
   * before it closes: either way the session ends at once (its user is offline well within the
   * heartbeat deadline, 300 ms + 30 s here) and nothing is logged at ERROR.
   */
  @Test
  void anUpgradeFollowedByInvalidUtf8OrBySilenceEndsItsSessionAtOnceAndQuietly() throws Exception {
    String owner = node.token("porter");
    node.rest("POST", "/v1/rooms", owner, "{\"room\":\"gatehouse\"}", null);
    String garbler = node.token("garbler");
    String mute = node.token("mute");
    node.rest("POST", "/v1/rooms/gatehouse/join", garbler, null, null);
    node.rest("POST", "/v1/rooms/gatehouse/join", mute, null, null);
    try (CapturedLog log = CapturedLog.attach()) {
      try (RawWebSocket socket = RawWebSocket.upgrade(node.ws(), garbler)) {
        awaitMembers("gatehouse", owner, m -> member(m, "garbler").path("online").asBoolean());
        long sent = System.nanoTime();
        // A lead byte with no continuation, and a byte that is never UTF-8.
        socket.sendText(new byte[] {'{', '"', (byte) 0xC3, '"', (byte) 0xFF, '}'});
        // The socket stays open on this side: the frame alone must end the session.
        awaitMembers("gatehouse", owner, m -> !member(m, "garbler").path("online").asBoolean(true));
        long tookMs = (System.nanoTime() - sent) / 1_000_000;
        assertTrue(tookMs < 10_000, "offline after " + tookMs + " ms");
      }

      long closed;
      try (RawWebSocket silent = RawWebSocket.upgrade(node.ws(), mute)) {
        awaitMembers("gatehouse", owner, m -> member(m, "mute").path("online").asBoolean());
        closed = System.nanoTime();
      }
      awaitMembers("gatehouse", owner, m -> !member(m, "mute").path("online").asBoolean(true));
      long tookMs = (System.nanoTime() - closed) / 1_000_000;
      assertTrue(tookMs < 10_000, "offline after " + tookMs + " ms");

      assertEquals(List.of(), log.errorsUpTo(node.system, WAIT));
    }
  }

  // ---------------------------------------------------------------------------------------

  private static JsonNode awaitMembers(String room, String token, Predicate<JsonNode> until) throws Exception {
    return awaitGet("/v1/rooms/" + room + "/members", token, until);
  }

  /** GETs {@code path} until its answer satisfies {@code until}; fails after {@link #WAIT}. */
  private static JsonNode awaitGet(String path, String token, Predicate<JsonNode> until) throws Exception {
    long deadline = System.nanoTime() + WAIT.toNanos();
    JsonNode answer;
    do {
      HttpResponse<String> response = node.rest("GET", path, token, null, null);
      assertEquals(200, response.statusCode(), response.body());
      answer = Frames.read(response.body());
      if (until.test(answer)) {
        return answer;
      }
      Thread.sleep(100); // polling a condition, within the user's REST rate
    } while (System.nanoTime() < deadline);
    throw new AssertionError(path + " never answered as expected: " + answer);
  }

  private static JsonNode member(JsonNode members, String user) {
    for (JsonNode m : members.path("members")) {
      if (user.equals(m.path("user").asText())) {
        return m;
      }
    }
    throw new AssertionError(user + " is not listed: " + members);
  }

  private static void assertError(int status, String code, HttpResponse<String> response) {
    assertEquals(status, response.statusCode(), response.body());
    assertEquals(code, Frames.read(response.body()).path("code").asText(), response.body());
  }

  /** A raw WebSocket client: frames as they come, requests matched to replies by id. */
  private static final class Wire implements AutoCloseable {
    private final LinkedBlockingQueue<JsonNode> frames = new LinkedBlockingQueue<>();
    private final List<JsonNode> seen = new ArrayList<>();
    private PausableSocket socket;

    static Wire connect(String token) throws Exception {
      Wire wire = new Wire();
      wire.socket = PausableSocket.connect(node.ws(), token, frame -> {
        if (!"ping".equals(frame.path("type").asText())) {
          wire.frames.add(frame);
        } else {
          wire.socket.send("{\"type\":\"pong\"}");
        }
      });
      assertEquals("welcome", wire.await(f -> true).path("type").asText());
      return wire;
    }

    void send(String frame) {
      socket.send(frame);
    }

    /** Sends a request with an id and waits for the reply with that id. */
    JsonNode request(String frame) throws Exception {
      String id = parley.protocol.Codec.idIn(frame);
      send(frame);
      return await(f -> id.equals(f.path("id").asText()) && !"event".equals(f.path("type").asText()));
    }

    JsonNode awaitReply(String frame, Predicate<JsonNode> until) throws Exception {
      long deadline = System.nanoTime() + WAIT.toNanos();
      while (System.nanoTime() < deadline) {
        JsonNode reply = request(frame);
        if (until.test(reply)) {
          return reply;
        }
        Thread.sleep(50); // polling a condition, within the connection's request rate
      }
      throw new AssertionError("no reply as expected to " + frame);
    }

    JsonNode awaitEvent(String room, long seq) throws Exception {
      for (JsonNode e : seen) {
        if (isEvent(e, room, seq)) {
          return e;
        }
      }
      return await(f -> isEvent(f, room, seq));
    }

    private static boolean isEvent(JsonNode f, String room, long seq) {
      return "event".equals(f.path("type").asText()) && room.equals(f.path("room").asText()) && f.path("seq").asLong() == seq;
    }

    /** The seqs of every event of {@code room} received so far, in arrival order. */
    List<Long> events(String room) {
      JsonNode f;
      while ((f = frames.poll()) != null) {
        seen.add(f);
      }
      return seen.stream()
          .filter(e -> "event".equals(e.path("type").asText()) && room.equals(e.path("room").asText()))
          .map(e -> e.path("seq").asLong())
          .toList();
    }

    JsonNode await(Predicate<JsonNode> wanted) throws Exception {
      JsonNode f = awaitWithin(WAIT, wanted);
      assertNotNull(f, "no such frame in time; seen " + seen);
      return f;
    }

    /** The first frame from now on that is {@code wanted}, or null if none came within {@code timeout}. */
    JsonNode awaitWithin(Duration timeout, Predicate<JsonNode> wanted) throws Exception {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (true) {
        JsonNode f = frames.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        if (f == null) {
          return null;
        }
        seen.add(f);
        if (wanted.test(f)) {
          return f;
        }
      }
    }

    /** Every frame but pings received so far, in arrival order. */
    List<JsonNode> received() {
      JsonNode f;
      while ((f = frames.poll()) != null) {
        seen.add(f);
      }
      return List.copyOf(seen);
    }

    @Override
    public void close() {
      socket.close();
    }
  }
}
