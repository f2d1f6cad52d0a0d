package parley.jobs;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigObject;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The job queues and their limits, read once at start-up from {@code parley.jobs}
 * (conf/jobs.conf).
 */
public record JobSettings(
    Map<String, Queue> queues,
    int maxDataBytes,
    int maxProgressBytes,
    int maxResultBytes,
    Duration defaultLease,
    Duration maxLease,
    int maxFetch,
    Duration maxFetchWait,
    double submitRatePerSecond,
    double submitRateBurst,
    String workerKey,
    Duration partitionCheckInterval,
    int snapshotEvery,
    int maxBatch) {

  /** What a queue name may be: lower-case letters, digits, dot, dash and underscore, 1-64. */
  public static final Pattern QUEUE_NAME = Pattern.compile("[a-z0-9._-]{1,64}");

  /**
   * One queue's options.
   *
   * @param concurrency jobs running at once across the cluster, 0 for no limit
   * @param ratePerSecond jobs started per second across the cluster, 0 for no limit
   * @param keepCompleted completed jobs kept per partition, the newest
   * @param keepCompletedMs how long a completed job is kept at least, 0 for no age limit
   */
  public record Queue(
      String name,
      int partitions,
      int concurrency,
      double ratePerSecond,
      int attempts,
      Job.Backoff backoff,
      int keepCompleted,
      int keepFailed,
      long keepCompletedMs,
      long keepFailedMs,
      boolean usersMaySubmit,
      boolean serverMaySubmit) {

    public Queue {
      if (!QUEUE_NAME.matcher(name).matches()) {
        throw new IllegalArgumentException("parley.jobs.queues: \"" + name + "\" is not a queue name ([a-z0-9._-], 1-64)");
      }
      if (partitions < 1 || partitions > 1024) {
        throw new IllegalArgumentException("parley.jobs.queues." + name + ".partitions must be 1-1024");
      }
      if (concurrency != 0 && concurrency < partitions) {
        throw new IllegalArgumentException(
            "parley.jobs.queues." + name + ".concurrency must be 0 or at least its partitions (" + partitions
                + "): the limit is shared among them");
      }
      if (keepCompletedMs < 0 || keepFailedMs < 0) {
        throw new IllegalArgumentException("parley.jobs.queues." + name + ".keep-completed-for and keep-failed-for must be 0 or more");
      }
      if (attempts < 1 || attempts > 100) {
        throw new IllegalArgumentException("parley.jobs.queues." + name + ".attempts must be 1-100");
      }
    }

    /** Partition {@code p}'s share of a limit shared among the partitions: exact in total. */
    public int share(int limit, int p) {
      return limit / partitions + (p < limit % partitions ? 1 : 0);
    }
  }

  public Optional<Queue> queue(String name) {
    return Optional.ofNullable(queues.get(name));
  }

  public boolean workersEnabled() {
    return !workerKey.isEmpty();
  }

  public static JobSettings from(Config root) {
    Config c = root.getConfig("parley.jobs");
    Config defaults = c.getConfig("queue-defaults");
    Map<String, Queue> queues = new LinkedHashMap<>();
    ConfigObject declared = c.getObject("queues");
    for (String name : declared.keySet()) {
      Config q = declared.toConfig().getConfig("\"" + name + "\"").withFallback(defaults);
      List<String> submitBy = q.getStringList("submit-by");
      queues.put(name, new Queue(
          name,
          q.getInt("partitions"),
          q.getInt("concurrency"),
          q.getDouble("rate-per-second"),
          q.getInt("attempts"),
          backoff(q.getConfig("backoff"), "parley.jobs.queues." + name + ".backoff"),
          q.getInt("keep-completed"),
          q.getInt("keep-failed"),
          q.getDuration("keep-completed-for").toMillis(),
          q.getDuration("keep-failed-for").toMillis(),
          submitBy.contains("users"),
          submitBy.contains("server")));
    }
    return new JobSettings(
        Map.copyOf(queues),
        (int) c.getBytes("max-data-size").longValue(),
        (int) c.getBytes("max-progress-size").longValue(),
        (int) c.getBytes("max-result-size").longValue(),
        c.getDuration("default-lease"),
        c.getDuration("max-lease"),
        c.getInt("max-fetch"),
        c.getDuration("max-fetch-wait"),
        c.getDouble("submit-rate-per-second"),
        c.getDouble("submit-rate-burst"),
        c.getString("worker-key"),
        c.getDuration("partition-check-interval"),
        c.getInt("snapshot-every"),
        c.getInt("max-batch"));
  }

  private static Job.Backoff backoff(Config c, String where) {
    String type = c.getString("type");
    if (!type.equals("fixed") && !type.equals("exponential")) {
      throw new IllegalArgumentException(where + ".type must be fixed or exponential");
    }
    double jitter = c.getDouble("jitter");
    if (jitter < 0 || jitter > 1) {
      throw new IllegalArgumentException(where + ".jitter must be 0-1");
    }
    return new Job.Backoff(type, c.getDuration("delay").toMillis(), jitter);
  }
}
