package parley.jobs.export;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import org.apache.pekko.Done;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSession;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSessionRegistry;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

/**
 * The {@code exports} table (persistence-schema/exports.cql): an export attempt's JSON lines,
 * written chunk by chunk and read back in order as a stream, never whole in memory. It shares
 * the journal plugin's Cassandra session, so it needs no connection settings of its own.
 */
public final class ExportStore {

  /** Chunks per partition: bounds a partition to about 256 chunks whatever the room's size. */
  static final int CHUNKS_PER_BUCKET = 256;

  /** Chunks the driver fetches per page while streaming (a few hundred KiB). */
  private static final int READ_PAGE_CHUNKS = 8;

  private final CassandraSession session;
  private final String table;
  private final int ttlSeconds;

  public ExportStore(ActorSystem<?> system, ExportSettings settings) {
    // The journal plugin's own session (one per config path in the registry): no second pool.
    this.session = CassandraSessionRegistry.get(system).sessionFor("pekko.persistence.cassandra");
    this.table = settings.keyspace() + ".exports";
    this.ttlSeconds = (int) Math.min(Integer.MAX_VALUE, settings.retention().toSeconds());
  }

  /** Writes chunk {@code chunk} of export {@code exportId}: {@code lines} lines, each ending in a newline. */
  public CompletionStage<Done> write(String exportId, int chunk, int lines, String data) {
    return session.executeWrite(
        "INSERT INTO " + table + " (export_id, bucket, chunk, lines, data) VALUES (?, ?, ?, ?, ?) USING TTL " + ttlSeconds,
        exportId, chunk / CHUNKS_PER_BUCKET, chunk, lines, data);
  }

  /** Removes an attempt's rows (an attempt that lost its lease or failed); best effort, TTL does the rest. */
  public CompletionStage<Done> delete(String exportId, int chunks) {
    List<CompletableFuture<Done>> deletes = new ArrayList<>();
    for (int bucket = 0; bucket <= Math.max(0, chunks - 1) / CHUNKS_PER_BUCKET; bucket++) {
      deletes.add(session.executeWrite("DELETE FROM " + table + " WHERE export_id = ? AND bucket = ?", exportId, bucket).toCompletableFuture());
    }
    return CompletableFuture.allOf(deletes.toArray(CompletableFuture[]::new)).thenApply(all -> Done.getInstance());
  }

  /** Whether the first chunk is still there (rows expire after the retention). */
  public CompletionStage<Boolean> exists(String exportId) {
    return session.selectOne("SELECT chunk FROM " + table + " WHERE export_id = ? AND bucket = 0 AND chunk = 0", exportId)
        .thenApply(row -> row.isPresent());
  }

  /**
   * The export's bytes, chunk after chunk: one partition read at a time, pulled as the client
   * reads (the driver pages each partition), so a large export streams in bounded memory.
   */
  public Source<ByteString, NotUsed> read(String exportId, int chunks) {
    if (chunks == 0) {
      return Source.empty();
    }
    return Source.range(0, (chunks - 1) / CHUNKS_PER_BUCKET)
        .flatMapConcat(bucket -> session.select(
                SimpleStatement.newInstance("SELECT data FROM " + table + " WHERE export_id = ? AND bucket = ?", exportId, bucket)
                    // A page of a few chunks: the driver holds one page per stream, not a partition.
                    .setPageSize(READ_PAGE_CHUNKS))
            .map(row -> ByteString.fromString(row.getString("data"), StandardCharsets.UTF_8)));
  }
}
