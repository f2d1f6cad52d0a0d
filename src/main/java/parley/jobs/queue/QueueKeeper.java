package parley.jobs.queue;

import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import parley.jobs.JobSettings;

/**
 * Nudges every partition of every queue now and then, so each runs somewhere: after its node
 * fails, a partition starts on its new node within one interval even if nobody writes to it,
 * and the leases its dead node's workers held expire on time. One per node; a nudge to a
 * running partition only re-checks its deadlines.
 */
public final class QueueKeeper {

  private QueueKeeper() {}

  private enum Tick { INSTANCE }

  public static Behavior<Object> create(JobSettings settings) {
    return Behaviors.withTimers(timers -> {
      timers.startTimerWithFixedDelay(Tick.INSTANCE, java.time.Duration.ZERO, settings.partitionCheckInterval());
      return Behaviors.setup(context -> {
        ClusterSharding sharding = ClusterSharding.get(context.getSystem());
        return Behaviors.receiveMessage(tick -> {
          for (JobSettings.Queue queue : settings.queues().values()) {
            for (int p = 0; p < queue.partitions(); p++) {
              sharding.entityRefFor(QueuePartition.ENTITY_KEY, QueuePartition.entityId(queue.name(), p)).tell(new QueuePartition.Wake());
            }
          }
          return Behaviors.same();
        });
      });
    });
  }
}
