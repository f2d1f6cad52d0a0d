package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.chat.room.RoomEntity;
import parley.client.ParleyClient;
import parley.client.Sent;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * Three nodes in one JVM forming a real cluster over loopback: the sender, the room and the
 * receiver each on a different node.
 */
class ChatClusterIT {

  private static final Duration WAIT = Duration.ofSeconds(20);
  private static final List<InJvmNode> nodes = new ArrayList<>();

  @BeforeAll
  static void startCluster() throws Exception {
    Config keyspaces = TestCassandra.keyspacesFor("ChatClusterIT");
    // Alice creates rooms until one lands on the third node: more than a user may a minute.
    com.typesafe.config.Config rooms = ConfigFactory.parseString("parley.chat.rooms-per-minute = 1000");
    InJvmNode first = InJvmNode.start(keyspaces, 0, 0, rooms);
    nodes.add(first);
    nodes.add(InJvmNode.start(keyspaces, 0, first.remotePort, rooms));
    nodes.add(InJvmNode.start(keyspaces, 0, first.remotePort, rooms));
    TestProbe<Object> probe = TestProbe.create(first.system);
    probe.awaitAssert(
        WAIT,
        () -> {
          for (InJvmNode node : nodes) {
            var members = Cluster.get(node.system).state().getMembers();
            long up = java.util.stream.StreamSupport.stream(members.spliterator(), false)
                .filter(m -> m.status() == MemberStatus.up())
                .count();
            assertEquals(3, up);
          }
          return null;
        });
  }

  @AfterAll
  static void stopCluster() throws Exception {
    for (int i = nodes.size() - 1; i >= 0; i--) {
      nodes.get(i).close();
    }
  }

  @Test
  void senderRoomAndReceiverOnThreeDifferentNodes() throws Exception {
    InJvmNode a = nodes.get(0);
    InJvmNode b = nodes.get(1);
    InJvmNode c = nodes.get(2);
    try (ParleyClient alice = connect(a, "alice"); ParleyClient bob = connect(b, "bob")) {
      String room = null;
      for (int i = 0; i < 40 && room == null; i++) {
        String candidate = "spread-" + i;
        await(alice.createRoom(candidate, "public", null));
        if (hosts(c, candidate)) {
          room = candidate;
        }
      }
      assertTrue(room != null, "some room lives on the third node");
      assertTrue(!hosts(a, room) && !hosts(b, room));

      await(bob.join(room));
      await(alice.resume(null));
      await(bob.resume(null));

      List<CompletableFuture<Sent>> sends = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        sends.add(alice.send(room, "a-" + i, "from a " + i));
        sends.add(bob.send(room, "b-" + i, "from b " + i));
      }
      List<Long> acked = new ArrayList<>();
      for (CompletableFuture<Sent> send : sends) {
        acked.add(await(send).seq());
      }
      long last = acked.stream().mapToLong(Long::longValue).max().orElseThrow();
      assertEquals(42, last, "created + joined + 40 messages, gap-free");
      for (ParleyClient client : List.of(alice, bob)) {
        final String followed = room;
        client.awaitPush(p -> followed.equals(p.path("room").asText()) && p.path("seq").asLong() == last, WAIT);
        List<Long> seen = new ArrayList<>();
        for (JsonNode push : client.pushes()) {
          if ("event".equals(push.path("type").asText()) && followed.equals(push.path("room").asText())) {
            seen.add(push.path("seq").asLong());
          }
        }
        List<Long> expected = new ArrayList<>();
        for (long seq = seen.get(0); seq <= last; seq++) {
          expected.add(seq);
        }
        assertEquals(expected, seen, "in seq order, no duplicate, no gap on " + client.node());
      }
    }
  }

  private static boolean hosts(InJvmNode node, String room) {
    TestProbe<ShardRegion.CurrentShardRegionState> probe = TestProbe.create(node.system);
    ClusterSharding.get(node.system).shardState().tell(new GetShardRegionState(RoomEntity.ENTITY_KEY, probe.ref()));
    ShardRegion.CurrentShardRegionState state = probe.receiveMessage(WAIT);
    return state.getShards().stream().anyMatch(s -> s.getEntityIds().contains(room));
  }

  private static ParleyClient connect(InJvmNode on, String user) throws Exception {
    return ParleyClient.connect(on.ws(), ParleyClient.devToken(on.http(), user)).get(20, TimeUnit.SECONDS);
  }

  private static <T> T await(CompletableFuture<T> future) throws Exception {
    return future.get(20, TimeUnit.SECONDS);
  }
}
