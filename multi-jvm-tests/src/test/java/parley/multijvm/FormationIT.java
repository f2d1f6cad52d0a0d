package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import parley.client.ParleyClient;
import parley.cluster.HashRing;

/**
 * Scenario 1: three nodes on 127.0.0.2–.4 form one cluster; clients on different nodes chat
 * with each other, and the nodes' /metrics count their sockets, messages and journal writes;
 * the shards are placed on the members by the consistent-hash ring, as /shard-distribution
 * shows.
 */
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class FormationIT {

  private static final Duration WAIT = Duration.ofSeconds(20);

  @Test
  void threeNodesFormAClusterPlaceShardsByTheRingAndChatAcrossNodes() throws Exception {
    TestCluster cluster = TestCluster.shared();
    long start = System.nanoTime();
    cluster.ensureHealthy(3);
    Measured.print("formation", "3 nodes ready and converged", Measured.since(start));
    List<ClusterNode> nodes = cluster.running();
    assertEquals(3, nodes.size());

    List<ParleyClient> clients = new ArrayList<>();
    try {
      for (int i = 0; i < nodes.size(); i++) {
        ClusterNode node = nodes.get(i);
        String user = "formation-" + i;
        ParleyClient client =
            ParleyClient.connect(node.ws(), ParleyClient.devToken(node.http(), user)).get(20, TimeUnit.SECONDS);
        assertEquals(node.address(), client.node(), "the welcome names the node that holds the socket");
        // Room events flow once the client has resumed (docs/protocol.md, Catch-up).
        client.resume(null).get(20, TimeUnit.SECONDS);
        clients.add(client);
      }
      clients.get(0).createRoom("formation-lobby", "public", null).get(20, TimeUnit.SECONDS);
      for (ParleyClient client : clients.subList(1, clients.size())) {
        client.join("formation-lobby").get(20, TimeUnit.SECONDS);
      }
      Map<Long, String> sent = new HashMap<>();
      for (int i = 0; i < clients.size(); i++) {
        long seq = clients.get(i).send("formation-lobby", "hello-" + i, "hello from node " + i).get(20, TimeUnit.SECONDS).seq();
        sent.put(seq, "hello from node " + i);
      }
      for (ParleyClient client : clients) {
        for (Map.Entry<Long, String> message : sent.entrySet()) {
          JsonNode event = client.awaitPush(
              p -> "event".equals(p.path("type").asText())
                  && "formation-lobby".equals(p.path("room").asText())
                  && p.path("seq").asLong() == message.getKey(),
              WAIT);
          assertEquals(message.getValue(), event.path("body").asText());
        }
      }
      assertTrue(Metrics.sum(nodes, "parley_connections{transport=\"websocket\"}") >= 3, "the three sockets are counted");
      assertTrue(Metrics.sum(nodes, "parley_messages_sent_total") >= 3, "the three messages are counted as sent");
      assertTrue(Metrics.sum(nodes, "parley_messages_delivered_total") >= 9, "each message delivered to three sockets");
      assertTrue(Metrics.sum(nodes, "parley_persist_seconds_count{entity=\"room\"}") >= 1, "journal writes are timed");
      Metrics.awaitSum(nodes, "parley_entities{type=\"room\"}", 1, WAIT);
    } finally {
      clients.forEach(ParleyClient::close);
    }

    Shards.touchRooms(nodes, "formation-spread", 90);
    JsonNode distribution = TestCluster.distribution(nodes.get(0));
    Map<String, String> placement = Shards.placement(distribution, "room");
    HashRing ring = new HashRing(nodes.stream().map(ClusterNode::address).toList());
    Map<String, Integer> perNode = new HashMap<>();
    placement.forEach(
        (shard, node) -> {
          assertEquals(ring.owner(shard), node, "shard " + shard + " sits on its ring owner");
          perNode.merge(node, 1, Integer::sum);
        });
    assertEquals(0, Shards.misplaced(distribution, "room"), distribution.toString());
    assertEquals(3, perNode.size(), "every node hosts room shards: " + perNode);
    for (int count : perNode.values()) {
      assertTrue(count >= placement.size() / 6, "no node gets a tiny share: " + perNode);
    }
    Measured.print("formation", "room shards per node", perNode);

    // Where an entity would live is answered before its shard has a home: the ring owner.
    JsonNode unplaced = null;
    for (int i = 0; unplaced == null && i < 200; i++) {
      JsonNode answer = nodes.get(0).getJson("/shard-distribution/room/formation-never-" + i).orElseThrow();
      if (!placement.containsKey(answer.path("shard").asText())) {
        unplaced = answer;
      }
    }
    assertNotNull(unplaced, "some room's shard is not allocated yet");
    assertFalse(unplaced.path("allocated").asBoolean(), unplaced.toString());
    assertEquals(ring.owner(unplaced.path("shard").asText()), unplaced.path("node").asText(), unplaced.toString());
  }

  /**
   * A session's start asks the user's entity, and each answer completes a Java future whose
   * callbacks the JDK runs on its common pool, or, when that pool has fewer than two threads (a
   * node of two cores, unless the node sizes it: Main), on a new thread each. Opening and
   * resuming connections must not start threads.
   */
  @Test
  void openingConnectionsStartsNoThreadPerConnection() throws Exception {
    TestCluster cluster = TestCluster.shared();
    cluster.ensureHealthy(3);
    ClusterNode node = cluster.running().get(0);
    int connections = 100;
    List<String> tokens = new ArrayList<>();
    for (int i = 0; i < connections; i++) {
      tokens.add(ParleyClient.devToken(node.http(), "formation-threads-" + i));
    }
    List<ParleyClient> clients = new ArrayList<>();
    double before = Metrics.sum(List.of(node), "jvm_threads_started_threads_total");
    try {
      for (String token : tokens) {
        ParleyClient client = ParleyClient.connect(node.ws(), token).get(20, TimeUnit.SECONDS);
        clients.add(client);
        client.resume(null).get(20, TimeUnit.SECONDS);
      }
    } finally {
      clients.forEach(ParleyClient::close);
    }
    double started = Metrics.sum(List.of(node), "jvm_threads_started_threads_total") - before;
    Measured.print("formation", "threads the node started while " + connections + " connections opened and resumed", started);
    assertTrue(started < connections / 4.0, started + " threads started for " + connections + " connections");
  }
}
