package parley.bench;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.Row;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;

/**
 * The load tool's own way into a node's Cassandra: the raw driver loops that Parley's numbers
 * are held to run through it, on tables of the journal's and the snapshot store's own shape
 * (persistence-schema/, shipped in the jar under schema/) in a keyspace of the bench; and it
 * reads how many reads and writes Cassandra served per table, so a raw loop can be checked to
 * ask what the node asks.
 */
final class RawCassandra {

  static final String KEYSPACE = "parley_bench_raw";

  private RawCassandra() {}

  static CqlSession session(String contactPoint, String datacenter) {
    int colon = contactPoint.lastIndexOf(':');
    return CqlSession.builder()
        .withConfigLoader(
            DriverConfigLoader.programmaticBuilder()
                .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(10))
                .withDuration(DefaultDriverOption.CONTROL_CONNECTION_AGREEMENT_TIMEOUT, Duration.ofSeconds(20))
                // Thousands of requests are outstanding at once in the raw loops; the default of
                // 1024 per connection would refuse the rest at once rather than queue them.
                .withInt(DefaultDriverOption.CONNECTION_MAX_REQUESTS, 32768)
                .build())
        .addContactPoint(
            new InetSocketAddress(contactPoint.substring(0, colon), Integer.parseInt(contactPoint.substring(colon + 1))))
        .withLocalDatacenter(datacenter)
        .build();
  }

  /**
   * Creates {@code table} of {@code schemaFile} (as {@code parley_journal.messages} is named in
   * journal.cql) in the bench's keyspace.
   */
  static void createTable(CqlSession session, String replication, String schemaFile, String table) throws IOException {
    String ddl;
    try (InputStream in = RawCassandra.class.getResourceAsStream("/schema/" + schemaFile)) {
      if (in == null) {
        throw new IllegalStateException("schema/" + schemaFile + " is not on the classpath");
      }
      ddl = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    String keyspace = table.substring(0, table.indexOf('.') + 1);
    String create = null;
    for (String statement : ddl.replaceAll("(?m)^--.*$", "").split(";")) {
      if (statement.contains("TABLE IF NOT EXISTS " + table + " ")) {
        create = statement.strip().replace(keyspace, KEYSPACE + ".");
      }
    }
    if (create == null) {
      throw new IllegalStateException("no " + table + " in schema/" + schemaFile);
    }
    session.execute("CREATE KEYSPACE IF NOT EXISTS " + KEYSPACE + " WITH replication = " + replication);
    session.execute(create);
  }

  /**
   * Reads and writes Cassandra has served so far, per {@code keyspace.table} outside its own
   * system keyspaces (its {@code system_views} latency tables count every request).
   */
  static Map<String, long[]> served(CqlSession session) {
    Map<String, long[]> counts = new TreeMap<>();
    String[] views = {"local_read_latency", "local_write_latency"};
    for (int kind = 0; kind < views.length; kind++) {
      for (Row row : session.execute("SELECT keyspace_name, table_name, count FROM system_views." + views[kind])) {
        String keyspace = row.getString("keyspace_name");
        if (keyspace.startsWith("system")) {
          continue;
        }
        counts.computeIfAbsent(keyspace + "." + row.getString("table_name"), t -> new long[2])[kind] += ((Number) row.getObject("count")).longValue();
      }
    }
    return counts;
  }

  /** Reads and writes of every table together, as {reads, writes}. */
  static long[] total(Map<String, long[]> served) {
    long[] total = new long[2];
    served.values().forEach(c -> {
      total[0] += c[0];
      total[1] += c[1];
    });
    return total;
  }

  /** What was served between two {@link #served} readings, per table, as {reads, writes}. */
  static Map<String, long[]> since(Map<String, long[]> before, Map<String, long[]> after) {
    Map<String, long[]> delta = new TreeMap<>();
    after.forEach((table, now) -> {
      long[] then = before.getOrDefault(table, new long[2]);
      if (now[0] != then[0] || now[1] != then[1]) {
        delta.put(table, new long[] {now[0] - then[0], now[1] - then[1]});
      }
    });
    return delta;
  }
}
