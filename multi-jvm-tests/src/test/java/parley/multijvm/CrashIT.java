package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Scenario 2: under steady load (rooms written from every node, readers on every node), the
 * node hosting the busiest room is killed with SIGKILL. The failure detector and the
 * split-brain resolver remove it, its shards start elsewhere from the journal, its clients
 * reconnect to the survivors and catch up; every acknowledged message is still there, in
 * order, once.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class CrashIT {

  private static final String BUSIEST = "crash-busy";

  @Test
  void everyAcknowledgedMessageSurvivesASigkillOfTheBusiestRoomsNode() throws Exception {
    TestCluster cluster = TestCluster.shared();
    cluster.ensureHealthy(3);
    Map<String, Integer> rooms = new LinkedHashMap<>();
    rooms.put(BUSIEST, 4);
    rooms.put("crash-a", 2);
    rooms.put("crash-b", 2);
    rooms.put("crash-c", 1);
    try (Traffic traffic = new Traffic("crash", cluster.runningExcept(Set.of()), rooms, 3, Duration.ofMillis(200)).start()) {
      traffic.awaitAcks(BUSIEST, 30, Duration.ofSeconds(30));

      ClusterNode victim = cluster.byAddress(TestCluster.hostOf(cluster.running().get(0), "room", BUSIEST).orElseThrow());
      List<ClusterNode> survivors = new ArrayList<>(cluster.running());
      survivors.remove(victim);
      MembershipWatch watch = new MembershipWatch(survivors, victim.address());
      long killedAt = System.nanoTime();
      long killedAtMillis = System.currentTimeMillis();
      victim.signal("KILL");
      victim.awaitExit(Duration.ofSeconds(10));

      traffic.awaitAcks(BUSIEST, 20, Duration.ofSeconds(60));
      Duration acknowledged = traffic.firstAckAfter(BUSIEST, killedAt).orElseThrow();
      cluster.awaitMembers(survivors, Duration.ofSeconds(30));
      watch.close();
      printBudget(watch, killedAt, acknowledged);
      ClusterNode survivor = cluster.running().get(0);
      String newHost = TestCluster.hostOf(survivor, "room", BUSIEST).orElseThrow();
      assertNotEquals(victim.address(), newHost, "the busiest room moved off the dead node");
      Measured.print("crash", "busiest room: first write sent after SIGKILL acknowledged after", acknowledged);
      Measured.print("crash", "longest write stall of the busiest room", traffic.longestStall(BUSIEST, killedAt, System.nanoTime()));
      for (String room : traffic.rooms()) {
        traffic.awaitAcks(room, 5, Duration.ofSeconds(60));
      }

      long restartAt = System.nanoTime();
      cluster.ensureHealthy(3);
      Measured.print("crash", "killed node restarted and back in the cluster", Measured.since(restartAt));
      traffic.awaitAcks(BUSIEST, 10, Duration.ofSeconds(60));

      traffic.stop();
      Map<String, Long> lastSeqs = traffic.verify();
      Duration writable = traffic.firstWriteAfter(BUSIEST, killedAtMillis);
      Measured.print("crash", "busiest room stored its next message after SIGKILL in", writable);
      assertTrue(writable.compareTo(Duration.ofSeconds(30)) < 0, "the room is writable again within 30 s: " + writable);
      traffic.awaitReaders(lastSeqs, Duration.ofSeconds(60));
      assertTrue(traffic.readerReconnects() >= 1, "the dead node's reader reconnected elsewhere");
      Measured.print("crash", "messages acknowledged (all found once, in order)", traffic.acks().size());
      Measured.print("crash", "failed attempts retried, by code", traffic.failureCodes(0, Long.MAX_VALUE));
      Measured.print("crash", "reader reconnects", traffic.readerReconnects());
    }
  }

  /**
   * The failover's time budget, step by step, as the survivors saw it: the failure detector
   * (until unreachable), the split-brain resolver's stable-after (until down), the removal,
   * and then the shard's hand-over (sharding's removal margin, allocation, recovery from the
   * journal) until the first write sent after the kill was acknowledged.
   */
  private static void printBudget(MembershipWatch watch, long killedAt, Duration acknowledged) {
    long unreachable = watch.unreachableAt().orElseThrow(() -> new AssertionError("no survivor saw the killed node unreachable"));
    long removed = watch.removedAt().orElseThrow(() -> new AssertionError("the killed node was never removed"));
    long down = watch.downAt().orElse(removed);
    Measured.print("crash", "budget 1, kill -> unreachable (failure detector)", Duration.ofNanos(unreachable - killedAt));
    Measured.print("crash", "budget 2, unreachable -> down (split-brain resolver)", Duration.ofNanos(down - unreachable));
    Measured.print("crash", "budget 3, down -> removed", Duration.ofNanos(removed - down));
    Measured.print("crash", "budget 4, removed -> first write acknowledged (hand-over, allocation, recovery)", acknowledged.minus(Duration.ofNanos(removed - killedAt)));
    Measured.print("crash", "budget total, kill -> first write acknowledged", acknowledged);
  }
}
