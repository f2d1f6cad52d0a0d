package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
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
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * Documents created in a room, over real WebSockets and REST against the real Cassandra: the
 * room's members edit them, everyone else is refused, and a member who leaves loses access
 * within the membership TTL (500 ms on this node).
 */
class DocumentRoomIT {

  private static final Duration WAIT = Duration.ofSeconds(15);
  private static final Duration TTL = Duration.ofMillis(500);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    node =
        InJvmNode.start(
            TestCassandra.keyspacesFor("DocumentRoomIT"),
            0,
            0,
            // Renewals off: a session's renewal subscribes its documents again, and would end
            // bob's open document by a refused re-subscription; the test is for the document
            // closing it at once when his membership ends.
            ConfigFactory.parseString(
                "parley.documents.room-membership-ttl = " + TTL.toMillis() + "ms\n"
                    + "parley.chat.session-renew-interval = 10m"));
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void membersEditTheRoomsDocumentAndOneWhoLeavesLosesItWithinTheTtl() throws Exception {
    try (ParleyClient alice = connect("alice"); ParleyClient bob = connect("bob"); ParleyClient carol = connect("carol")) {
      alice.createRoom("studio", "private", null).get(20, TimeUnit.SECONDS);
      alice.invite("studio", "bob").get(20, TimeUnit.SECONDS);
      bob.join("studio").get(20, TimeUnit.SECONDS);

      assertCode("room_not_found", carol.request("doc_create", Map.of("doc", "plan", "room", "studio")));
      assertCode("room_not_found", carol.request("doc_create", Map.of("doc", "plan", "room", "no-such-room")));
      assertCode("bad_room_id", carol.request("doc_create", Map.of("doc", "plan", "room", "no spaces")));
      JsonNode created = await(alice.request("doc_create", Map.of("doc", "plan", "text", "ab", "room", "studio")));
      assertEquals("studio", created.path("room").asText());

      JsonNode atBob = await(bob.request("doc_open", Map.of("doc", "plan")));
      assertEquals("ab", atBob.path("text").asText());
      assertEquals("studio", atBob.path("room").asText());
      assertEquals("alice", atBob.path("owner").asText());
      await(alice.request("doc_open", Map.of("doc", "plan")));
      assertEquals(1, await(submit(bob, "b-1", 0, List.of(2, "c"))).path("revision").asLong());
      JsonNode atAlice = awaitOp(alice, 1);
      assertEquals("bob", atAlice.path("author").asText());
      assertEquals("[2,\"c\"]", atAlice.path("op").toString());

      assertCode("doc_not_found", carol.request("doc_open", Map.of("doc", "plan")));
      assertCode("doc_not_found", submit(carol, "c-1", 1, List.of(3, "!")));
      assertCode("doc_not_found", carol.request("doc_ops", Map.of("doc", "plan", "revision", 0)));

      bob.leave("studio").get(20, TimeUnit.SECONDS);
      long leftAt = System.nanoTime();
      long revision = 1;
      // Until the TTL of the document's last "member" answer ends, bob may still get in;
      // a submission sent after that must be refused. The margin covers an answer the room
      // gave just before the leave, taken in by the document just after it.
      long mustBeRefusedAfter = leftAt + TTL.toNanos() + Duration.ofMillis(250).toNanos();
      int attempt = 0;
      while (true) {
        long sentAt = System.nanoTime();
        assertTrue(sentAt - leftAt < WAIT.toNanos(), "bob was never refused after leaving the room");
        CompletableFuture<JsonNode> sent = submit(bob, "b-after-" + ++attempt, revision, List.of((int) revision + 2, "."));
        try {
          revision = await(sent).path("revision").asLong();
          assertTrue(sentAt < mustBeRefusedAfter, "bob got in " + Duration.ofNanos(sentAt - leftAt).toMillis() + " ms after leaving");
          awaitOp(alice, revision);
        } catch (ExecutionException e) {
          assertEquals("doc_not_found", ((ParleyException) e.getCause()).code(), e.getCause().getMessage());
          break;
        }
        // One submission per poll, well inside the connection's request rate.
        Thread.sleep(100);
      }
      JsonNode resync = bob.awaitPush(p -> "doc_resync".equals(p.path("type").asText()), WAIT);
      assertEquals("doc_not_found", resync.path("code").asText(), "bob's open document ended too");

      long before = revision;
      assertEquals(before + 1, await(submit(alice, "a-1", before, List.of("A", (int) before + 2))).path("revision").asLong());
      JsonNode document = await(alice.request("doc_open", Map.of("doc", "plan")));
      assertEquals(before + 1, document.path("revision").asLong(), "the refused submission left no trace");
      assertEquals("Aabc" + ".".repeat((int) before - 1), document.path("text").asText());
      assertCode("doc_not_found", bob.request("doc_open", Map.of("doc", "plan")));
    }
  }

  @Test
  void restCreatesAndOpensARoomsDocumentForMembersOnly() throws Exception {
    try (ParleyClient owner = connect("dana"); ParleyClient member = connect("eve")) {
      owner.createRoom("rest-room", "public", null).get(20, TimeUnit.SECONDS);
      member.join("rest-room").get(20, TimeUnit.SECONDS);
      String dana = ParleyClient.devToken(node.http(), "dana");
      String eve = ParleyClient.devToken(node.http(), "eve");
      String frank = ParleyClient.devToken(node.http(), "frank");

      HttpResponse<String> refused = rest("POST", "/v1/docs", frank, "{\"doc\":\"memo\",\"room\":\"rest-room\"}");
      assertEquals(403, refused.statusCode(), refused.body());
      assertEquals("not_a_member", JSON.readTree(refused.body()).path("code").asText());
      HttpResponse<String> unknown = rest("POST", "/v1/docs", dana, "{\"doc\":\"memo\",\"room\":\"no-such-room\"}");
      assertEquals(404, unknown.statusCode(), unknown.body());
      assertEquals("room_not_found", JSON.readTree(unknown.body()).path("code").asText());

      HttpResponse<String> created = rest("POST", "/v1/docs", dana, "{\"doc\":\"memo\",\"room\":\"rest-room\",\"text\":\"hi\"}");
      assertEquals(200, created.statusCode(), created.body());
      HttpResponse<String> opened = rest("GET", "/v1/docs/memo", eve, null);
      assertEquals(200, opened.statusCode(), opened.body());
      assertEquals("rest-room", JSON.readTree(opened.body()).path("room").asText());
      assertEquals("hi", JSON.readTree(opened.body()).path("text").asText());
      HttpResponse<String> outsider = rest("GET", "/v1/docs/memo", frank, null);
      assertEquals(404, outsider.statusCode(), outsider.body());
      assertEquals("doc_not_found", JSON.readTree(outsider.body()).path("code").asText());
    }
  }

  // ---------------------------------------------------------------------------------------

  private static ParleyClient connect(String user) throws Exception {
    return CompletableFuture.supplyAsync(() -> ParleyClient.devToken(node.http(), user))
        .thenCompose(token -> ParleyClient.connect(node.ws(), token))
        .get(20, TimeUnit.SECONDS);
  }

  private static CompletableFuture<JsonNode> submit(ParleyClient client, String clientOpId, long revision, List<?> op) {
    return client.request("doc_submit", Map.of("doc", "plan", "clientOpId", clientOpId, "revision", revision, "op", op));
  }

  private static JsonNode awaitOp(ParleyClient client, long revision) throws Exception {
    return client.awaitPush(
        p -> "doc_op".equals(p.path("type").asText()) && "plan".equals(p.path("doc").asText()) && p.path("revision").asLong() == revision,
        WAIT);
  }

  private static HttpResponse<String> rest(String method, String path, String token, String body) throws Exception {
    HttpRequest request =
        HttpRequest.newBuilder(node.http().resolve(path))
            .header("Authorization", "Bearer " + token)
            .header("Content-Type", "application/json")
            .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
            .build();
    return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode await(CompletableFuture<JsonNode> future) throws Exception {
    return future.get(20, TimeUnit.SECONDS);
  }

  private static void assertCode(String code, CompletableFuture<?> future) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> future.get(20, TimeUnit.SECONDS));
    assertTrue(e.getCause() instanceof ParleyException, e.toString());
    assertEquals(code, ((ParleyException) e.getCause()).code(), e.getCause().getMessage());
  }
}
