package parley.jobs.export;

import com.typesafe.config.Config;
import java.time.Duration;
import parley.jobs.JobSettings;

/**
 * The built-in export of a room's history, read once at start-up from
 * {@code parley.jobs.export} (conf/jobs.conf).
 *
 * @param queue the queue {@code export_room} submits to (declared under {@code parley.jobs.queues})
 * @param workers export workers per node, each running one export at a time (0: none)
 * @param pageSize timeline events read from the room per request
 * @param chunkBytes about how much of the export one Cassandra row holds
 * @param progressInterval the least time between two progress reports of one export
 * @param lease how long each attempt is leased for (extended as the export goes on)
 * @param retention how long export rows live (their Cassandra TTL)
 * @param keyspace the journal keyspace, which holds the {@code exports} table
 */
public record ExportSettings(
    JobSettings.Queue queue,
    int workers,
    int pageSize,
    int chunkBytes,
    Duration progressInterval,
    Duration lease,
    Duration retention,
    String keyspace) {

  public static ExportSettings from(Config root, JobSettings jobs) {
    Config c = root.getConfig("parley.jobs.export");
    String name = c.getString("queue");
    JobSettings.Queue queue = jobs.queue(name).orElseThrow(() -> new IllegalArgumentException(
        "parley.jobs.export.queue: \"" + name + "\" is not declared under parley.jobs.queues"));
    int workers = c.getInt("workers");
    int pageSize = c.getInt("page-size");
    long chunk = c.getBytes("chunk-size");
    Duration lease = c.getDuration("lease");
    if (workers < 0 || workers > 64) {
      throw new IllegalArgumentException("parley.jobs.export.workers must be 0-64");
    }
    if (pageSize < 1 || pageSize > 5000) {
      throw new IllegalArgumentException("parley.jobs.export.page-size must be 1-5000");
    }
    if (chunk < 1024 || chunk > 1024 * 1024) {
      throw new IllegalArgumentException("parley.jobs.export.chunk-size must be 1 KiB-1 MiB");
    }
    if (lease.compareTo(jobs.maxLease()) > 0 || lease.toMillis() < 1000) {
      throw new IllegalArgumentException("parley.jobs.export.lease must be 1 s up to parley.jobs.max-lease");
    }
    return new ExportSettings(
        queue,
        workers,
        pageSize,
        (int) chunk,
        c.getDuration("progress-interval"),
        lease,
        c.getDuration("retention"),
        root.getString("parley.cassandra.journal-keyspace"));
  }
}
