package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import parley.client.ParleyClient;

/**
 * Scenario: the node hosting a document is killed with -9 while an editor on the other node has
 * it open and only reads. The document starts on the survivor from the journal, and the
 * reader's connection follows it there as soon as the cluster has removed the dead node:
 * someone else's next operation reaches the reader as a {@code doc_op}. The nodes renew their
 * sessions' subscriptions only every 5 minutes here (the shared cluster does so every 2 s,
 * which would find the document again anyway), so nothing but the connection's watch on the
 * document can explain that. A cluster of two of its own on 127.0.0.8–.9.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class DocumentFailoverIT {

  @Test
  void aReaderOnTheSurvivorGetsTheNextOperationAtOnceAfterTheDocumentsNodeDies() throws Exception {
    try (TestCluster cluster =
        TestCluster.onTestCassandra(
            "doc-failover", "DocumentFailoverIT", List.of("127.0.0.8", "127.0.0.9"), List.of("-Dparley.chat.session-renew-interval=5m"))) {
      cluster.ensureHealthy(2);
      // The survivor is the oldest member: the shard coordinators stay up, and the document's
      // own move is what is timed.
      ClusterNode first = cluster.running().get(0);
      String oldest = first.getJson("/cluster/members").orElseThrow().path("oldest").asText();
      ClusterNode survivor = cluster.byAddress(oldest);
      ClusterNode victim = cluster.running().stream().filter(node -> node != survivor).findFirst().orElseThrow();
      String doc = Shards.firstNamed("failover-doc-" + System.nanoTime() + "-", "doc", survivor, victim.address(), true);

      try (ParleyClient writer = connect(survivor, "doc-failover-writer");
          ParleyClient reader = connect(survivor, "doc-failover-reader")) {
        writer.request("doc_create", Map.of("doc", doc, "text", "", "editors", List.of("doc-failover-reader"))).get(20, TimeUnit.SECONDS);
        assertEquals(0, reader.request("doc_open", Map.of("doc", doc)).get(20, TimeUnit.SECONDS).path("revision").asLong());
        submit(writer, doc, "w-1", 0, List.of("a"), Duration.ofSeconds(20));
        awaitOp(reader, doc, 1, Duration.ofSeconds(20));
        JsonNode placed = survivor.getJson("/shard-distribution/doc/" + doc).orElseThrow();
        assertTrue(placed.path("allocated").asBoolean() && victim.address().equals(placed.path("node").asText()), "the document runs on the victim: " + placed);

        victim.signal("KILL");
        long killedAt = System.nanoTime();
        victim.awaitExit(Duration.ofSeconds(10));

        // The writer retries with the same clientOpId until the document answers from the
        // survivor (the dedup window makes a retry safe).
        assertEquals(2, submit(writer, doc, "w-2", 1, List.of(1, "b"), Duration.ofSeconds(60)));
        Measured.print("doc-failover", "the writer's operation acknowledged after the kill", Measured.since(killedAt));
        awaitOp(reader, doc, 2, Duration.ofSeconds(20));
        Measured.print("doc-failover", "the reader got the operation after the kill", Measured.since(killedAt));
      }
    }
  }

  private static long submit(ParleyClient writer, String doc, String clientOpId, long base, List<?> op, Duration within) throws Exception {
    long deadline = System.nanoTime() + within.toNanos();
    while (true) {
      try {
        JsonNode ok = writer.request("doc_submit", Map.of("doc", doc, "clientOpId", clientOpId, "revision", base, "op", op)).get(3, TimeUnit.SECONDS);
        return ok.path("revision").asLong();
      } catch (Exception unanswered) {
        // Unavailable or no answer in time while the document's shard moves: the same again,
        // after a pause, as a client backs off.
        if (System.nanoTime() > deadline) {
          throw new AssertionError("no acknowledgement within " + within, unanswered);
        }
        Thread.sleep(500);
      }
    }
  }

  private static void awaitOp(ParleyClient reader, String doc, long revision, Duration within) throws Exception {
    reader.awaitPush(
        p -> "doc_op".equals(p.path("type").asText()) && doc.equals(p.path("doc").asText()) && p.path("revision").asLong() == revision,
        within);
  }

  private static ParleyClient connect(ClusterNode node, String user) throws Exception {
    return ParleyClient.connect(node.ws(), ParleyClient.devToken(node.http(), user)).get(20, TimeUnit.SECONDS);
  }
}
