package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * Scenario 2: under steady load (rooms written from every node, readers on every node), a node
 * is killed with SIGKILL: the one hosting the busiest room, and the oldest member. Its
 * watchers find its remoting port refusing and down it, its shards start elsewhere from the
 * journal, its clients reconnect to the survivors and catch up; every acknowledged message is
 * still there, in order, once.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class CrashIT {

  @Test
  void everyAcknowledgedMessageSurvivesASigkillOfTheBusiestRoomsNode() throws Exception {
    crash("crash", cluster -> cluster.byAddress(TestCluster.hostOf(cluster.running().get(0), "room", "crash-busy").orElseThrow()));
  }

  /**
   * The oldest member also holds the shard coordinators and every other singleton, which must
   * move too before any of its rooms can.
   */
  @Test
  void everyAcknowledgedMessageSurvivesASigkillOfTheOldestMember() throws Exception {
    crash("crash-oldest", cluster -> cluster.byAddress(cluster.running().get(0).getJson("/cluster/members").orElseThrow().path("oldest").asText()));
  }

  private interface Victim {
    ClusterNode choose(TestCluster cluster) throws Exception;
  }

  private static void crash(String scenario, Victim choose) throws Exception {
    TestCluster cluster = TestCluster.shared();
    cluster.ensureHealthy(3);
    String busiest = scenario + "-busy";
    Map<String, Integer> rooms = new LinkedHashMap<>();
    rooms.put(busiest, 4);
    rooms.put(scenario + "-a", 2);
    rooms.put(scenario + "-b", 2);
    rooms.put(scenario + "-c", 1);
    try (Traffic traffic = new Traffic(scenario, cluster.runningExcept(Set.of()), rooms, 3, Duration.ofMillis(200)).start()) {
      for (String room : traffic.rooms()) {
        traffic.awaitAcks(room, room.equals(busiest) ? 30 : 5, Duration.ofSeconds(30));
      }

      ClusterNode victim = choose.choose(cluster);
      List<String> victimsRooms = new ArrayList<>();
      for (String room : traffic.rooms()) {
        if (TestCluster.hostOf(cluster.running().get(0), "room", room).orElseThrow().equals(victim.address())) {
          victimsRooms.add(room);
        }
      }
      List<ClusterNode> survivors = new ArrayList<>(cluster.running());
      survivors.remove(victim);
      MembershipWatch watch = new MembershipWatch(survivors, victim.address());
      long killedAt = System.nanoTime();
      long killedAtMillis = System.currentTimeMillis();
      victim.signal("KILL");
      victim.awaitExit(Duration.ofSeconds(10));

      for (String room : traffic.rooms()) {
        traffic.awaitAcks(room, 5, Duration.ofSeconds(60));
      }
      cluster.awaitMembers(survivors, Duration.ofSeconds(30));
      watch.close();
      Duration acknowledged = traffic.firstAckAfter(busiest, killedAt).orElseThrow();
      printBudget(scenario, watch, killedAt, acknowledged);
      long downAt = watch.downAt().orElseThrow(() -> new AssertionError("no survivor ever listed the killed node as Down"));
      // The failure detector alone cannot even see the node unreachable before its 3 s pause:
      // a Down this early is the exited-peer downing's.
      assertTrue(Duration.ofNanos(downAt - killedAt).compareTo(Duration.ofSeconds(3)) < 0,
          "the killed node was downed as soon as its port refused, not after the failure detector: " + Duration.ofNanos(downAt - killedAt));
      ClusterNode survivor = cluster.running().get(0);
      for (String room : victimsRooms) {
        assertNotEquals(victim.address(), TestCluster.hostOf(survivor, "room", room).orElseThrow(), room + " moved off the dead node");
      }
      Measured.print(scenario, "rooms that were on the killed node", victimsRooms);
      Measured.print(scenario, "busiest room: first write sent after SIGKILL acknowledged after", acknowledged);
      Measured.print(scenario, "longest write stall of the busiest room", traffic.longestStall(busiest, killedAt, System.nanoTime()));

      long restartAt = System.nanoTime();
      cluster.ensureHealthy(3);
      Measured.print(scenario, "killed node restarted and back in the cluster", Measured.since(restartAt));
      traffic.awaitAcks(busiest, 10, Duration.ofSeconds(60));

      traffic.stop();
      Map<String, Long> lastSeqs = traffic.verify();
      Duration everyRoom = Duration.ZERO;
      for (String room : traffic.rooms()) {
        Duration writable = traffic.firstWriteAfter(room, killedAtMillis);
        everyRoom = writable.compareTo(everyRoom) > 0 ? writable : everyRoom;
      }
      Measured.print(scenario, "busiest room stored its next message after SIGKILL in", traffic.firstWriteAfter(busiest, killedAtMillis));
      Measured.print(scenario, "every room stored a message again after SIGKILL within", everyRoom);
      assertTrue(everyRoom.compareTo(Duration.ofSeconds(30)) < 0, "every room is writable again within 30 s: " + everyRoom);
      traffic.awaitReaders(lastSeqs, Duration.ofSeconds(60));
      assertTrue(traffic.readerReconnects() >= 1, "the dead node's reader reconnected elsewhere");
      Set<String> blinked = traffic.wentOfflineSince(killedAt);
      blinked.retainAll(traffic.reconnectedReaders());
      assertEquals(Set.of(), blinked,
          "readers whose node died came back within the offline grace: their rooms never saw them offline");
      // Readers are told of a user who closed cleanly, so the check above can fail. The close
      // comes as the restarted node takes its user shards back, so the user's entity may have
      // moved since the session registered. (With this cluster's 2 s renewals the session may
      // have registered with the moved entity before it closes, so this check need not reach
      // an entity that never knew the session: UserEntityRestartIT checks that close alone.)
      traffic.awaitCleanCloseSeenOffline(Duration.ofSeconds(30));
      Measured.print(scenario, "messages acknowledged (all found once, in order)", traffic.acks().size());
      Measured.print(scenario, "failed attempts retried, by code", traffic.failureCodes(0, Long.MAX_VALUE));
      Measured.print(scenario, "reader reconnects", traffic.readerReconnects());
    }
  }

  /**
   * The failover's time budget, step by step, as the survivors saw it: until the node is
   * down (its watchers' refused probes; for a process that did not exit, the failure detector
   * and the split-brain resolver), its removal, and then the shard's hand-over (sharding's
   * removal margin, allocation, recovery from the journal) until the first write sent after
   * the kill was acknowledged.
   */
  private static void printBudget(String scenario, MembershipWatch watch, long killedAt, Duration acknowledged) {
    long removed = watch.removedAt().orElseThrow(() -> new AssertionError("the killed node was never removed"));
    long down = watch.downAt().orElse(removed);
    Measured.print(scenario, "budget 1, kill -> down", Duration.ofNanos(down - killedAt));
    Measured.print(scenario, "budget 1a, kill -> first seen unreachable (failure detector)",
        watch.unreachableAt().isPresent() ? Duration.ofNanos(watch.unreachableAt().getAsLong() - killedAt) : "never, down before");
    Measured.print(scenario, "budget 2, down -> removed", Duration.ofNanos(removed - down));
    Measured.print(scenario, "budget 3, removed -> first write acknowledged (removal margin, hand-over, allocation, recovery)", acknowledged.minus(Duration.ofNanos(removed - killedAt)));
    Measured.print(scenario, "budget total, kill -> first write acknowledged", acknowledged);
  }
}
