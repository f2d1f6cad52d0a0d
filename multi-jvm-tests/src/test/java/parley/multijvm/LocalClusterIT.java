package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import parley.testing.TestCassandra;

/**
 * The operator's commands for a local cluster (deploy/local-cluster.sh), run as an operator
 * runs them, against the test Cassandra on 127.0.0.20–.22 with ports of their own: start two
 * nodes, see them in {@code status}, kill one (status says it died, with its exit code),
 * restart it, add a third, stop everything; node logs are kept across restarts.
 */
@Timeout(value = 6, unit = TimeUnit.MINUTES)
class LocalClusterIT {

  private static final Duration COMMAND_TIMEOUT = Duration.ofMinutes(3);

  private final Path state = Path.of(System.getProperty("parley.build.dir", "target")).toAbsolutePath().resolve("local-cluster-it");
  private final Map<String, String> env = new HashMap<>();

  record Outcome(int exit, String output) {}

  @Test
  void anOperatorStartsKillsRestartsAddsAndStopsNodes() throws Exception {
    deleteRecursively(state);
    Config keyspaces = TestCassandra.keyspacesFor("LocalClusterIT");
    env.put("PARLEY_LOCAL_CLUSTER_DIR", state.toString());
    env.put("PARLEY_LOCAL_CLUSTER_FIRST_HOST", "20");
    env.put("PARLEY_HTTP_PORT", "38080");
    env.put("PARLEY_MANAGEMENT_PORT", "38558");
    env.put("PARLEY_REMOTE_PORT", "38552");
    env.put("PARLEY_JAVA_OPTS", "-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1");
    env.put("PARLEY_CASSANDRA_CONTACT_POINTS", TestCassandra.contactPointString());
    env.put("PARLEY_JOURNAL_KEYSPACE", keyspaces.getString("parley.cassandra.journal-keyspace"));
    env.put("PARLEY_SNAPSHOT_KEYSPACE", keyspaces.getString("parley.cassandra.snapshot-keyspace"));
    env.put("PARLEY_SBR_STABLE_AFTER", "4s");

    Outcome started = run("start", "2");
    assertEquals(0, started.exit(), started.output());
    assertTrue(started.output().contains("node 1 ready") && started.output().contains("node 2 ready"), started.output());
    awaitStatus("both nodes see two members", s -> s.exit() == 0 && count(s.output(), "sees 2 member(s) Up") == 2);

    Outcome killed = run("kill-node", "2");
    assertEquals(0, killed.exit(), killed.output());
    Outcome afterKill = run("status");
    assertEquals(1, afterKill.exit(), "status fails while a node is down: " + afterKill.output());
    assertTrue(afterKill.output().contains("node 2 (127.0.0.21): not running; last: ") && afterKill.output().contains("died, exit code 137"),
        afterKill.output());

    Outcome restarted = run("restart-node", "2");
    assertEquals(0, restarted.exit(), restarted.output());
    assertTrue(restarted.output().contains("node 2 ready"), restarted.output());
    Outcome added = run("add-node", "3");
    assertEquals(0, added.exit(), added.output());
    awaitStatus("three nodes see three members", s -> s.exit() == 0 && count(s.output(), "sees 3 member(s) Up") == 3);

    Outcome stopped = run("stop");
    assertEquals(0, stopped.exit(), stopped.output());
    try (Stream<Path> pids = Files.list(state.resolve("run"))) {
      assertFalse(pids.anyMatch(p -> p.toString().endsWith(".pid")), "no pid file is left: every node stopped");
    }
    String events = Files.readString(state.resolve("events.log"));
    assertTrue(events.contains("node 1 (127.0.0.20) stopped") && events.contains("node 3 (127.0.0.22) stopped"), events);
    Path logs = state.resolve("logs").resolve("current");
    assertEquals(2, count(Files.readString(logs.resolve("node-2.log")), "node 2 starting"), "node 2's log is kept across its restart");
    Outcome status = run("status");
    assertEquals(1, status.exit(), status.output());
  }

  @AfterEach
  void stopWhatIsLeft() throws Exception {
    if (Files.exists(state.resolve("run").resolve("cluster.env"))) {
      run("stop");
    }
  }

  private void awaitStatus(String what, Predicate<Outcome> condition) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
    Outcome last = run("status");
    while (!condition.test(last)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not within 90 s: " + what + "; last status:\n" + last.output());
      }
      Thread.sleep(1000);
      last = run("status");
    }
  }

  private Outcome run(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add("deploy/local-cluster.sh");
    command.addAll(List.of(args));
    ProcessBuilder builder =
        new ProcessBuilder(command).directory(Path.of(System.getProperty("parley.base.dir", ".")).toFile()).redirectErrorStream(true);
    builder.environment().keySet().removeIf(k -> k.startsWith("PARLEY_"));
    builder.environment().putAll(env);
    Process process = builder.start();
    // Read while it runs: a full pipe would block the command.
    byte[] output = process.getInputStream().readAllBytes();
    if (!process.waitFor(COMMAND_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("local-cluster.sh " + String.join(" ", args) + " did not end");
    }
    return new Outcome(process.exitValue(), new String(output, StandardCharsets.UTF_8));
  }

  private static int count(String text, String part) {
    int n = 0;
    for (int at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + 1)) {
      n++;
    }
    return n;
  }

  private static void deleteRecursively(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
        Files.delete(p);
      }
    }
  }
}
