package parley.ops;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingQuery;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * Counts this node's shards and active entities of every sharded type for the metrics, and
 * notices shards that left this node since the last count. A shard leaves a region only by
 * being handed off (rebalance or scale-in): passivation stops entities, not shards.
 */
final class ShardPoller {

  private ShardPoller() {}

  interface Command {}

  private record Poll() implements Command {}

  /** This node's region of {@code type} answered; {@code state} is null if it did not in time. */
  private record Counted(String type, ShardRegion.CurrentShardRegionState state) implements Command {}

  static Behavior<Command> create(ParleyMetrics metrics, OpsSettings settings) {
    return Behaviors.setup(
        context ->
            Behaviors.withTimers(
                timers -> {
                  timers.startTimerWithFixedDelay(new Poll(), settings.pollInterval());
                  ActorRef<ClusterShardingQuery> shardState =
                      ClusterSharding.get(context.getSystem()).shardState();
                  Duration timeout = settings.pollInterval();
                  Map<String, Set<String>> previous = new HashMap<>();
                  return Behaviors.receive(Command.class)
                      .onMessage(
                          Poll.class,
                          poll -> {
                            // One ask per type: the answer does not say which type it counts.
                            for (EntityTypeKey<?> key : ShardDistribution.TYPES) {
                              context.ask(
                                  ShardRegion.CurrentShardRegionState.class,
                                  shardState,
                                  timeout,
                                  replyTo -> new GetShardRegionState(key, replyTo),
                                  (state, failure) -> new Counted(key.name(), state));
                            }
                            return Behaviors.same();
                          })
                      .onMessage(
                          Counted.class,
                          counted -> {
                            if (counted.state() == null) {
                              return Behaviors.same();
                            }
                            Set<String> shards = new HashSet<>();
                            int entities = 0;
                            for (ShardRegion.ShardState shard : counted.state().getShards()) {
                              shards.add(shard.shardId());
                              entities += shard.getEntityIds().size();
                            }
                            Set<String> before = previous.put(counted.type(), shards);
                            int departed = 0;
                            if (before != null) {
                              for (String shard : before) {
                                if (!shards.contains(shard)) {
                                  departed++;
                                }
                              }
                            }
                            metrics.shardsCounted(counted.type(), shards.size(), entities, departed);
                            return Behaviors.same();
                          })
                      .build();
                }));
  }
}
