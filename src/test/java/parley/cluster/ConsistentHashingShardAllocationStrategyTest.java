package parley.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import org.apache.pekko.actor.ActorRef;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.Props;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.Cluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import com.typesafe.config.ConfigFactory;

import scala.collection.immutable.IndexedSeq;
import scala.concurrent.Future;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Drives the strategy the way the shard coordinator does: allocate each shard in turn, then ask
 * for a rebalance with the resulting map. Regions are real refs from test probes; the injected
 * mapping gives each one the address of a different cluster member.
 */
class ConsistentHashingShardAllocationStrategyTest {

  private static final List<String> SHARDS =
      IntStream.range(0, 1000).mapToObj(Integer::toString).toList();

  private static ActorTestKit testKit;
  private static ActorRef a;
  private static ActorRef b;
  private static ActorRef c;
  private static ActorRef d;
  private static Map<ActorRef, Address> memberOf;

  @BeforeAll
  static void startTestKit() {
    testKit =
        ActorTestKit.create(
            "AllocationTest",
            ConfigFactory.parseString("pekko.actor.provider = local\npekko.loglevel = WARNING"));
    a = region();
    b = region();
    c = region();
    d = region();
    memberOf =
        Map.of(
            a, new Address("pekko", "Parley", "127.0.0.1", 25520),
            b, new Address("pekko", "Parley", "127.0.0.2", 25520),
            c, new Address("pekko", "Parley", "127.0.0.3", 25520),
            d, new Address("pekko", "Parley", "127.0.0.4", 25520));
  }

  @AfterAll
  static void stopTestKit() {
    testKit.shutdownTestKit();
  }

  @Test
  void addingFourthMemberMovesAboutAQuarter() {
    ConsistentHashingShardAllocationStrategy strategy = strategy(SHARDS.size());
    Map<ActorRef, List<String>> allocations = allocateAll(strategy, List.of(a, b, c), SHARDS);
    allocations.put(d, new ArrayList<>());

    Set<String> moved = now(strategy.rebalance(asScalaValues(allocations), Set.of()));

    // A quarter is the new member's fair share; 128 virtual nodes keep its actual share within
    // a few percent of that, so 0.15..0.35 is a loose bound that still rules out a reshuffle.
    double fraction = moved.size() / (double) SHARDS.size();
    assertTrue(fraction >= 0.15 && fraction <= 0.35, "moved fraction " + fraction);
    for (String shard : moved) {
      deallocate(allocations, shard);
      assertEquals(d, allocate(strategy, allocations, shard), "shard " + shard + " moved to");
    }
    assertEquals(Set.of(), now(strategy.rebalance(asScalaValues(allocations), Set.of())));
  }

  @Test
  void removingAMemberMovesOnlyItsShards() {
    ConsistentHashingShardAllocationStrategy strategy = strategy(SHARDS.size());
    Map<ActorRef, List<String>> allocations = allocateAll(strategy, List.of(a, b, c, d), SHARDS);
    // The coordinator drops a terminated region with its shards, which are then asked for again.
    List<String> orphans = allocations.remove(b);

    assertEquals(Set.of(), now(strategy.rebalance(asScalaValues(allocations), Set.of())));
    Set<ActorRef> heirs = new HashSet<>();
    for (String shard : orphans) {
      heirs.add(allocate(strategy, allocations, shard));
    }
    // Virtual nodes spread the leaver's shards over every member that stayed, not onto one.
    assertEquals(Set.of(a, c, d), heirs);
  }

  @Test
  void twoIndependentStrategiesAllocateEveryShardAlike() {
    ConsistentHashingShardAllocationStrategy one = strategy(10);
    ConsistentHashingShardAllocationStrategy other = strategy(10);
    Map<ActorRef, List<String>> regions = new LinkedHashMap<>();
    Map<ActorRef, List<String>> sameRegionsOtherOrder = new LinkedHashMap<>();
    for (ActorRef region : List.of(a, b, c, d)) {
      regions.put(region, new ArrayList<>());
    }
    for (ActorRef region : List.of(d, c, b, a)) {
      sameRegionsOtherOrder.put(region, new ArrayList<>());
    }

    for (String shard : SHARDS) {
      assertEquals(
          allocate(one, regions, shard), allocate(other, sameRegionsOtherOrder, shard), shard);
    }
  }

  @Test
  void rebalanceMovesAtMostTheLimitLessShardsInProgress() {
    ConsistentHashingShardAllocationStrategy strategy = strategy(10);
    Map<ActorRef, List<String>> allocations = allocateAll(strategy, List.of(a, b, c), SHARDS);
    allocations.put(d, new ArrayList<>());
    Set<String> misplaced =
        now(strategy(SHARDS.size()).rebalance(asScalaValues(allocations), Set.of()));
    Set<String> inProgress = misplaced.stream().sorted().limit(3).collect(Collectors.toSet());

    Set<String> moved = now(strategy.rebalance(asScalaValues(allocations), inProgress));

    assertEquals(10 - 3, moved.size());
    assertTrue(misplaced.containsAll(moved), "only misplaced shards move: " + moved);
    assertTrue(moved.stream().noneMatch(inProgress::contains), "in progress: " + moved);
  }

  @Test
  void rebalanceMovesNothingWhileTheLimitIsTakenByShardsInProgress() {
    ConsistentHashingShardAllocationStrategy strategy = strategy(10);
    Map<ActorRef, List<String>> allocations = allocateAll(strategy, List.of(a, b, c), SHARDS);
    allocations.put(d, new ArrayList<>());
    Set<String> inProgress = new HashSet<>(SHARDS.subList(0, 10));

    assertEquals(Set.of(), now(strategy.rebalance(asScalaValues(allocations), inProgress)));
  }

  @Test
  void localRegionStandsForThisNodesClusterAddress() throws Exception {
    ActorSystem system =
        ActorSystem.create(
            "Parley",
            ConfigFactory.parseString(
                """
                pekko.loglevel = WARNING
                pekko.actor.provider = cluster
                pekko.remote.artery.canonical.hostname = 127.0.0.1
                pekko.remote.artery.canonical.port = 0
                """));
    try {
      ActorRef local = system.actorOf(Props.empty(), "region");
      String remote1 = "pekko://Parley@127.0.0.2:25520";
      String remote2 = "pekko://Parley@127.0.0.3:25520";
      Map<ActorRef, List<String>> regions = new LinkedHashMap<>();
      regions.put(local, new ArrayList<>());
      regions.put(remoteRegion(system, remote1), new ArrayList<>());
      regions.put(remoteRegion(system, remote2), new ArrayList<>());
      ConsistentHashingShardAllocationStrategy strategy =
          new ConsistentHashingShardAllocationStrategy(10);
      strategy.start(system);
      String self = Cluster.get(system).selfAddress().toString();
      HashRing ring = new HashRing(List.of(self, remote1, remote2));

      for (String shard : SHARDS) {
        ActorRef region = allocate(strategy, regions, shard);
        String member = region.equals(local) ? self : region.path().address().toString();
        assertEquals(ring.owner(shard), member, "shard " + shard);
      }
    } finally {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  private static ActorRef region() {
    return Adapter.toClassic(testKit.createTestProbe().getRef());
  }

  private static ActorRef remoteRegion(ActorSystem system, String member) {
    // Resolving a remote path makes a ref with that address without connecting to it.
    return ((ExtendedActorSystem) system)
        .provider()
        .resolveActorRef(member + "/system/sharding/Room");
  }

  private static ConsistentHashingShardAllocationStrategy strategy(int maxSimultaneousRebalance) {
    return new ConsistentHashingShardAllocationStrategy(
        HashRing.DEFAULT_VIRTUAL_NODES, maxSimultaneousRebalance, memberOf::get);
  }

  private static Map<ActorRef, List<String>> allocateAll(
      ConsistentHashingShardAllocationStrategy strategy,
      List<ActorRef> regions,
      List<String> shards) {
    Map<ActorRef, List<String>> allocations = new LinkedHashMap<>();
    for (ActorRef region : regions) {
      allocations.put(region, new ArrayList<>());
    }
    for (String shard : shards) {
      allocate(strategy, allocations, shard);
    }
    return allocations;
  }

  /** Asks for the shard's home and records it there, as the coordinator does. */
  private static ActorRef allocate(
      ConsistentHashingShardAllocationStrategy strategy,
      Map<ActorRef, List<String>> allocations,
      String shard) {
    ActorRef requester = allocations.keySet().iterator().next();
    ActorRef home = now(strategy.allocateShard(requester, shard, asScalaValues(allocations)));
    allocations.get(home).add(shard);
    return home;
  }

  private static void deallocate(Map<ActorRef, List<String>> allocations, String shard) {
    allocations.values().forEach(shards -> shards.remove(shard));
  }

  private static Map<ActorRef, IndexedSeq<String>> asScalaValues(
      Map<ActorRef, List<String>> allocations) {
    Map<ActorRef, IndexedSeq<String>> converted = new LinkedHashMap<>();
    allocations.forEach(
        (region, shards) ->
            converted.put(region, CollectionConverters.asScala(shards).toIndexedSeq()));
    return converted;
  }

  /** The strategy answers synchronously, so the future is already complete. */
  private static <T> T now(Future<T> future) {
    assertTrue(future.isCompleted(), "the strategy answered asynchronously");
    return future.value().get().get();
  }
}
