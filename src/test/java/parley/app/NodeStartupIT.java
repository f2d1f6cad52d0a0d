package parley.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import parley.protocol.Codec;
import parley.testing.NodeProcess;
import parley.testing.TestCassandra;

/**
 * The node as an operator runs it: a separate JVM from the built jar. It becomes ready and
 * leaves cleanly, and each start-up mistake ends it with one clear line and a non-zero status.
 */
class NodeStartupIT {

  private static final Duration EXIT_TIMEOUT = Duration.ofSeconds(60);

  @Test
  void becomesReadyAndLeavesCleanlyOnSigterm() throws Exception {
    try (NodeProcess node = NodeProcess.start("startup-ok", NodeProcess.defaultEnv("NodeStartupOk"))) {
      Duration ready = node.awaitReady(Duration.ofSeconds(120));
      System.out.println("node ready against an external Cassandra in " + ready.toMillis() + " ms");
      assertEquals(200, NodeProcess.status(node.baseUrl() + "/v1/info"));

      node.signal("TERM");
      node.awaitExit(EXIT_TIMEOUT);
      assertTrue(node.output().contains("Successfully shut down"), node.output());
    }
  }

  @Test
  void refusesAnOccupiedHttpPort() throws Exception {
    Map<String, String> env = NodeProcess.defaultEnv("NodeStartupPort");
    int port = Integer.parseInt(env.get("PARLEY_HTTP_PORT"));
    try (ServerSocket squatter = new ServerSocket(port, 1, InetAddress.getByName("127.0.0.1"));
        NodeProcess node = NodeProcess.start("startup-port", env)) {
      assertFailsWith(node, "Cannot listen for clients on 127.0.0.1:" + port);
    }
  }

  /** PARLEY_LOG_FORMAT=json: every line is one JSON object, the refusal among them. */
  @Test
  void logsOneJsonObjectPerLineOnRequest() throws Exception {
    Map<String, String> env = NodeProcess.defaultEnv("NodeStartupJson");
    env.put("PARLEY_LOG_FORMAT", "json");
    int port = Integer.parseInt(env.get("PARLEY_HTTP_PORT"));
    try (ServerSocket squatter = new ServerSocket(port, 1, InetAddress.getByName("127.0.0.1"));
        NodeProcess node = NodeProcess.start("startup-json", env)) {
      assertNotEquals(0, node.awaitExit(EXIT_TIMEOUT));
      List<JsonNode> lines = new ArrayList<>();
      for (String line : node.output().lines().filter(l -> !l.isBlank()).toList()) {
        assertTrue(line.startsWith("{"), "every line is a JSON object:\n" + node.output());
        lines.add(Codec.JSON.readTree(line));
      }
      List<JsonNode> errors = lines.stream().filter(l -> l.path("level").asText().equals("ERROR")).toList();
      assertEquals(1, errors.size(), node.output());
      assertTrue(errors.get(0).path("formattedMessage").asText().contains("Cannot listen for clients on 127.0.0.1:" + port), errors.get(0).toString());
    }
  }

  @Test
  void refusesAnUnknownLogFormat() throws Exception {
    Map<String, String> env = NodeProcess.defaultEnv(null);
    env.put("PARLEY_LOG_FORMAT", "xml");
    try (NodeProcess node = NodeProcess.start("startup-log-format", env)) {
      assertNotEquals(0, node.awaitExit(EXIT_TIMEOUT));
      assertEquals("PARLEY_LOG_FORMAT is 'xml'; it must be 'text' or 'json'.", node.output().strip());
    }
  }

  @Test
  void refusesAnUnreachableCassandra() throws Exception {
    Map<String, String> env = NodeProcess.defaultEnv(null);
    env.put("PARLEY_CASSANDRA_CONTACT_POINTS", "127.0.0.1:" + NodeProcess.freePort());
    env.put("PARLEY_APPLY_SCHEMA_ON_START", "false");
    try (NodeProcess node = NodeProcess.start("startup-unreachable", env)) {
      assertFailsWith(node, "Cannot reach Cassandra at 127.0.0.1:");
    }
  }

  @Test
  void refusesAMissingSchema() throws Exception {
    Map<String, String> env = NodeProcess.defaultEnv(null);
    env.put("PARLEY_CASSANDRA_CONTACT_POINTS", TestCassandra.contactPointString());
    env.put("PARLEY_JOURNAL_KEYSPACE", "never_created_j");
    env.put("PARLEY_SNAPSHOT_KEYSPACE", "never_created_s");
    env.put("PARLEY_APPLY_SCHEMA_ON_START", "false");
    try (NodeProcess node = NodeProcess.start("startup-schema", env)) {
      assertFailsWith(node, "The Cassandra schema is missing never_created_j.messages");
    }
  }

  @Test
  void refusesAnInvalidSetting() throws Exception {
    Map<String, String> env = NodeProcess.defaultEnv(null);
    env.put("PARLEY_HEARTBEAT_INTERVAL", "0s");
    try (NodeProcess node = NodeProcess.start("startup-setting", env)) {
      assertFailsWith(node, "The configuration is invalid: parley.chat.heartbeat-interval must be positive");
    }
  }

  @Test
  void refusesAnUnusableDataFolder() throws Exception {
    Path notAFolder = Files.createTempFile("parley-data", ".txt");
    Map<String, String> env = NodeProcess.defaultEnv(null);
    env.put("PARLEY_CASSANDRA_DATA_DIR", notAFolder.toString());
    try (NodeProcess node = NodeProcess.start("startup-datadir", env)) {
      assertFailsWith(node, "as the embedded Cassandra's data folder");
    } finally {
      Files.deleteIfExists(notAFolder);
    }
  }

  @Test
  void embeddedCassandraStartsWithTheNodeAndStopsAfterIt() throws Exception {
    Path buildDir = Path.of(System.getProperty("parley.build.dir", "target"));
    Path dataDir = buildDir.resolve("it-embedded-cassandra");
    Map<String, String> env = NodeProcess.defaultEnv(null);
    env.put("PARLEY_CASSANDRA_DATA_DIR", dataDir.toString());
    env.put("PARLEY_CASSANDRA_PORT", Integer.toString(TestCassandra.NATIVE_PORT + 100));
    env.put("PARLEY_CASSANDRA_STORAGE_PORT", Integer.toString(TestCassandra.NATIVE_PORT - 1900));
    env.put("PARLEY_CASSANDRA_CLASSPATH_FILE", buildDir.resolve("cassandra.classpath").toString());
    try (NodeProcess node = NodeProcess.start("startup-embedded", env)) {
      Duration ready = node.awaitReady(Duration.ofSeconds(120));
      System.out.println("node with embedded Cassandra ready in " + ready.toMillis() + " ms");
      long cassandraPid = Long.parseLong(Files.readString(dataDir.resolve("cassandra.pid")).strip());
      Optional<ProcessHandle> cassandra = ProcessHandle.of(cassandraPid);
      assertTrue(cassandra.isPresent() && cassandra.get().isAlive());

      node.signal("TERM");
      node.awaitExit(EXIT_TIMEOUT);
      assertFalse(cassandra.get().isAlive(), "the embedded Cassandra stopped with the node");
      String output = node.output();
      assertTrue(
          output.indexOf("Successfully shut down") < output.indexOf("Stopping embedded Cassandra"),
          "Cassandra is stopped only after the node has left:\n" + output);
      assertFalse(Files.exists(dataDir.resolve("cassandra.pid")));
    }
  }

  private static void assertFailsWith(NodeProcess node, String message) throws Exception {
    int status = node.awaitExit(EXIT_TIMEOUT);
    String output = node.output();
    assertNotEquals(0, status, output);
    assertTrue(output.contains(message), "expected '" + message + "' in:\n" + output);
    assertFalse(output.contains("\tat "), "no stack trace:\n" + output);
    long errorLines = output.lines().filter(l -> l.contains(" ERROR ")).count();
    assertEquals(1, errorLines, "exactly one error line:\n" + output);
  }
}
