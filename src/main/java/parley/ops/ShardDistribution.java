package parley.ops;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.sharding.typed.GetClusterShardingStats;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import parley.chat.room.RoomEntity;
import parley.chat.user.UserEntity;
import parley.cluster.HashRing;
import parley.collab.document.DocumentEntity;
import parley.jobs.queue.QueuePartition;

/**
 * Where the cluster's shards are: for every sharded type, which node hosts which shards and
 * how many active entities each holds, asked of every node's shard region. Each shard is also
 * checked against its owner on the consistent-hash ring over the nodes that answered:
 * {@code misplaced} counts shards a rebalance has yet to move (0 once the cluster settled).
 *
 * <pre>
 * {"node":"pekko://Parley@127.0.0.2:25520",
 *  "types":{"room":{"shards":41,"entities":57,"misplaced":0,
 *                   "nodes":{"pekko://Parley@127.0.0.2:25520":{"shards":14,"entities":19,
 *                                                              "shardEntities":{"7":2,…}},…},
 *                   "unanswered":[]},…}}
 * </pre>
 */
final class ShardDistribution {

  /** Every sharded entity type of a node. */
  static final List<EntityTypeKey<?>> TYPES =
      List.of(RoomEntity.ENTITY_KEY, UserEntity.ENTITY_KEY, DocumentEntity.ENTITY_KEY, QueuePartition.ENTITY_KEY);

  private static final ObjectMapper JSON = new ObjectMapper();

  private final ActorSystem<?> system;
  private final OpsSettings settings;
  private final Address self;
  private final int numberOfShards;

  ShardDistribution(ActorSystem<?> system, OpsSettings settings) {
    this.system = system;
    this.settings = settings;
    this.self = Cluster.get(system).selfAddress();
    this.numberOfShards = system.settings().config().getInt("pekko.cluster.sharding.number-of-shards");
  }

  static Optional<EntityTypeKey<?>> type(String name) {
    return TYPES.stream().filter(k -> k.name().equals(name)).findFirst();
  }

  /** The distribution of every type, as JSON. */
  CompletionStage<String> all() {
    List<CompletableFuture<ObjectNode>> types = new ArrayList<>();
    for (EntityTypeKey<?> key : TYPES) {
      types.add(stats(key).thenApply(this::describe).toCompletableFuture());
    }
    return CompletableFuture.allOf(types.toArray(CompletableFuture[]::new))
        .thenApply(
            done -> {
              ObjectNode root = JSON.createObjectNode();
              root.put("node", self.toString());
              ObjectNode byType = root.putObject("types");
              for (int i = 0; i < TYPES.size(); i++) {
                byType.set(TYPES.get(i).name(), types.get(i).join());
              }
              return root.toString();
            });
  }

  /** The shard of one entity and the node that hosts that shard now (null if none yet). */
  CompletionStage<String> entity(EntityTypeKey<?> key, String entityId) {
    String shard = ShardRegion.HashCodeMessageExtractor$.MODULE$.shardId(entityId, numberOfShards);
    return stats(key)
        .thenApply(
            stats -> {
              ObjectNode answer = JSON.createObjectNode();
              answer.put("type", key.name());
              answer.put("entity", entityId);
              answer.put("shard", shard);
              answer.putNull("node");
              stats
                  .getRegions()
                  .forEach(
                      (address, region) -> {
                        if (region.getStats().containsKey(shard)) {
                          answer.put("node", memberName(address));
                        }
                      });
              return answer.toString();
            });
  }

  private CompletionStage<ShardRegion.ClusterShardingStats> stats(EntityTypeKey<?> key) {
    return AskPattern.ask(
        ClusterSharding.get(system).shardState(),
        replyTo -> new GetClusterShardingStats(key, settings.statsTimeout(), replyTo),
        settings.statsTimeout().plusSeconds(1),
        system.scheduler());
  }

  private ObjectNode describe(ShardRegion.ClusterShardingStats stats) {
    Map<String, ShardRegion.ShardRegionStats> regions = new TreeMap<>();
    stats.getRegions().forEach((address, region) -> regions.put(memberName(address), region));
    HashRing ring = regions.isEmpty() ? null : new HashRing(regions.keySet(), settings.virtualNodes());

    ObjectNode type = JSON.createObjectNode();
    ObjectNode nodes = JSON.createObjectNode();
    TreeSet<String> unanswered = new TreeSet<>();
    int shards = 0;
    int entities = 0;
    int misplaced = 0;
    for (Map.Entry<String, ShardRegion.ShardRegionStats> region : regions.entrySet()) {
      ObjectNode node = nodes.putObject(region.getKey());
      ObjectNode shardEntities = JSON.createObjectNode();
      int nodeEntities = 0;
      for (Map.Entry<String, Object> shard : new TreeMap<>(region.getValue().getStats()).entrySet()) {
        int count = ((Number) shard.getValue()).intValue();
        shardEntities.put(shard.getKey(), count);
        nodeEntities += count;
        if (!ring.owner(shard.getKey()).equals(region.getKey())) {
          misplaced++;
        }
      }
      unanswered.addAll(region.getValue().getFailed());
      node.put("shards", shardEntities.size());
      node.put("entities", nodeEntities);
      node.set("shardEntities", shardEntities);
      shards += shardEntities.size();
      entities += nodeEntities;
    }
    type.put("shards", shards);
    type.put("entities", entities);
    type.put("misplaced", misplaced);
    type.set("nodes", nodes);
    var failed = type.putArray("unanswered");
    unanswered.forEach(failed::add);
    return type;
  }

  /** The local region's address has no host; name it as the other nodes (and the ring) do. */
  private String memberName(Address address) {
    return (address.hasLocalScope() ? self : address).toString();
  }
}
