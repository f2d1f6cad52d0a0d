package parley.testing;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import parley.app.Settings;
import parley.persistence.CassandraConnection;
import parley.persistence.CassandraSchema;
import parley.persistence.EmbeddedCassandra;

/**
 * The real Cassandra the integration tests run against: one per test JVM (so one per test
 * run), started on first use by the node's own launcher code and stopped when the JVM exits.
 * Each test class gets keyspaces of its own, with the production schema applied.
 */
public final class TestCassandra {

  public static final int NATIVE_PORT = Integer.getInteger("parley.test.cassandra.port", 19042);
  private static final int STORAGE_PORT = NATIVE_PORT - 2000;

  private static EmbeddedCassandra cassandra;
  private static CqlSession session;

  private TestCassandra() {}

  public static synchronized InetSocketAddress contactPoint() {
    if (cassandra == null) {
      Path buildDir = Path.of(System.getProperty("parley.build.dir", "target"));
      cassandra =
          EmbeddedCassandra.start(
              new Settings.Embedded(
                  buildDir.resolve("test-cassandra"),
                  NATIVE_PORT,
                  STORAGE_PORT,
                  buildDir.resolve("cassandra.classpath"),
                  "768M",
                  "",
                  Duration.ofSeconds(180)));
      Runtime.getRuntime()
          .addShutdownHook(
              new Thread(
                  () -> {
                    if (session != null) {
                      session.close();
                    }
                    cassandra.close();
                  },
                  "test-cassandra-stop"));
    }
    return cassandra.contactPoint();
  }

  public static String contactPointString() {
    InetSocketAddress cp = contactPoint();
    return cp.getHostString() + ":" + cp.getPort();
  }

  /** A driver session for tests that read the journal tables directly. */
  public static synchronized CqlSession session() {
    if (session == null) {
      session = CassandraConnection.open(cassandraSettings("unused", "unused"), List.of(contactPoint()));
    }
    return session;
  }

  /**
   * Fresh journal and snapshot keyspaces named after {@code owner} (a test class), with the
   * schema applied as `parley schema apply` does, and the config that points a node at them.
   */
  public static Config keyspacesFor(String owner) {
    String base = owner.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]", "_");
    String journal = truncate(base) + "_j";
    String snapshot = truncate(base) + "_s";
    CqlSession s = session();
    for (String keyspace : List.of(journal, snapshot)) {
      s.execute(
          SimpleStatement.newInstance("DROP KEYSPACE IF EXISTS " + keyspace)
              .setTimeout(Duration.ofSeconds(30)));
    }
    CassandraSchema schema =
        new CassandraSchema(journal, snapshot, "{'class': 'SimpleStrategy', 'replication_factor': 1}");
    schema.apply(s);
    schema.verify(s);
    return ConfigFactory.parseString(
        "parley.cassandra.journal-keyspace = "
            + journal
            + "\nparley.cassandra.snapshot-keyspace = "
            + snapshot
            + "\npekko.persistence.cassandra.journal.keyspace = "
            + journal
            + "\npekko.persistence.cassandra.snapshot.keyspace = "
            + snapshot
            + "\nparley.cassandra.contact-points = \""
            + contactPointString()
            + "\"\ndatastax-java-driver.basic.contact-points = [\""
            + contactPointString()
            + "\"]\n");
  }

  private static Settings.Cassandra cassandraSettings(String journal, String snapshot) {
    return new Settings.Cassandra(
        List.of(contactPoint()),
        "datacenter1",
        "",
        "",
        journal,
        snapshot,
        "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        false,
        Duration.ofSeconds(30),
        null);
  }

  private static String truncate(String name) {
    return name.length() > 40 ? name.substring(name.length() - 40) : name;
  }
}
