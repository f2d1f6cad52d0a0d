package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.client.ParleyClient;
import parley.client.ParleyException;
import parley.client.Sent;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/** Chat over a real WebSocket against one node and the real Cassandra. */
class ChatIT {

  private static final Duration WAIT = Duration.ofSeconds(15);
  private static Config keyspaces;
  private static InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    keyspaces = TestCassandra.keyspacesFor("ChatIT");
    node = InJvmNode.start(keyspaces);
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  private static ParleyClient connect(InJvmNode on, String user) throws Exception {
    String token = ParleyClient.devToken(on.http(), user);
    return ParleyClient.connect(on.ws(), token).get(20, TimeUnit.SECONDS);
  }

  private static <T> T await(CompletableFuture<T> future) throws Exception {
    return future.get(20, TimeUnit.SECONDS);
  }

  private static JsonNode awaitEvent(ParleyClient client, String room, long seq) throws Exception {
    return client.awaitPush(
        p -> "event".equals(p.path("type").asText())
            && room.equals(p.path("room").asText())
            && p.path("seq").asLong() == seq,
        WAIT);
  }

  @Test
  void twoUsersChatAndSeeEachOthersMessagesInOrder() throws Exception {
    try (ParleyClient alice = connect(node, "alice"); ParleyClient bob = connect(node, "bob")) {
      assertEquals(1, await(alice.createRoom("lobby", "public", "Say hi")));
      await(alice.resume(null));
      await(bob.resume(null));
      long joined = await(bob.join("lobby"));
      assertEquals(2, joined);

      Sent first = await(alice.send("lobby", "a-1", "hello bob"));
      Sent second = await(bob.send("lobby", "b-1", "hi alice"));
      assertEquals(3, first.seq());
      assertEquals(4, second.seq());
      assertFalse(first.duplicate());

      JsonNode atBob = awaitEvent(bob, "lobby", 3);
      assertEquals("hello bob", atBob.path("body").asText());
      assertEquals("alice", atBob.path("user").asText());
      JsonNode atAlice = awaitEvent(alice, "lobby", 4);
      assertEquals("hi alice", atAlice.path("body").asText());

      await(bob.markRead("lobby", 3));
      JsonNode receipt = alice.awaitPush(p -> "read".equals(p.path("type").asText()), WAIT);
      assertEquals("bob", receipt.path("user").asText());
      assertEquals(3, receipt.path("seq").asLong());

      JsonNode members = await(alice.listMembers("lobby"));
      assertEquals(2, members.path("members").size());
      assertEquals("Say hi", members.path("topic").asText());
    }
  }

  @Test
  void aReconnectingClientCatchesUpExactlyOnceInOrder() throws Exception {
    try (ParleyClient alice = connect(node, "carol")) {
      await(alice.createRoom("catchup", "public", null));
      await(alice.resume(null));
      ParleyClient dave = connect(node, "dave");
      await(dave.join("catchup"));
      await(dave.resume(null));
      await(alice.send("catchup", "c-0", "before"));
      awaitEvent(dave, "catchup", 3);
      Map<String, Long> positions = dave.positions();
      dave.close();

      for (int i = 1; i <= 5; i++) {
        await(alice.send("catchup", "c-" + i, "missed " + i));
      }
      try (ParleyClient back = connect(node, "dave")) {
        await(back.resume(positions));
        for (long seq = 4; seq <= 8; seq++) {
          assertEquals("missed " + (seq - 3), awaitEvent(back, "catchup", seq).path("body").asText());
        }
        await(alice.send("catchup", "c-live", "live"));
        assertEquals("live", awaitEvent(back, "catchup", 9).path("body").asText());
        List<Long> seqs = new ArrayList<>();
        back.pushes().stream()
            .filter(p -> "event".equals(p.path("type").asText()) && "catchup".equals(p.path("room").asText()))
            .forEach(p -> seqs.add(p.path("seq").asLong()));
        assertEquals(List.of(4L, 5L, 6L, 7L, 8L, 9L), seqs, "no duplicate, no gap at the seam");
      }
    }
  }

  @Test
  void historyPagesBackwardsAndShowsEditsAndDeletions() throws Exception {
    try (ParleyClient erin = connect(node, "erin")) {
      await(erin.createRoom("history", "private", null));
      for (int i = 1; i <= 10; i++) {
        await(erin.send("history", "h-" + i, "message " + i));
      }
      await(erin.edit("history", 2, "h-edit", "message 1, edited"));
      await(erin.delete("history", 3, "h-delete"));
      JsonNode newest = await(erin.history("history", null, 5));
      assertEquals(5, newest.path("events").size());
      assertEquals(13, newest.path("events").get(4).path("seq").asLong());
      assertTrue(newest.path("hasMore").asBoolean());
      JsonNode older = await(erin.history("history", 9L, 8));
      assertEquals(1, older.path("events").get(0).path("seq").asLong());
      JsonNode edited = older.path("events").get(1);
      assertEquals("message 1, edited", edited.path("body").asText());
      assertTrue(edited.path("edited").asBoolean());
      JsonNode deleted = older.path("events").get(2);
      assertTrue(deleted.path("deleted").asBoolean());
      assertFalse(deleted.has("body"), "deleted content is gone from history");
    }
  }

  @Test
  void directMessagesReportDeliveryAndReadReceipts() throws Exception {
    try (ParleyClient frank = connect(node, "frank"); ParleyClient grace = connect(node, "grace")) {
      await(frank.resume(null));
      await(grace.resume(null));
      Sent sent = await(frank.sendDm("grace", "dm-1", "psst"));
      assertEquals("dm:frank:grace", sent.room());
      assertTrue(sent.delivered(), "grace had a live session");
      JsonNode atGrace = awaitEvent(grace, "dm:frank:grace", sent.seq());
      assertEquals("psst", atGrace.path("body").asText());
      frank.awaitPush(p -> "receipt".equals(p.path("type").asText()) && "delivered".equals(p.path("status").asText()), WAIT);
      await(grace.markRead("dm:frank:grace", sent.seq()));
      frank.awaitPush(p -> "receipt".equals(p.path("type").asText()) && "read".equals(p.path("status").asText()), WAIT);

      JsonNode rooms = await(grace.listRooms());
      assertEquals("dm:frank:grace", rooms.get(0).path("room").asText());
      assertEquals(0, rooms.get(0).path("unread").asLong());
    }
  }

  @Test
  void badInputGetsClearErrorsAndTheConnectionSurvives() throws Exception {
    try (ParleyClient henry = connect(node, "henry"); ParleyClient ivy = connect(node, "ivy")) {
      assertCode("unknown_type", henry.request("dance", Map.of()));
      assertCode("missing_field", henry.request("send", Map.of("room", "x")));
      assertCode("bad_room_id", henry.request("join", Map.of("room", "no spaces")));
      assertCode("room_not_found", henry.send("nowhere", "n-1", "anyone?"));
      await(ivy.createRoom("ivys", "private", null));
      assertCode("room_not_found", henry.send("ivys", "n-2", "let me in"));
      assertCode("room_not_found", henry.join("ivys"));
      Sent ivys = await(ivy.send("ivys", "i-1", "mine"));
      await(ivy.invite("ivys", "henry"));
      await(henry.join("ivys"));
      assertCode("forbidden", henry.edit("ivys", ivys.seq(), "n-3", "not mine"));
      assertCode("forbidden", henry.setTopic("ivys", "taken over"));
      assertCode("body_too_large", henry.send("ivys", "n-4", "x".repeat(17_000)));
      assertCode("frame_too_large", henry.request("send", Map.of("room", "ivys", "clientMsgId", "n-5", "body", "y".repeat(70_000))));
      assertTrue(await(henry.ping()).toMillis() >= 0, "still usable after every error");
    }
  }

  @Test
  void framesThatAreNotJsonObjectsAreRefusedAndTheSocketStaysOpen() throws Exception {
    java.util.concurrent.LinkedBlockingQueue<String> frames = new java.util.concurrent.LinkedBlockingQueue<>();
    java.net.http.WebSocket socket = rawSocket("olga", frames, new CompletableFuture<>());
    assertTrue(frames.poll(20, TimeUnit.SECONDS).contains("\"welcome\""));
    for (String bad : List.of("{not json", "[1,2,3]", "42", "{\"id\":\"x\"}")) {
      socket.sendText(bad, true).get(20, TimeUnit.SECONDS);
      JsonNode error = parley.transport.Frames.read(frames.poll(20, TimeUnit.SECONDS));
      assertEquals("error", error.path("type").asText(), bad);
      assertEquals(bad.startsWith("{\"id") ? "missing_field" : "bad_frame", error.path("code").asText(), bad);
    }
    socket.sendText("{\"type\":\"ping\",\"id\":\"still-here\"}", true).get(20, TimeUnit.SECONDS);
    assertTrue(frames.poll(20, TimeUnit.SECONDS).contains("pong"));
    socket.abort();
  }

  @Test
  void floodingIsRateLimitedThenDisconnected() throws Exception {
    try (ParleyClient jack = connect(node, "jack")) {
      List<CompletableFuture<Duration>> pings = new ArrayList<>();
      for (int i = 0; i < 150; i++) {
        pings.add(jack.ping());
      }
      long limited = pings.stream().filter(ChatIT::failedWithRateLimit).count();
      assertTrue(limited > 0, "some pings were rate limited");
      JsonNode close = jack.awaitPush(p -> "close".equals(p.path("type").asText()), WAIT);
      assertEquals(1008, close.path("code").asInt(), "the flooding connection is closed for policy");
      jack.closed().get(20, TimeUnit.SECONDS);
    }
  }

  @Test
  void oversizedFramesCountTowardTheRateLikeAnyOtherAndAFloodOfThemIsDisconnected() throws Exception {
    java.util.concurrent.LinkedBlockingQueue<String> frames = new java.util.concurrent.LinkedBlockingQueue<>();
    CompletableFuture<Integer> closedWith = new CompletableFuture<>();
    java.net.http.WebSocket socket = rawSocket("bulk-flooder", frames, closedWith);
    assertTrue(frames.poll(20, TimeUnit.SECONDS).contains("\"welcome\""));
    String oversized = "{\"type\":\"ping\",\"id\":\"big\",\"pad\":\"" + "x".repeat(70_000) + "\"}";
    int sent = 0;
    try {
      while (sent < 500 && !closedWith.isDone()) {
        socket.sendText(oversized, true).get(20, TimeUnit.SECONDS);
        sent++;
      }
    } catch (java.util.concurrent.ExecutionException closedMeanwhile) {
      // the server closed the socket while a frame was on its way
    }
    closedWith.get(30, TimeUnit.SECONDS);
    List<JsonNode> answers = new ArrayList<>();
    for (String frame; (frame = frames.poll()) != null; ) {
      answers.add(parley.transport.Frames.read(frame));
    }
    List<String> codes = answers.stream().map(a -> a.path("code").asText()).toList();
    assertTrue(codes.contains("frame_too_large"), "the first ones are answered frame_too_large: " + codes);
    assertTrue(codes.contains("rate_limited"), "then rate_limited: " + codes);
    // The close's code travels in the last frame (docs/protocol.md, Connection notices).
    JsonNode last = answers.get(answers.size() - 1);
    assertEquals("close", last.path("type").asText(), "closed after " + sent + " frames: " + last);
    assertEquals(1008, last.path("code").asInt(), "closed for policy: " + last);
  }

  /** A WebSocket of the JDK's own client, no Parley client in between: its frames, whole, and its close status. */
  private static java.net.http.WebSocket rawSocket(
      String user, java.util.Queue<String> frames, CompletableFuture<Integer> closedWith) throws Exception {
    return java.net.http.HttpClient.newHttpClient()
        .newWebSocketBuilder()
        .header("Authorization", "Bearer " + ParleyClient.devToken(node.http(), user))
        .buildAsync(node.ws(), new java.net.http.WebSocket.Listener() {
          private final StringBuilder partial = new StringBuilder();

          @Override
          public java.util.concurrent.CompletionStage<?> onText(java.net.http.WebSocket ws, CharSequence data, boolean last) {
            partial.append(data);
            if (last) {
              frames.add(partial.toString());
              partial.setLength(0);
            }
            ws.request(1);
            return null;
          }

          @Override
          public java.util.concurrent.CompletionStage<?> onClose(java.net.http.WebSocket ws, int status, String reason) {
            closedWith.complete(status);
            return null;
          }
        })
        .get(20, TimeUnit.SECONDS);
  }

  @Test
  void aResendAfterTheRoomsNodeRestartedReturnsTheOriginalSeq() throws Exception {
    Config ks = TestCassandra.keyspacesFor("ChatITRestart");
    Sent original;
    try (InJvmNode first = InJvmNode.start(ks); ParleyClient kim = connect(first, "kim")) {
      await(kim.createRoom("retry", "public", null));
      original = await(kim.send("retry", "r-1", "exactly once"));
    }
    try (InJvmNode second = InJvmNode.start(ks); ParleyClient kim = connect(second, "kim")) {
      Sent again = await(kim.send("retry", "r-1", "exactly once"));
      assertEquals(original.seq(), again.seq());
      assertTrue(again.duplicate());
      JsonNode history = await(kim.history("retry", null, 50));
      assertEquals(2, history.path("events").size(), "created + one message, no second copy");
    }
  }

  @Test
  void typingAndPresenceReachRoomMatesButAreNeverJournaled() throws Exception {
    try (ParleyClient lena = connect(node, "lena")) {
      await(lena.createRoom("presence", "public", null));
      await(lena.resume(null));
      try (ParleyClient mo = connect(node, "mo")) {
        await(mo.join("presence"));
        await(mo.resume(null));
        mo.typing("presence");
        JsonNode typing = lena.awaitPush(p -> "typing".equals(p.path("type").asText()), WAIT);
        assertEquals("mo", typing.path("user").asText());
      }
      JsonNode offline = lena.awaitPush(
          p -> "presence".equals(p.path("type").asText()) && "mo".equals(p.path("user").asText())
              && "offline".equals(p.path("status").asText()), WAIT);
      assertTrue(offline.hasNonNull("lastSeen"));
      // The push and the member list name the same moment, written the same way.
      JsonNode members = await(lena.request("list_members", Map.of("room", "presence")));
      JsonNode moListed = null;
      for (JsonNode member : members.path("members")) {
        if ("mo".equals(member.path("user").asText())) {
          moListed = member;
        }
      }
      assertNotNull(moListed, members.toString());
      assertEquals(offline.path("lastSeen").asText(), moListed.path("lastSeen").asText(), members.toString());
      try (ParleyClient moAgain = connect(node, "mo")) {
        lena.awaitPush(
            p -> "presence".equals(p.path("type").asText()) && "online".equals(p.path("status").asText()), WAIT);
      }
      JsonNode history = await(lena.history("presence", null, 50));
      assertEquals(2, history.path("events").size(), "only created and joined are in the timeline");
    }
  }

  @Test
  void applicationBackendsPublishWithTheServerKeyIdempotently() throws Exception {
    try (ParleyClient nia = connect(node, "nia")) {
      await(nia.createRoom("deploys", "public", null));
      await(nia.resume(null));
      java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
      java.util.function.Function<String, java.net.http.HttpResponse<String>> publish = key -> {
        try {
          return http.send(
              java.net.http.HttpRequest.newBuilder(node.http().resolve("/v1/rooms/deploys/messages"))
                  .header("Authorization", "Bearer " + key)
                  .header("Idempotency-Key", "deploy-42")
                  .POST(java.net.http.HttpRequest.BodyPublishers.ofString("{\"user\":\"ci-bot\",\"body\":\"Deploy finished\"}"))
                  .build(),
              java.net.http.HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      };
      var first = publish.apply(InJvmNode.SERVER_KEY);
      assertEquals(200, first.statusCode(), first.body());
      JsonNode written = parley.protocol.Codec.JSON.readTree(first.body());
      assertEquals(2, written.path("seq").asLong());
      JsonNode pushed = awaitEvent(nia, "deploys", 2);
      assertEquals("ci-bot", pushed.path("user").asText());
      var again = publish.apply(InJvmNode.SERVER_KEY);
      assertEquals(2, parley.protocol.Codec.JSON.readTree(again.body()).path("seq").asLong());
      assertTrue(parley.protocol.Codec.JSON.readTree(again.body()).path("duplicate").asBoolean());
      var forged = publish.apply("not-the-key");
      assertEquals(401, forged.statusCode());
      // Neither the server key nor a user token: refused, and nothing is published.
      assertEquals("token_malformed", parley.protocol.Codec.JSON.readTree(forged.body()).path("code").asText());
      assertEquals(2, await(nia.history("deploys", null, 50)).path("events").size());
    }
  }

  private static boolean failedWithRateLimit(CompletableFuture<?> future) {
    try {
      future.get(20, TimeUnit.SECONDS);
      return false;
    } catch (ExecutionException e) {
      return e.getCause() instanceof ParleyException p && "rate_limited".equals(p.code());
    } catch (Exception e) {
      return false;
    }
  }

  private static void assertCode(String code, CompletableFuture<?> future) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> future.get(20, TimeUnit.SECONDS));
    assertTrue(e.getCause() instanceof ParleyException, e.toString());
    assertEquals(code, ((ParleyException) e.getCause()).code(), e.getCause().getMessage());
  }
}
