package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import parley.cluster.HashRing;

/**
 * Scenario 5: scale out from three nodes to four under load, then take the fourth out again
 * (SIGTERM). Each time only the shards whose owner on the consistent-hash ring changed move:
 * growing, about a quarter of them, all to the new node; shrinking, exactly the leaving
 * node's shards, each back to its owner among the three. Nothing acknowledged is lost.
 *
 * <p>The distribution is read from {@code /shard-distribution}. A shard handed off by a
 * rebalance gets its new home when next used, so before each reading every room is touched.
 */
@Timeout(value = 6, unit = TimeUnit.MINUTES)
class ScaleOutIT {

  private static final String TOUCHED = "scale-t";
  private static final int TOUCHED_ROOMS = 120;

  @Test
  void onlyTheShardsTheRingReassignsMoveWhenANodeJoinsAndLeaves() throws Exception {
    TestCluster cluster = TestCluster.shared();
    cluster.ensureHealthy(3);
    List<ClusterNode> three = cluster.running();
    Map<String, Integer> rooms = new LinkedHashMap<>();
    for (int i = 0; i < 4; i++) {
      rooms.put("scale-" + i, 2);
    }
    Set<ClusterNode> leaving = ConcurrentHashMap.newKeySet();
    try (Traffic traffic = new Traffic("scale", cluster.runningExcept(leaving), rooms, 2, Duration.ofMillis(200)).start()) {
      for (String room : traffic.rooms()) {
        traffic.awaitAcks(room, 5, Duration.ofSeconds(30));
      }
      Map<String, String> before = settledPlacement(three);
      String handedOff = "parley_shards_handed_off_total{type=\"room\"}";
      double handedOffBefore = Metrics.sum(three, handedOff);

      long joinAt = System.nanoTime();
      ClusterNode fourth = cluster.start(3);
      // A node joins only once it serves: when the cluster first lists it, its client port answers.
      awaitListed(three.get(0), fourth);
      assertEquals(200, ClusterNode.status(fourth.http() + "/v1/info"), "the new member serves clients from the moment it is listed");
      fourth.awaitReady(TestCluster.READY_TIMEOUT);
      List<ClusterNode> four = cluster.running();
      cluster.awaitMembers(four, TestCluster.CONVERGE_TIMEOUT);
      Map<String, String> grown = settledPlacement(four);
      Measured.print("scale-out", "4th node joined and shards settled in", Measured.since(joinAt));
      Measured.print("scale-out", "longest write stall of any room while it joined", longestStall(traffic, joinAt));

      HashRing ringOfThree = ring(three);
      HashRing ringOfFour = ring(four);
      Set<String> moved = moved(before, grown);
      Set<String> reassigned = new TreeSet<>();
      for (String shard : before.keySet()) {
        if (grown.containsKey(shard) && !ringOfThree.owner(shard).equals(ringOfFour.owner(shard))) {
          reassigned.add(shard);
        }
      }
      assertEquals(reassigned, moved, "exactly the shards the ring gives the new node moved");
      for (String shard : moved) {
        assertEquals(fourth.address(), grown.get(shard), "shard " + shard + " moved to the new node");
      }
      Measured.print("scale-out", "room shards moved 3 -> 4", moved.size() + " of " + before.size() + String.format(" (%.0f%%)", 100.0 * moved.size() / before.size()));
      double counted = Metrics.awaitSum(three, handedOff, handedOffBefore + moved.size(), Duration.ofSeconds(20)) - handedOffBefore;
      Measured.print("scale-out", "room shards the three nodes report handed off (metric)", counted);
      for (String room : traffic.rooms()) {
        traffic.awaitAcks(room, 5, Duration.ofSeconds(60));
      }

      long leaveAt = System.nanoTime();
      leaving.add(fourth);
      fourth.signal("TERM");
      fourth.awaitExit(Duration.ofSeconds(60));
      cluster.awaitMembers(three, TestCluster.CONVERGE_TIMEOUT);
      Map<String, String> shrunk = settledPlacement(three);
      Measured.print("scale-in", "4th node left and shards settled in", Measured.since(leaveAt));
      Measured.print("scale-in", "longest write stall of any room while it left", longestStall(traffic, leaveAt));
      Set<String> movedBack = moved(grown, shrunk);
      Set<String> heldByFourth = new TreeSet<>();
      grown.forEach((shard, node) -> {
        if (node.equals(fourth.address()) && shrunk.containsKey(shard)) {
          heldByFourth.add(shard);
        }
      });
      assertEquals(heldByFourth, movedBack, "exactly the leaving node's shards moved");
      for (String shard : movedBack) {
        assertEquals(ringOfThree.owner(shard), shrunk.get(shard), "shard " + shard + " went to its owner among three");
      }
      Measured.print("scale-in", "room shards moved 4 -> 3", movedBack.size() + " of " + grown.size());

      for (String room : traffic.rooms()) {
        traffic.awaitAcks(room, 5, Duration.ofSeconds(60));
      }
      traffic.stop();
      Map<String, Long> lastSeqs = traffic.verify();
      traffic.awaitReaders(lastSeqs, Duration.ofSeconds(60));
      assertTrue(traffic.acks().size() > 0);
      Measured.print("scale", "messages acknowledged (all found once, in order)", traffic.acks().size());
      Measured.print("scale", "failed attempts retried, by code", traffic.failureCodes(joinAt, System.nanoTime()));
    }
  }

  /**
   * Waits until no room shard is misplaced (every rebalance done), wakes every touched room so
   * each shard has a home, and returns where the room shards are.
   */
  private static Map<String, String> settledPlacement(List<ClusterNode> members) throws Exception {
    ClusterNode via = members.get(0);
    Shards.awaitSettled(via, "room", members.size(), Duration.ofSeconds(90));
    Shards.touchRooms(members, TOUCHED, TOUCHED_ROOMS);
    JsonNode distribution = TestCluster.distribution(via);
    assertEquals(0, Shards.misplaced(distribution, "room"), distribution.toString());
    return Shards.placement(distribution, "room");
  }

  private static Duration longestStall(Traffic traffic, long since) {
    Duration longest = Duration.ZERO;
    for (String room : traffic.rooms()) {
      Duration stall = traffic.longestStall(room, since, System.nanoTime());
      longest = stall.compareTo(longest) > 0 ? stall : longest;
    }
    return longest;
  }

  private static HashRing ring(List<ClusterNode> members) {
    return new HashRing(members.stream().map(ClusterNode::address).toList());
  }

  private static Set<String> moved(Map<String, String> from, Map<String, String> to) {
    Set<String> moved = new TreeSet<>();
    from.forEach((shard, node) -> {
      if (to.containsKey(shard) && !to.get(shard).equals(node)) {
        moved.add(shard);
      }
    });
    return moved;
  }

  /** Waits until {@code via} lists {@code node} as a member, in any status. */
  private static void awaitListed(ClusterNode via, ClusterNode node) throws InterruptedException {
    long deadline = System.nanoTime() + TestCluster.READY_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      if (via.getJson("/cluster/members").map(view -> view.toString().contains(node.address())).orElse(false)) {
        return;
      }
      Thread.sleep(50);
    }
    throw new AssertionError(node + " never became a member");
  }
}
