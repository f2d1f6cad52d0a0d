package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Scenario 3: a node is frozen with SIGSTOP, as a long GC pause or a partition looks to its
 * peers. The split-brain resolver on the majority side removes it and the majority keeps
 * serving, its rooms included. Continued with SIGCONT, the frozen node learns it was downed
 * and stops itself. Writes its clients had sent before the freeze reach it only then: no room
 * may get a second writer, so every room's timeline stays gap-free, with one message per seq.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class FreezeIT {

  @Test
  void theMajorityServesOnAndTheFrozenNodeStopsItselfWithoutASecondWriter() throws Exception {
    TestCluster cluster = TestCluster.shared();
    cluster.ensureHealthy(3);
    Map<String, Integer> rooms = new LinkedHashMap<>();
    for (int i = 0; i < 6; i++) {
      rooms.put("freeze-" + i, 2);
    }
    Set<ClusterNode> frozen = ConcurrentHashMap.newKeySet();
    try (Traffic traffic = new Traffic("freeze", cluster.runningExcept(frozen), rooms, 3, Duration.ofMillis(200)).start()) {
      for (String room : traffic.rooms()) {
        traffic.awaitAcks(room, 10, Duration.ofSeconds(30));
      }
      ClusterNode via = cluster.node(0);
      Map<String, String> hosts = new LinkedHashMap<>();
      for (String room : traffic.rooms()) {
        hosts.put(room, TestCluster.hostOf(via, "room", room).orElseThrow());
      }
      // Freeze a node that hosts some rooms but not all, so both sides can be watched.
      ClusterNode victim = null;
      for (ClusterNode node : cluster.running()) {
        long hosted = hosts.values().stream().filter(node.address()::equals).count();
        if (hosted > 0 && hosted < hosts.size() && node != via) {
          victim = node;
          break;
        }
      }
      if (victim == null) {
        victim = cluster.byAddress(hosts.get("freeze-0"));
      }
      List<String> frozenRooms = new ArrayList<>();
      List<String> otherRooms = new ArrayList<>();
      for (Map.Entry<String, String> host : hosts.entrySet()) {
        (host.getValue().equals(victim.address()) ? frozenRooms : otherRooms).add(host.getKey());
      }
      List<ClusterNode> majority = new ArrayList<>(cluster.running());
      majority.remove(victim);

      frozen.add(victim);
      long frozenAt = System.nanoTime();
      long frozenAtMillis = System.currentTimeMillis();
      victim.signal("STOP");
      for (String room : otherRooms) {
        traffic.awaitAcks(room, 5, Duration.ofSeconds(30));
      }
      Measured.print("freeze", "rooms on the majority kept being written during the freeze", otherRooms);
      cluster.awaitMembers(majority, Duration.ofSeconds(60));
      Duration removed = Duration.ofNanos(System.nanoTime() - frozenAt);
      Measured.print("freeze", "frozen node removed by the split-brain resolver after", removed);
      // A frozen process keeps its listening socket, so its watchers' probes are never
      // refused: only the resolver may down it, after the failure detector's pause and
      // stable-after (3 s + 4 s here), never the exited-peer downing within a second.
      assertTrue(removed.compareTo(Duration.ofSeconds(7)) >= 0, "the frozen node was downed by the resolver, not as an exited process: " + removed);
      for (String room : frozenRooms) {
        traffic.awaitAcks(room, 5, Duration.ofSeconds(60));
      }

      long continuedAt = System.nanoTime();
      victim.signal("CONT");
      int status = victim.awaitExit(Duration.ofSeconds(60));
      Measured.print("freeze", "continued node stopped itself after (exit status " + status + ")", Measured.since(continuedAt));
      assertFalse(victim.isAlive());
      frozen.remove(victim);

      for (String room : traffic.rooms()) {
        traffic.awaitAcks(room, 5, Duration.ofSeconds(60));
      }
      cluster.ensureHealthy(3);
      traffic.stop();
      Map<String, Long> lastSeqs = traffic.verify();
      for (String room : frozenRooms) {
        Measured.print("freeze", room + " (on the frozen node) stored its next message after SIGSTOP in", traffic.firstWriteAfter(room, frozenAtMillis));
      }
      traffic.awaitReaders(lastSeqs, Duration.ofSeconds(60));
      Measured.print("freeze", "messages acknowledged (one per seq, all found, in order)", traffic.acks().size());
      Measured.print("freeze", "failed attempts retried, by code", traffic.failureCodes(0, Long.MAX_VALUE));
    }
  }
}
