package parley.jobs.queue;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.ToIntFunction;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import parley.ops.ParleyMetrics;

/**
 * The job queues' metrics of this node, in its Prometheus registry ({@code /metrics}), labelled
 * by queue.
 *
 * <p>Each node reports the partitions it hosts, so summing a metric over the nodes
 * ({@code sum by (queue)}) gives the queue: a partition runs on one node at a time, and a node
 * stops reporting a partition when it stops (moved away, or the node leaves). Counters count
 * transitions once they are journaled, on the node that journaled them; the gauges are read
 * from each hosted partition's latest state when Prometheus scrapes, so a partition pays one
 * map write per change and never counts anything itself.
 *
 * <ul>
 *   <li>{@code parley_jobs{queue,state}}: jobs {@code waiting}, {@code delayed}, {@code active}
 *       in the partitions this node hosts
 *   <li>{@code parley_job_partitions{queue}}: partitions of the queue running on this node
 *   <li>{@code parley_jobs_submitted_total}, {@code _leased_total}, {@code _completed_total},
 *       {@code _retried_total} (an attempt failed, another follows), {@code _failed_total} (failed
 *       for good), {@code _cancelled_total}
 *   <li>{@code parley_jobs_lease_expiries_total{queue,reason}}: attempts ended by their lease
 *       running out ({@code lease_expired}) or by the job's timeout ({@code timeout})
 *   <li>{@code parley_persist_seconds{entity="jobs"}}: the partitions' journal writes (histogram)
 *   <li>{@code parley_jobs_pickup_seconds{queue}}: histogram from when a job could first run
 *       (its submission, or the end of its delay or backoff) to its lease
 * </ul>
 */
public final class QueueMetrics implements Extension {

  /** Pickup buckets: an idle worker takes a job in milliseconds; a backlog makes it minutes. */
  private static final Duration[] PICKUP_BUCKETS = {
    Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofMillis(5), Duration.ofMillis(10),
    Duration.ofMillis(25), Duration.ofMillis(50), Duration.ofMillis(100), Duration.ofMillis(250),
    Duration.ofMillis(500), Duration.ofSeconds(1), Duration.ofMillis(2500), Duration.ofSeconds(5),
    Duration.ofSeconds(10), Duration.ofSeconds(30), Duration.ofMinutes(1), Duration.ofMinutes(5)
  };

  private final ParleyMetrics node;
  private final MeterRegistry registry;
  private final Map<String, Meters> queues = new ConcurrentHashMap<>();
  /** Partition entity id to its latest state, for the partitions running on this node. */
  private final Map<String, Hosted> hosted = new ConcurrentHashMap<>();

  private record Hosted(String queue, QueuePartition.State state) {}

  /** One queue's meters. */
  final class Meters {
    final Counter submitted;
    final Counter leased;
    final Counter completed;
    final Counter retried;
    final Counter failed;
    final Counter cancelled;
    final Counter leaseExpired;
    final Counter timedOut;
    final Timer pickup;

    private Meters(String queue) {
      submitted = counter("parley.jobs.submitted", "Jobs submitted (journaled)", queue);
      leased = counter("parley.jobs.leased", "Jobs leased to a worker (each attempt)", queue);
      completed = counter("parley.jobs.completed", "Jobs completed by a worker", queue);
      retried = counter("parley.jobs.retried", "Attempts that failed with another attempt to follow", queue);
      failed = counter("parley.jobs.failed", "Jobs failed for good (no attempt left)", queue);
      cancelled = counter("parley.jobs.cancelled", "Jobs cancelled before they finished", queue);
      leaseExpired = Counter.builder("parley.jobs.lease.expiries")
          .description("Attempts ended because the worker did not report in time")
          .tags("queue", queue, "reason", QueuePartition.LEASE_EXPIRED)
          .register(registry);
      timedOut = Counter.builder("parley.jobs.lease.expiries")
          .description("Attempts ended because the worker did not report in time")
          .tags("queue", queue, "reason", QueuePartition.TIMED_OUT)
          .register(registry);
      pickup = Timer.builder("parley.jobs.pickup")
          .description("From when a job could run (submitted, or its delay or backoff over) to its lease")
          .tag("queue", queue)
          .serviceLevelObjectives(PICKUP_BUCKETS)
          .register(registry);
      gauge(queue, "waiting", c -> c.waiting());
      gauge(queue, "delayed", c -> c.delayed());
      gauge(queue, "active", c -> c.active());
      Gauge.builder("parley.job.partitions", () -> hosted.values().stream().filter(h -> h.queue().equals(queue)).count())
          .description("Partitions of the queue running on this node")
          .tag("queue", queue)
          .register(registry);
    }

    /** A lease of a job that could run from {@code readyAt} (epoch ms), granted at {@code at}. */
    void pickedUp(long readyAt, long at) {
      leased.increment();
      pickup.record(Math.max(0, at - readyAt), TimeUnit.MILLISECONDS);
    }

    private Counter counter(String name, String description, String queue) {
      return Counter.builder(name).description(description).tag("queue", queue).register(registry);
    }

    private void gauge(String queue, String state, ToIntFunction<QueuePartition.Counts> count) {
      Gauge.builder("parley.jobs", () -> {
            long now = System.currentTimeMillis();
            long sum = 0;
            for (Hosted h : hosted.values()) {
              if (h.queue().equals(queue)) {
                sum += count.applyAsInt(h.state().counts(now));
              }
            }
            return sum;
          })
          .description("Jobs by state in the partitions this node hosts")
          .tags("queue", queue, "state", state)
          .register(registry);
    }
  }

  private QueueMetrics(ParleyMetrics node) {
    this.node = node;
    this.registry = node.registry();
  }

  public static QueueMetrics get(ActorSystem<?> system) {
    return Id.INSTANCE.apply(system);
  }

  Meters of(String queue) {
    return queues.computeIfAbsent(queue, Meters::new);
  }

  /** A partition's journal write that took {@code nanos}: {@code parley_persist_seconds{entity="jobs"}}. */
  void journaled(long nanos) {
    node.persisted(QueuePartition.ENTITY_KEY.name(), nanos, 0);
  }

  /** Partition {@code entityId} of {@code queue} runs here and is now in {@code state}. */
  void hosting(String entityId, String queue, QueuePartition.State state) {
    hosted.put(entityId, new Hosted(queue, state));
  }

  /** Partition {@code entityId} stopped on this node. */
  void left(String entityId) {
    hosted.remove(entityId);
  }

  private static final class Id extends ExtensionId<QueueMetrics> {
    static final Id INSTANCE = new Id();

    @Override
    public QueueMetrics createExtension(ActorSystem<?> system) {
      return new QueueMetrics(ParleyMetrics.get(system));
    }
  }
}
