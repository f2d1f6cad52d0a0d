package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.client.DocumentClient;
import parley.client.ParleyClient;
import parley.collab.ot.TextOperation;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/** Collaborative editing over a real WebSocket: the doc_* protocol as docs/protocol.md has it. */
class DocumentEditingIT {

  private static final Duration WAIT = Duration.ofSeconds(15);
  private static InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("DocumentEditingIT"));
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void editorsGetOthersOperationsInRevisionOrderAndTheirOwnAsTheOk() throws Exception {
    try (ParleyClient alice = connect(node, "alice"); ParleyClient bob = connect(node, "bob")) {
      JsonNode created = await(alice.request("doc_create", Map.of("doc", "notes", "text", "ab", "editors", List.of("bob"))));
      assertEquals(0, created.path("revision").asLong());
      JsonNode opened = await(bob.request("doc_open", Map.of("doc", "notes")));
      assertEquals("ab", opened.path("text").asText());
      assertEquals("alice", opened.path("owner").asText());
      assertEquals("[\"bob\"]", opened.path("editors").toString());
      await(alice.request("doc_open", Map.of("doc", "notes")));

      JsonNode ack = await(submit(alice, "notes", "a-1", 0, List.of(2, "c")));
      assertEquals(1, ack.path("revision").asLong());
      assertEquals("a-1", ack.path("clientOpId").asText());
      JsonNode atBob = awaitOp(bob, "notes", 1);
      assertEquals("alice", atBob.path("author").asText());
      assertEquals("a-1", atBob.path("clientOpId").asText());
      assertEquals("[2,\"c\"]", atBob.path("op").toString());

      // Bob's operation is based on revision 0 too: the server transforms it past alice's.
      assertEquals(2, await(submit(bob, "notes", "b-1", 0, List.of("d", 2))).path("revision").asLong());
      JsonNode atAlice = awaitOp(alice, "notes", 2);
      assertEquals("bob", atAlice.path("author").asText());
      assertEquals("[\"d\",3]", atAlice.path("op").toString(), "transformed to fit revision 1");
      assertTrue(
          alice.pushes().stream().noneMatch(p -> "doc_op".equals(p.path("type").asText()) && p.path("revision").asLong() == 1),
          "alice's own revision came as her ok, not as a push");

      JsonNode ops = await(bob.request("doc_ops", Map.of("doc", "notes", "revision", 0)));
      assertEquals(2, ops.path("revision").asLong());
      assertEquals(2, ops.path("ops").size());
      assertEquals("alice", ops.path("ops").get(0).path("author").asText());
      assertEquals("b-1", ops.path("ops").get(1).path("clientOpId").asText());
      assertEquals("dabc", await(alice.request("doc_open", Map.of("doc", "notes"))).path("text").asText());
    }
  }

  @Test
  void cursorsGoToTheOtherEditorsAndComeWithTheOpenDocument() throws Exception {
    try (ParleyClient carol = connect(node, "carol"); ParleyClient dave = connect(node, "dave")) {
      await(carol.request("doc_create", Map.of("doc", "cursors", "text", "hello", "editors", List.of("dave", "erin"))));
      await(carol.request("doc_open", Map.of("doc", "cursors")));
      await(dave.request("doc_open", Map.of("doc", "cursors")));

      await(dave.request("doc_cursor", Map.of("doc", "cursors", "revision", 0, "position", 1, "selectionEnd", 3)));
      JsonNode moved = carol.awaitPush(p -> "doc_cursor".equals(p.path("type").asText()), WAIT);
      assertEquals("dave", moved.path("user").asText());
      assertEquals(dave.sessionId(), moved.path("session").asText());
      assertEquals(1, moved.path("position").asInt());
      assertEquals(3, moved.path("selectionEnd").asInt());

      await(submit(carol, "cursors", "c-1", 0, List.of(">>", 5)));
      try (ParleyClient erin = connect(node, "erin")) {
        JsonNode opened = await(erin.request("doc_open", Map.of("doc", "cursors")));
        JsonNode cursor = opened.path("cursors").get(0);
        assertEquals(1, opened.path("cursors").size(), "carol sent no cursor: " + opened);
        assertEquals("dave", cursor.path("user").asText());
        assertEquals(3, cursor.path("position").asInt(), "moved by the insert before it");
        assertEquals(5, cursor.path("selectionEnd").asInt());
      }
      dave.close();
      JsonNode removed = carol.awaitPush(p -> "doc_cursor_removed".equals(p.path("type").asText()), WAIT);
      assertEquals(moved.path("session").asText(), removed.path("session").asText());
    }
  }

  @Test
  void documentClientsTypingAtOnceEndWithTheSameTextAndSeeEachOthersCursor() throws Exception {
    try (ParleyClient frank = connect(node, "frank")) {
      await(frank.request("doc_create", Map.of("doc", "together", "text", "|", "editors", List.of("gina"))));
    }
    DocumentClient frank = DocumentClient.open(() -> connectAsync(node, "frank"), "together").get(20, TimeUnit.SECONDS);
    DocumentClient gina = DocumentClient.open(() -> connectAsync(node, "gina"), "together").get(20, TimeUnit.SECONDS);
    try (frank; gina) {
      for (int i = 0; i < 20; i++) {
        frank.insert(0, "f");
        gina.edit(text -> TextOperation.builder().retain(text.length()).insert("g").build());
      }
      // Edits made while one is in flight are composed into one operation, so the number of
      // revisions varies; the text does not.
      String expected = "f".repeat(20) + "|" + "g".repeat(20);
      DocumentClient.Snapshot atFrank = frank.await(s -> !s.pending() && s.text().length() == 41, WAIT);
      DocumentClient.Snapshot atGina = gina.await(s -> !s.pending() && s.revision() == atFrank.revision(), WAIT);
      assertEquals(expected, atFrank.text());
      assertEquals(expected, atGina.text());

      frank.moveCursor(20, 21);
      DocumentClient.Snapshot seen =
          gina.await(s -> s.cursors().values().stream().anyMatch(c -> c.user().equals("frank")), WAIT);
      DocumentClient.RemoteCursor cursor = seen.cursors().values().iterator().next();
      assertEquals(20, cursor.position());
      assertEquals(21, cursor.selectionEnd());
      assertEquals(atFrank.revision(), cursor.revision());
    }
  }

  @Test
  void aResubmittedOperationGetsItsOriginalAckAcrossAReconnectAndANodeRestart() throws Exception {
    Config keyspaces = TestCassandra.keyspacesFor("DocumentEditingITRestart");
    try (InJvmNode first = InJvmNode.start(keyspaces)) {
      try (ParleyClient hank = connect(first, "hank")) {
        await(hank.request("doc_create", Map.of("doc", "once", "text", "")));
        assertEquals(1, await(submit(hank, "once", "h-1", 0, List.of("hi"))).path("revision").asLong());
      }
      try (ParleyClient hank = connect(first, "hank")) {
        assertEquals(1, await(submit(hank, "once", "h-1", 0, List.of("hi"))).path("revision").asLong());
        assertDocument(hank, "once", "hi", 1);
      }
    }
    try (InJvmNode second = InJvmNode.start(keyspaces); ParleyClient hank = connect(second, "hank")) {
      assertEquals(1, await(submit(hank, "once", "h-1", 0, List.of("hi"))).path("revision").asLong());
      assertDocument(hank, "once", "hi", 1);
    }
  }

  // ---------------------------------------------------------------------------------------

  private static ParleyClient connect(InJvmNode on, String user) throws Exception {
    return connectAsync(on, user).get(20, TimeUnit.SECONDS);
  }

  private static CompletableFuture<ParleyClient> connectAsync(InJvmNode on, String user) {
    return CompletableFuture.supplyAsync(() -> ParleyClient.devToken(on.http(), user))
        .thenCompose(token -> ParleyClient.connect(on.ws(), token));
  }

  private static CompletableFuture<JsonNode> submit(ParleyClient client, String doc, String clientOpId, long revision, List<?> op) {
    return client.request("doc_submit", Map.of("doc", doc, "clientOpId", clientOpId, "revision", revision, "op", op));
  }

  private static JsonNode awaitOp(ParleyClient client, String doc, long revision) throws Exception {
    return client.awaitPush(
        p -> "doc_op".equals(p.path("type").asText()) && doc.equals(p.path("doc").asText()) && p.path("revision").asLong() == revision,
        WAIT);
  }

  private static void assertDocument(ParleyClient client, String doc, String text, long revision) throws Exception {
    JsonNode opened = await(client.request("doc_open", Map.of("doc", doc)));
    assertEquals(text, opened.path("text").asText());
    assertEquals(revision, opened.path("revision").asLong());
  }

  private static JsonNode await(CompletableFuture<JsonNode> future) throws Exception {
    return future.get(20, TimeUnit.SECONDS);
  }
}
