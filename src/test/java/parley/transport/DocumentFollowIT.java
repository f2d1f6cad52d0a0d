package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.PoisonPill;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.Test;
import parley.client.ParleyClient;
import parley.collab.document.DocumentEntity;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * A connection with a document open follows its entity: when the entity stops (here stopped
 * from outside; it says nothing to a subscriber that watches it, as it could not when its node
 * died, which multi-jvm-tests' DocumentFailoverIT does), the connection subscribes again at
 * once, so the next operation reaches it, although its periodic renewal is far beyond the test.
 */
class DocumentFollowIT {

  private static final Duration WAIT = Duration.ofSeconds(15);

  @Test
  void aConnectionSubscribesAgainAsSoonAsItsDocumentsEntityStops() throws Exception {
    var renewalOutOfReach = ConfigFactory.parseString("parley.chat.session-renew-interval = 10m");
    try (InJvmNode node = InJvmNode.start(TestCassandra.keyspacesFor("DocumentFollowIT"), 0, 0, renewalOutOfReach);
        ParleyClient writer = connect(node, "mira");
        ParleyClient reader = connect(node, "otto")) {
      String doc = "followed-" + System.nanoTime();
      writer.request("doc_create", Map.of("doc", doc, "editors", List.of("otto"))).get(20, TimeUnit.SECONDS);
      assertEquals(0, reader.request("doc_open", Map.of("doc", doc)).get(20, TimeUnit.SECONDS).path("revision").asLong());

      for (int round = 1; round <= 2; round++) {
        ActorRef<DocumentEntity.Command> entity = entityOf(node, doc);
        TestProbe<Object> watcher = TestProbe.create(node.system);
        Adapter.toClassic(entity).tell(PoisonPill.getInstance(), org.apache.pekko.actor.ActorRef.noSender());
        watcher.expectTerminated(entity, WAIT);

        writer.request("doc_submit", Map.of("doc", doc, "clientOpId", "m-" + round, "revision", round - 1, "op", round == 1 ? List.of("x") : List.of(round - 1, "x")))
            .get(20, TimeUnit.SECONDS);
        JsonNode op = reader.awaitPush(p -> "doc_op".equals(p.path("type").asText()) && p.path("doc").asText().equals(doc), WAIT);
        assertEquals(round, op.path("revision").asLong(), "every revision once, in order: " + op);
      }
    }
  }

  /** The entity's ref, as a subscriber learns it. */
  private static ActorRef<DocumentEntity.Command> entityOf(InJvmNode node, String doc) {
    TestProbe<DocumentEntity.Push> pushes = TestProbe.create(node.system);
    TestProbe<DocumentEntity.OpenReply> replies = TestProbe.create(node.system);
    ClusterSharding.get(node.system)
        .entityRefFor(DocumentEntity.ENTITY_KEY, doc)
        .tell(new DocumentEntity.Subscribe("mira", "probe", pushes.ref(), replies.ref(), true));
    return replies.expectMessageClass(DocumentEntity.Subscribed.class, WAIT).entity();
  }

  private static ParleyClient connect(InJvmNode node, String user) throws Exception {
    return ParleyClient.connect(node.ws(), ParleyClient.devToken(node.http(), user)).get(20, TimeUnit.SECONDS);
  }
}
