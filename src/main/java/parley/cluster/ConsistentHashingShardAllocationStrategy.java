package parley.cluster;

import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.stream.Collectors;

import org.apache.pekko.actor.ActorRef;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.Address;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.apache.pekko.dispatch.Futures;

import scala.collection.immutable.IndexedSeq;
import scala.concurrent.Future;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Places shards on cluster members with a consistent-hash ring ({@link HashRing}) over the
 * members that have a shard region, so that a member joining takes only its own share of the
 * shards and a member leaving hands on only the shards it held (design rule 2).
 *
 * <p>It owns two decisions of the shard coordinator: where a shard without a home starts
 * (its ring owner) and which shards a rebalance round moves (those not on their ring owner, at
 * most {@code maxSimultaneousRebalance} in flight at once). It keeps no state but a cached ring.
 *
 * <p>Members are named by address, e.g. {@code pekko://Parley@127.0.0.2:25520}, so every node
 * computes the same ring. A region on the coordinator's own node has a local path without a
 * host; the strategy learns this node's cluster address when the coordinator calls
 * {@link #start(ActorSystem)}.
 *
 * <p>Give each entity type its own instance:
 * {@code Entity.of(KEY, ctx -> ...).withAllocationStrategy(
 * new ConsistentHashingShardAllocationStrategy(10))}.
 */
public final class ConsistentHashingShardAllocationStrategy
    extends ShardCoordinator.AbstractShardAllocationStrategy
    implements ShardCoordinator.ActorSystemDependentAllocationStrategy {

  private final int virtualNodesPerMember;
  private final int maxSimultaneousRebalance;
  private volatile Function<ActorRef, Address> memberAddress;
  private volatile HashRing ring;

  /**
   * A strategy with the node's configured ring: {@code parley.cluster.virtual-nodes} and
   * {@code parley.cluster.max-simultaneous-rebalance}. Every entity type uses one of these.
   */
  public static ConsistentHashingShardAllocationStrategy configured(
      org.apache.pekko.actor.typed.ActorSystem<?> system) {
    var cluster = system.settings().config().getConfig("parley.cluster");
    return new ConsistentHashingShardAllocationStrategy(
        cluster.getInt("virtual-nodes"), cluster.getInt("max-simultaneous-rebalance"));
  }

  /** With {@link HashRing#DEFAULT_VIRTUAL_NODES} virtual nodes per member. */
  public ConsistentHashingShardAllocationStrategy(int maxSimultaneousRebalance) {
    this(HashRing.DEFAULT_VIRTUAL_NODES, maxSimultaneousRebalance);
  }

  public ConsistentHashingShardAllocationStrategy(
      int virtualNodesPerMember, int maxSimultaneousRebalance) {
    this(virtualNodesPerMember, maxSimultaneousRebalance, null);
  }

  /**
   * For tests: {@code memberAddress} names the member of each region, in place of the mapping
   * {@link #start(ActorSystem)} would build, so local test refs can stand for remote members.
   */
  ConsistentHashingShardAllocationStrategy(
      int virtualNodesPerMember,
      int maxSimultaneousRebalance,
      Function<ActorRef, Address> memberAddress) {
    if (virtualNodesPerMember < 1) {
      throw new IllegalArgumentException(
          "virtualNodesPerMember must be at least 1, was " + virtualNodesPerMember);
    }
    if (maxSimultaneousRebalance < 1) {
      throw new IllegalArgumentException(
          "maxSimultaneousRebalance must be at least 1, was " + maxSimultaneousRebalance);
    }
    this.virtualNodesPerMember = virtualNodesPerMember;
    this.maxSimultaneousRebalance = maxSimultaneousRebalance;
    this.memberAddress = memberAddress;
    this.ring = new HashRing(Set.of(), virtualNodesPerMember);
  }

  // ActorSystemDependentAllocationStrategy is private[pekko] in Scala but a public interface in
  // the bytecode, and the coordinator calls start(system) before any allocation: the one way a
  // strategy given to Entity.withAllocationStrategy learns the coordinator's node address.
  @Override
  public void start(ActorSystem system) {
    if (memberAddress == null) {
      Address self = Cluster.get(system).selfAddress();
      memberAddress =
          region -> {
            Address address = region.path().address();
            return address.hasLocalScope() ? self : address;
          };
    }
  }

  /**
   * The region of the shard's ring owner. The ring is built over the members that have a region
   * now, which is the same as walking the ring of all members and skipping to the next member
   * clockwise that has one: a member whose region is not registered yet, or is shutting down,
   * simply is not on the ring.
   */
  @Override
  public Future<ActorRef> allocateShard(
      ActorRef requester,
      String shardId,
      Map<ActorRef, IndexedSeq<String>> currentShardAllocations) {
    Map<String, ActorRef> regions = regionsByMember(currentShardAllocations.keySet());
    if (regions.isEmpty()) {
      return Futures.failed(
          new IllegalStateException("no shard region to allocate shard " + shardId + " to"));
    }
    return Futures.successful(regions.get(ringOver(regions.keySet()).owner(shardId)));
  }

  /**
   * The shards whose region is not their ring owner's, in shard id order, at most
   * {@code maxSimultaneousRebalance} minus those already moving. A shard on its owner never
   * moves, so a member joining only ever draws shards to itself.
   */
  @Override
  public Future<Set<String>> rebalance(
      Map<ActorRef, IndexedSeq<String>> currentShardAllocations, Set<String> rebalanceInProgress) {
    int budget = maxSimultaneousRebalance - rebalanceInProgress.size();
    if (budget <= 0) {
      return Futures.successful(Set.of());
    }
    HashRing members = ringOver(regionsByMember(currentShardAllocations.keySet()).keySet());
    TreeSet<String> misplaced = new TreeSet<>();
    currentShardAllocations.forEach(
        (region, shards) -> {
          String member = memberOf(region);
          for (String shard : CollectionConverters.asJava(shards)) {
            if (!rebalanceInProgress.contains(shard) && !members.owner(shard).equals(member)) {
              misplaced.add(shard);
            }
          }
        });
    return Futures.successful(
        misplaced.stream().limit(budget).collect(Collectors.toUnmodifiableSet()));
  }

  private Map<String, ActorRef> regionsByMember(Set<ActorRef> regions) {
    Map<String, ActorRef> byMember = new TreeMap<>();
    for (ActorRef region : regions) {
      // Two regions share an address only while a node restarted on the same host and port
      // and its old incarnation's region is not yet gone; either choice is transient, but it
      // must not depend on map iteration order.
      byMember.merge(memberOf(region), region, (a, b) -> a.compareTo(b) <= 0 ? a : b);
    }
    return byMember;
  }

  private String memberOf(ActorRef region) {
    Function<ActorRef, Address> addressOf = memberAddress;
    if (addressOf == null) {
      throw new IllegalStateException(
          "start(system) has not been called: hand this strategy to sharding"
              + " (Entity.withAllocationStrategy), whose coordinator starts it");
    }
    return addressOf.apply(region).toString();
  }

  /** Membership changes rarely, so the ring is rebuilt only when the set of members differs. */
  private HashRing ringOver(Set<String> members) {
    HashRing current = ring;
    if (!current.members().equals(members)) {
      current = new HashRing(members, virtualNodesPerMember);
      ring = current;
    }
    return current;
  }
}
