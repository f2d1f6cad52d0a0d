package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.client.ParleyClient;
import parley.client.ParleyException;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * Every kind of bad document request over a real WebSocket gets its stable error code, and the
 * document stays exactly as it was: same text, same revision, nothing pushed. The node runs
 * with small limits (documents of 4 KiB, 5 retained operations) so the limits are cheap to hit.
 */
class DocumentBadInputIT {

  private static final Duration WAIT = Duration.ofSeconds(15);
  private static InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    node =
        InJvmNode.start(
            TestCassandra.keyspacesFor("DocumentBadInputIT"),
            0,
            0,
            ConfigFactory.parseString("parley.documents { max-size = 4 KiB, retained-ops = 5 }"));
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void operationsThatDoNotFitOrAreMalformedLeaveTheDocumentUnchanged() throws Exception {
    try (ParleyClient alice = connect("alice"); ParleyClient watcher = connect("alice")) {
      await(alice.request("doc_create", Map.of("doc", "fit", "text", "hello")));
      await(watcher.request("doc_open", Map.of("doc", "fit")));

      assertCode("base_length_mismatch", submit(alice, "fit", 0, List.of(3, "x")));
      assertCode("base_length_mismatch", submit(alice, "fit", 0, List.of(5, -1)));
      assertCode("base_length_mismatch", submit(alice, "fit", 0, List.of(-6)));
      assertCode("bad_operation", submit(alice, "fit", 0, List.of(0, "x")));
      assertCode("bad_operation", submit(alice, "fit", 0, List.of(5.5)));
      assertCode("bad_operation", submit(alice, "fit", 0, List.of(5, true)));
      assertCode("bad_operation", submit(alice, "fit", 0, List.of(5, "")));
      assertCode("bad_operation", submit(alice, "fit", 0, List.of(5, List.of("x"))));
      assertCode("bad_operation", submit(alice, "fit", 0, List.of(5, Map.of("insert", "x"))));
      assertCode("bad_operation", submit(alice, "fit", 0, List.of(5, 3_000_000_000L)));
      assertCode("bad_operation", submit(alice, "fit", 0, "5"));
      assertCode("missing_field", alice.request("doc_submit", Map.of("doc", "fit", "clientOpId", "c", "revision", 0)));
      assertCode("missing_field", alice.request("doc_submit", Map.of("doc", "fit", "revision", 0, "op", List.of(5))));
      assertCode("bad_field", alice.request("doc_submit", Map.of("doc", "fit", "clientOpId", "no spaces", "revision", 0, "op", List.of(5))));
      assertCode("bad_field", alice.request("doc_submit", Map.of("doc", "fit", "clientOpId", "c", "revision", "0", "op", List.of(5))));
      assertCode("bad_revision", submit(alice, "fit", -1, List.of(5, "x")));
      assertCode("bad_revision", submit(alice, "fit", 1, List.of(5, "x")));

      assertUnchanged(alice, "fit", "hello", 0);
      assertNoOperationPushed(watcher, "fit");
    }
  }

  @Test
  void unknownDocumentsAndBadIdsAreNamed() throws Exception {
    try (ParleyClient bob = connect("bob")) {
      assertCode("doc_not_found", bob.request("doc_open", Map.of("doc", "nowhere")));
      assertCode("doc_not_found", submit(bob, "nowhere", 0, List.of("x")));
      assertCode("doc_not_found", bob.request("doc_ops", Map.of("doc", "nowhere", "revision", 0)));
      assertCode("doc_not_found", bob.request("doc_add_editor", Map.of("doc", "nowhere", "user", "carol")));
      assertCode("bad_doc_id", bob.request("doc_open", Map.of("doc", "no spaces")));
      assertCode("bad_doc_id", bob.request("doc_open", Map.of("doc", "dm:bob:carol")));
      assertCode("missing_field", bob.request("doc_open", Map.of()));
      assertCode("unknown_type", bob.request("doc_dance", Map.of("doc", "x")));
      assertCode("bad_user_id", bob.request("doc_create", Map.of("doc", "bobs", "editors", List.of("no spaces"))));
      await(bob.request("doc_create", Map.of("doc", "bobs")));
      assertCode("doc_exists", bob.request("doc_create", Map.of("doc", "bobs", "text", "again")));
      assertCode("bad_revision", bob.request("doc_ops", Map.of("doc", "bobs", "revision", -1)));
      assertCode("bad_revision", bob.request("doc_ops", Map.of("doc", "bobs", "revision", 1)));
      assertCode("bad_field", bob.request("doc_cursor", Map.of("doc", "bobs", "revision", 0, "position", -1)));
      assertCode("missing_field", bob.request("doc_cursor", Map.of("doc", "bobs", "position", 0)));
      assertCode("bad_user_id", bob.request("doc_add_editor", Map.of("doc", "bobs", "user", "")));
      assertUnchanged(bob, "bobs", "", 0);
    }
  }

  @Test
  void onlyTheOwnerAndEditorsMayReadOrEdit() throws Exception {
    try (ParleyClient carol = connect("carol"); ParleyClient dave = connect("dave")) {
      await(carol.request("doc_create", Map.of("doc", "carols", "text", "secret")));
      await(carol.request("doc_open", Map.of("doc", "carols")));
      assertCode("doc_not_found", dave.request("doc_open", Map.of("doc", "carols")));
      assertCode("doc_not_found", submit(dave, "carols", 0, List.of(6, "!")));
      assertCode("doc_not_found", dave.request("doc_ops", Map.of("doc", "carols", "revision", 0)));
      assertCode("doc_not_found", dave.request("doc_add_editor", Map.of("doc", "carols", "user", "dave")));
      assertUnchanged(carol, "carols", "secret", 0);

      JsonNode added = await(carol.request("doc_add_editor", Map.of("doc", "carols", "user", "dave")));
      assertEquals("[\"dave\"]", added.path("editors").toString());
      JsonNode pushed = carol.awaitPush(p -> "doc_editors".equals(p.path("type").asText()), WAIT);
      assertEquals("carol", pushed.path("owner").asText());
      assertEquals("[\"dave\"]", pushed.path("editors").toString());
      assertEquals("secret", await(dave.request("doc_open", Map.of("doc", "carols"))).path("text").asText());
      assertCode("forbidden", dave.request("doc_add_editor", Map.of("doc", "carols", "user", "erin")));
    }
  }

  @Test
  void aDocumentMayNotGrowPastTheConfiguredSize() throws Exception {
    // 4 KiB of UTF-16 is 2048 chars.
    try (ParleyClient erin = connect("erin")) {
      assertCode("document_too_large", erin.request("doc_create", Map.of("doc", "big", "text", "x".repeat(2049))));
      assertCode("doc_not_found", erin.request("doc_open", Map.of("doc", "big")));
      await(erin.request("doc_create", Map.of("doc", "big", "text", "x".repeat(2040))));
      assertCode("document_too_large", submit(erin, "big", 0, List.of(2040, "y".repeat(9))));
      assertUnchanged(erin, "big", "x".repeat(2040), 0);
      JsonNode fits = await(submit(erin, "big", 0, List.of(2040, "y".repeat(8))));
      assertEquals(1, fits.path("revision").asLong(), "exactly at the limit is allowed");
      JsonNode shrinks = await(submit(erin, "big", 1, List.of(-10, 2038)));
      assertEquals(2, shrinks.path("revision").asLong());
    }
  }

  @Test
  void aBaseOlderThanTheRetainedWindowNeedsAResync() throws Exception {
    try (ParleyClient frank = connect("frank")) {
      await(frank.request("doc_create", Map.of("doc", "old", "text", "")));
      for (int revision = 0; revision < 7; revision++) {
        await(submit(frank, "old", revision, revision == 0 ? List.of("a") : List.of(revision, "a")));
      }
      // Revisions 3 to 7 are retained (5 operations): bases 2 to 7 can still be transformed.
      JsonNode transformed = await(submit(frank, "old", 2, List.of(2, "b")));
      assertEquals(8, transformed.path("revision").asLong());
      assertCode("resync_required", submit(frank, "old", 1, List.of(1, "c")));
      assertCode("resync_required", frank.request("doc_ops", Map.of("doc", "old", "revision", 1)));
      JsonNode ops = await(frank.request("doc_ops", Map.of("doc", "old", "revision", 6)));
      assertEquals(2, ops.path("ops").size());
      assertEquals(8, ops.path("revision").asLong());
      assertUnchanged(frank, "old", "aabaaaaa", 8);
    }
  }

  // ---------------------------------------------------------------------------------------

  private static ParleyClient connect(String user) throws Exception {
    return ParleyClient.connect(node.ws(), ParleyClient.devToken(node.http(), user)).get(20, TimeUnit.SECONDS);
  }

  private static final AtomicInteger SUBMISSIONS = new AtomicInteger();

  private static CompletableFuture<JsonNode> submit(ParleyClient client, String doc, long revision, Object op) {
    Map<String, Object> fields = new HashMap<>();
    fields.put("doc", doc);
    fields.put("clientOpId", "op-" + SUBMISSIONS.incrementAndGet());
    fields.put("revision", revision);
    fields.put("op", op);
    return client.request("doc_submit", fields);
  }

  private static JsonNode await(CompletableFuture<JsonNode> future) throws Exception {
    return future.get(20, TimeUnit.SECONDS);
  }

  private static void assertUnchanged(ParleyClient client, String doc, String text, long revision) throws Exception {
    JsonNode opened = await(client.request("doc_open", Map.of("doc", doc)));
    assertEquals(text, opened.path("text").asText());
    assertEquals(revision, opened.path("revision").asLong());
  }

  /** A ping's pong comes after any push the refused submissions could have caused. */
  private static void assertNoOperationPushed(ParleyClient client, String doc) throws Exception {
    client.ping().get(20, TimeUnit.SECONDS);
    List<JsonNode> ops = new ArrayList<>();
    client.pushes().stream()
        .filter(p -> "doc_op".equals(p.path("type").asText()) && doc.equals(p.path("doc").asText()))
        .forEach(ops::add);
    assertTrue(ops.isEmpty(), "nothing was pushed: " + ops);
  }

  private static void assertCode(String code, CompletableFuture<?> future) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> future.get(20, TimeUnit.SECONDS));
    assertTrue(e.getCause() instanceof ParleyException, e.toString());
    assertEquals(code, ((ParleyException) e.getCause()).code(), e.getCause().getMessage());
  }
}
