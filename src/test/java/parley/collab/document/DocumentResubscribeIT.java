package parley.collab.document;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.client.ParleyClient;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * A session that has a document open keeps following it when the document entity stops and
 * starts again (passivation, rebalance, failover all look like this to the session): it
 * watches the entity, subscribes again the moment it stops and fetches whatever it missed
 * meanwhile, so the client sees every revision once and in order. The node renews
 * subscriptions only every 10 minutes here, so nothing but the watch can explain that (the
 * entity says nothing to a subscriber that watches it, as it could not when its node died;
 * multi-jvm-tests' DocumentFailoverIT kills the node).
 */
class DocumentResubscribeIT {

  private static final Duration WAIT = Duration.ofSeconds(15);
  private static InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    node =
        InJvmNode.start(
            TestCassandra.keyspacesFor("DocumentResubscribeIT"), 0, 0, ConfigFactory.parseString("parley.chat.session-renew-interval = 10m"));
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void anOpenDocumentIsFollowedAgainAfterItsEntityStopped() throws Exception {
    try (ParleyClient ivy = connect("ivy"); ParleyClient jack = connect("jack")) {
      ivy.request("doc_create", Map.of("doc", "restarting", "text", "", "editors", List.of("jack"))).get(20, TimeUnit.SECONDS);
      jack.request("doc_open", Map.of("doc", "restarting")).get(20, TimeUnit.SECONDS);

      ClusterSharding.get(node.system)
          .entityRefFor(DocumentEntity.ENTITY_KEY, "restarting")
          .tell(new DocumentEntity.Stop());
      for (int revision = 0; revision < 3; revision++) {
        List<?> op = revision == 0 ? List.of("x") : List.of(revision, "x");
        ivy.request("doc_submit", Map.of("doc", "restarting", "clientOpId", "i-" + revision, "revision", revision, "op", op))
            .get(20, TimeUnit.SECONDS);
      }

      for (long revision = 1; revision <= 3; revision++) {
        long expected = revision;
        JsonNode op =
            jack.awaitPush(p -> "doc_op".equals(p.path("type").asText()) && p.path("revision").asLong() == expected, WAIT);
        assertEquals("i-" + (revision - 1), op.path("clientOpId").asText());
      }
      jack.ping().get(20, TimeUnit.SECONDS);
      List<Long> revisions =
          jack.pushes().stream()
              .filter(p -> "doc_op".equals(p.path("type").asText()))
              .map(p -> p.path("revision").asLong())
              .toList();
      assertEquals(List.of(1L, 2L, 3L), revisions, "each revision once, in order");
    }
  }

  private static ParleyClient connect(String user) throws Exception {
    return ParleyClient.connect(node.ws(), ParleyClient.devToken(node.http(), user)).get(20, TimeUnit.SECONDS);
  }
}
