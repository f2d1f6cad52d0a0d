package parley.bench;

import com.datastax.oss.driver.api.core.ConsistencyLevel;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.AsyncResultSet;
import com.datastax.oss.driver.api.core.cql.BoundStatement;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.uuid.Uuids;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The floor under an open whose user entity must be started: what Cassandra alone costs to
 * start {@code --count} entities, {@code --concurrency} at a time, asked by a raw driver loop
 * with no node at all. It asks what the journal plugin (pekko-persistence-cassandra 1.1.0, with
 * deletes, tags and the all-persistence-ids table off, as conf/persistence.conf has them) asks
 * on a recovery, in the same order and at the same consistency, against tables of the
 * journal's and the snapshot store's own shape:
 *
 * <ul>
 *   <li>{@code first-time}: the latest snapshot's metadata (none), the highest sequence number
 *       in partition 0 and then 1 (both empty: the plugin looks one partition past an empty
 *       one), then the entity's first event written, as a user's first session journals its
 *       first last-seen;
 *   <li>{@code returning}: the same entities again: the snapshot's metadata (none), the highest
 *       sequence number in partitions 0, 1 and 2 (0 has the event), then the replay: the
 *       highest deleted seq from the metadata table (read even with deletes off) and partition 0.
 * </ul>
 *
 * <p>Each row has {@code reads_per_recovery} and {@code writes_per_recovery} as Cassandra
 * counted them ({@code system_views}), to be set beside the same columns of {@code connections}
 * with {@code --cassandra}: the node's opens must ask what this loop asks, or the floor is not
 * theirs. {@code storage_ms_per_recovery} is Cassandra's CPU per recovery ({@code --storage-pid}).
 */
final class Recoveries implements Scenario {

  @Override
  public List<Result> run(Args args) throws Exception {
    int count = args.integer("count", 5000);
    int concurrency = args.integer("concurrency", 32);
    int warmup = args.integer("warmup", 5000);
    String cassandra = args.string("cassandra", "127.0.0.1:39142");
    String datacenter = args.string("datacenter", "datacenter1");
    String replication = args.string("replication", "{'class': 'SimpleStrategy', 'replication_factor': 1}");
    String run = args.runId();
    Usage usage = Usage.from(args);
    args.requireAllUsed();

    List<Map<String, Object>> rows = new ArrayList<>();
    List<String> notes = new ArrayList<>();
    try (CqlSession session = RawCassandra.session(cassandra, datacenter)) {
      Statements statements = Statements.prepare(session, replication);
      // As the opens do: the same paths run before they are timed, so Cassandra's JIT has
      // compiled them (a first round ran at a third of the rate of the next).
      System.err.printf("recoveries: warming up with %d first-time and returning entities%n", warmup);
      statements.round("rw-" + run, warmup, concurrency, true);
      statements.round("rw-" + run, warmup, concurrency, false);
      usage.awaitQuiet(0.15, Duration.ofSeconds(30));
      for (boolean firstTime : new boolean[] {true, false}) {
        String who = firstTime ? "first-time" : "returning";
        System.err.printf("recoveries: %d %s entities, %d at a time%n", count, who, concurrency);
        Map<String, long[]> before = RawCassandra.served(session);
        Usage.Window window = usage.start();
        long started = System.nanoTime();
        long failed = statements.round("rr-" + run, count, concurrency, firstTime);
        double seconds = (System.nanoTime() - started) / 1e9;
        Map<String, Object> used = window.stop();
        Map<String, long[]> served = RawCassandra.since(before, RawCassandra.served(session));

        Map<String, Object> row = new LinkedHashMap<>();
        row.put("who", who);
        row.put("recoveries", count);
        row.put("concurrency", concurrency);
        row.put("recoveries_per_s", Numbers.round(count / seconds, 0));
        long[] total = RawCassandra.total(served);
        row.put("reads_per_recovery", Numbers.round((double) total[0] / count, 2));
        row.put("writes_per_recovery", Numbers.round((double) total[1] / count, 2));
        row.putAll(used);
        if (used.get("storage_cpu_pct") instanceof Number cpu) {
          // % of one core over recoveries/s: ms of Cassandra CPU per recovery.
          row.put("storage_ms_per_recovery", Numbers.round(cpu.doubleValue() * 10 * seconds / count, 2));
        }
        row.put("failed", failed);
        rows.add(row);
        if (failed > 0) {
          notes.add(failed + " " + who + " recoveries failed");
        }
        usage.awaitQuiet(0.15, Duration.ofSeconds(30));
      }
    }
    return List.of(new Result("recoveries", "cassandra", rows, notes));
  }

  /** The plugin's statements, prepared on the bench's tables. */
  private record Statements(
      CqlSession session,
      PreparedStatement snapshotMetadata,
      PreparedStatement highestSequenceNr,
      PreparedStatement messages,
      PreparedStatement deletedTo,
      PreparedStatement insert,
      ByteBuffer event) {

    static Statements prepare(CqlSession session, String replication) throws IOException {
      RawCassandra.createTable(session, replication, "journal.cql", "parley_journal.messages");
      RawCassandra.createTable(session, replication, "snapshot.cql", "parley_snapshot.snapshots");
      // The replay reads the highest deleted seq from this table even with deletes off.
      RawCassandra.createTable(session, replication, "journal.cql", "parley_journal.metadata");
      String ks = RawCassandra.KEYSPACE;
      // About what a LastSeenRecorded event serializes to (CBOR: the user id and an instant).
      byte[] bytes = new byte[40];
      ThreadLocalRandom.current().nextBytes(bytes);
      return new Statements(
          session,
          session.prepare("SELECT persistence_id, sequence_nr, timestamp FROM " + ks + ".snapshots WHERE"
              + " persistence_id = ? AND sequence_nr <= ? AND sequence_nr >= ? LIMIT 3"),
          session.prepare("SELECT sequence_nr FROM " + ks + ".messages WHERE persistence_id = ? AND"
              + " partition_nr = ? ORDER BY sequence_nr DESC LIMIT 1"),
          session.prepare("SELECT * FROM " + ks + ".messages WHERE persistence_id = ? AND partition_nr = ?"
              + " AND sequence_nr >= ? AND sequence_nr <= ?"),
          session.prepare("SELECT deleted_to FROM " + ks + ".metadata WHERE persistence_id = ?"),
          session.prepare("INSERT INTO " + ks + ".messages (persistence_id, partition_nr, sequence_nr,"
              + " timestamp, timebucket, writer_uuid, ser_id, ser_manifest, event_manifest, event, tags)"
              + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
          ByteBuffer.wrap(bytes));
    }

    /**
     * Recovers {@code count} entities {@code prefix-<i>}, {@code concurrency} at a time; each
     * recovery's queries run one after another, as the plugin's do. Returns how many failed.
     */
    long round(String prefix, int count, int concurrency, boolean firstTime) throws InterruptedException {
      Semaphore slots = new Semaphore(concurrency);
      AtomicLong failed = new AtomicLong();
      for (int i = 0; i < count; i++) {
        slots.acquire();
        String pid = "user|" + prefix + "-" + i;
        recover(pid, firstTime).whenComplete((done, failure) -> {
          if (failure != null) {
            failed.incrementAndGet();
          }
          slots.release();
        });
      }
      if (!slots.tryAcquire(concurrency, 60, TimeUnit.SECONDS)) {
        throw new IllegalStateException("recoveries still running after 60 s");
      }
      return failed.get();
    }

    private CompletionStage<?> recover(String pid, boolean firstTime) {
      return execute(snapshotMetadata.bind(pid, Long.MAX_VALUE, 0L).setConsistencyLevel(ConsistencyLevel.ONE))
          .thenCompose(snapshots -> highest(pid, 0, 0, false))
          .thenCompose(highest -> {
            if (firstTime) {
              return execute(insert.bind(pid, 0L, highest + 1, Uuids.timeBased(),
                  Long.toString(System.currentTimeMillis() / 3_600_000), "raw-recoveries", 33,
                  // The plugin binds the tags of every event, an empty set when it has none.
                  "parley.chat.user.UserEntity$LastSeenRecorded", "", event.duplicate(), Set.<String>of()));
            }
            return highest == 0
                ? CompletableFuture.completedFuture(null)
                : execute(deletedTo.bind(pid)).thenCompose(deleted -> execute(messages.bind(pid, 0L, 1L, highest)));
          });
    }

    /** The plugin's search: partition after partition until past one that is empty. */
    private CompletionStage<Long> highest(String pid, long partition, long found, boolean seenEmpty) {
      return execute(highestSequenceNr.bind(pid, partition)).thenCompose(rs -> {
        Row row = rs.one();
        if (row == null || row.getLong(0) == 0) {
          return seenEmpty
              ? CompletableFuture.completedFuture(found)
              : highest(pid, partition + 1, found, true);
        }
        return highest(pid, partition + 1, row.getLong(0), false);
      });
    }

    /** At the journal's consistency (QUORUM) unless the statement has its own (snapshots: ONE). */
    private CompletionStage<AsyncResultSet> execute(BoundStatement statement) {
      return session.executeAsync(
          statement.getConsistencyLevel() == null ? statement.setConsistencyLevel(ConsistencyLevel.QUORUM) : statement);
    }
  }
}
