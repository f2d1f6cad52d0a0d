package parley.persistence;

import com.datastax.oss.driver.api.core.CqlIdentifier;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.metadata.schema.KeyspaceMetadata;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import parley.app.Settings;
import parley.app.StartupFailure;

/**
 * The journal and snapshot schema of persistence-schema/, as production applies it. The CQL
 * files name the production keyspaces and replication; rendering swaps in the configured
 * keyspace names and replication map, so one set of files serves dev, tests and production.
 */
public final class CassandraSchema {

  private static final Logger log = LoggerFactory.getLogger(CassandraSchema.class);

  private static final String JOURNAL_FILE = "/schema/journal.cql";
  private static final String SNAPSHOT_FILE = "/schema/snapshot.cql";
  /** Room history exports, in the journal keyspace. */
  private static final String EXPORTS_FILE = "/schema/exports.cql";
  private static final Pattern REPLICATION =
      Pattern.compile("replication\\s*=\\s*\\{[^}]*}", Pattern.CASE_INSENSITIVE);

  /** Tables the node cannot run without. */
  private static final List<String> JOURNAL_TABLES =
      List.of("messages", "metadata", "all_persistence_ids", "resume_cursors");

  private static final List<String> SNAPSHOT_TABLES = List.of("snapshots");

  /** Room-history exports (exports.cql), in the journal keyspace. */
  private static final List<String> EXPORT_TABLES = List.of("exports");

  private final String journalKeyspace;
  private final String snapshotKeyspace;
  private final String replication;

  public CassandraSchema(String journalKeyspace, String snapshotKeyspace, String replication) {
    this.journalKeyspace = requireIdentifier(journalKeyspace);
    this.snapshotKeyspace = requireIdentifier(snapshotKeyspace);
    this.replication = replication;
  }

  public static CassandraSchema of(Settings.Cassandra settings) {
    return new CassandraSchema(
        settings.journalKeyspace(), settings.snapshotKeyspace(), settings.replication());
  }

  /** The statements, in order, with this node's keyspaces and replication. */
  public List<String> statements() {
    List<String> statements = new ArrayList<>();
    statements.addAll(render(JOURNAL_FILE, "parley_journal", journalKeyspace));
    statements.addAll(render(SNAPSHOT_FILE, "parley_snapshot", snapshotKeyspace));
    statements.addAll(render(EXPORTS_FILE, "parley_journal", journalKeyspace));
    return statements;
  }

  /** Applies every statement; all are IF NOT EXISTS, so applying twice changes nothing. */
  public void apply(CqlSession session) {
    for (String statement : statements()) {
      session.execute(
          com.datastax.oss.driver.api.core.cql.SimpleStatement.newInstance(statement)
              .setTimeout(Duration.ofSeconds(30)));
    }
    log.info("Schema applied to keyspaces {} and {}", journalKeyspace, snapshotKeyspace);
  }

  /** The node refuses to start without its tables rather than failing on the first write. */
  public void verify(CqlSession session) {
    session.refreshSchema();
    List<String> missing = new ArrayList<>();
    missing.addAll(missingTables(session, journalKeyspace, JOURNAL_TABLES));
    missing.addAll(missingTables(session, snapshotKeyspace, SNAPSHOT_TABLES));
    missing.addAll(missingTables(session, journalKeyspace, EXPORT_TABLES));
    if (!missing.isEmpty()) {
      throw new StartupFailure(
          "The Cassandra schema is missing "
              + String.join(", ", missing)
              + ". Apply it with `./parley schema apply` (or the CQL in persistence-schema/).");
    }
  }

  private static List<String> missingTables(
      CqlSession session, String keyspace, List<String> tables) {
    Optional<KeyspaceMetadata> ks = session.getMetadata().getKeyspace(keyspace);
    return tables.stream()
        .filter(t -> ks.flatMap(k -> k.getTable(CqlIdentifier.fromInternal(t))).isEmpty())
        .map(t -> keyspace + "." + t)
        .toList();
  }

  private List<String> render(String file, String productionKeyspace, String keyspace) {
    String cql = stripComments(resource(file));
    Pattern name = Pattern.compile("\\b" + productionKeyspace + "\\b");
    return Arrays.stream(cql.split(";"))
        .map(String::strip)
        .filter(s -> !s.isEmpty())
        .map(s -> name.matcher(s).replaceAll(keyspace))
        .map(s -> REPLICATION.matcher(s).replaceAll(Matcher.quoteReplacement("replication = " + replication)))
        .toList();
  }

  private static String stripComments(String cql) {
    return cql.lines().filter(l -> !l.strip().startsWith("--")).reduce("", (a, b) -> a + b + "\n");
  }

  private static String requireIdentifier(String keyspace) {
    if (!keyspace.matches("[a-zA-Z][a-zA-Z0-9_]{0,47}")) {
      throw new StartupFailure(
          "'" + keyspace + "' is not a valid Cassandra keyspace name (letters, digits, _).");
    }
    return keyspace;
  }

  private static String resource(String name) {
    try (InputStream in = CassandraSchema.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("missing resource " + name);
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
