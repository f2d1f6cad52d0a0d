package parley.ops;

import com.datastax.oss.driver.api.core.CqlSession;
import com.typesafe.config.ConfigFactory;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import parley.app.Settings;
import parley.app.StartupFailure;
import parley.persistence.CassandraConnection;
import parley.persistence.CassandraSchema;
import parley.persistence.EmbeddedCassandra;

/**
 * The development Cassandra on its own, for a local cluster of several nodes
 * ({@code deploy/local-cluster.sh}): starts the embedded Cassandra with the dev profile's
 * settings ({@code PARLEY_CASSANDRA_PORT}, {@code PARLEY_CASSANDRA_DATA_DIR}, …), applies the
 * schema, and runs until SIGTERM or Ctrl-C, which stops Cassandra cleanly. Unlike the
 * Cassandra a single {@code ./parley run} node starts, it outlives any node.
 */
public final class LocalCassandra {

  private static final Logger log = LoggerFactory.getLogger(LocalCassandra.class);

  private LocalCassandra() {}

  public static void main(String[] args) throws InterruptedException {
    Settings.Cassandra settings = Settings.Cassandra.from(ConfigFactory.load("dev"));
    EmbeddedCassandra cassandra;
    try {
      cassandra = EmbeddedCassandra.start(settings.embedded());
      try (CqlSession session = CassandraConnection.open(settings, List.of(cassandra.contactPoint()))) {
        CassandraSchema schema = CassandraSchema.of(settings);
        schema.apply(session);
        schema.verify(session);
      }
    } catch (StartupFailure failure) {
      log.error(failure.getMessage());
      System.exit(1);
      return;
    }
    CountDownLatch stopped = new CountDownLatch(1);
    EmbeddedCassandra running = cassandra;
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  running.close();
                  stopped.countDown();
                },
                "local-cassandra-stop"));
    log.info(
        "Cassandra for a local cluster on {}:{} (keyspaces {}, {}); Ctrl-C stops it",
        running.contactPoint().getHostString(),
        running.contactPoint().getPort(),
        settings.journalKeyspace(),
        settings.snapshotKeyspace());
    stopped.await();
  }
}
