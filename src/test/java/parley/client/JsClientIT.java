package parley.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * The TypeScript client package (clients/js) against a real node: builds it with {@code tsc}
 * and runs its {@code node --test} suite (connect and resume, two users, typed errors, a
 * reconnect after the server closes the socket, token refresh under 1 s heartbeats, a job
 * followed to completion). The node pings every second and allows no clock skew, so the
 * suite's 3 and 4 second tokens expire when they say.
 */
class JsClientIT {

  private static final Path PACKAGE =
      Path.of(System.getProperty("parley.base.dir", "."), "clients", "js");
  private static final String WORKER_KEY = "js-client-worker-key";
  private static final String QUEUE = "sdk";
  /** The summary line of node's TAP ("# pass 7") or spec ("ℹ pass 7") reporter. */
  private static final Pattern PASSED = Pattern.compile("^(#|ℹ) pass [1-9]", Pattern.MULTILINE);
  private static InJvmNode node;

  @BeforeAll
  static void start() throws Exception {
    assumeTrue(commandWorks("npm", "--version"), "JS client tests skipped: npm (Node 20) is not installed");
    node =
        InJvmNode.start(
            TestCassandra.keyspacesFor("JsClientIT"),
            0,
            0,
            ConfigFactory.parseString(
                """
                parley.auth.clock-skew = 0s
                parley.chat.heartbeat-interval = 1s
                parley.chat.heartbeat-timeout = 1s
                parley.jobs.worker-key = "%s"
                parley.jobs.queues { %s { partitions = 1 } }
                """
                    .formatted(WORKER_KEY, QUEUE)));
  }

  @AfterAll
  static void stop() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void thePackagesTestsPassAgainstARealNode() throws Exception {
    // npm keeps the lock it installed from in node_modules/.package-lock.json: an older one means
    // the package's dependencies changed since (a pull), and the tests would run against stale ones.
    Path installed = PACKAGE.resolve("node_modules").resolve(".package-lock.json");
    if (!Files.exists(installed)
        || Files.getLastModifiedTime(installed).compareTo(Files.getLastModifiedTime(PACKAGE.resolve("package-lock.json"))) < 0) {
      Run install = run(List.of("npm", "ci", "--no-audit", "--no-fund"), Map.of(), 10);
      assertEquals(0, install.exitCode, "npm ci failed:\n" + install.output);
    }
    Run test =
        run(
            List.of("npm", "test"),
            Map.of(
                "PARLEY_URL", node.http().toString(),
                "PARLEY_AUTH_SECRET", node.system.settings().config().getString("parley.auth.secret"),
                "PARLEY_WORKER_KEY", WORKER_KEY,
                "PARLEY_JOB_QUEUE", QUEUE),
            5);
    System.out.println(test.output);
    assertEquals(0, test.exitCode, "npm test failed:\n" + test.output);
    // A suite that found no tests also exits 0.
    assertTrue(PASSED.matcher(test.output).find(), "no test passed:\n" + test.output);
  }

  private record Run(int exitCode, String output) {}

  private static Run run(List<String> command, Map<String, String> env, int minutes)
      throws IOException, InterruptedException {
    Path log = Files.createTempFile("parley-js-client", ".log");
    try {
      ProcessBuilder builder =
          new ProcessBuilder(command)
              .directory(PACKAGE.toFile())
              .redirectErrorStream(true)
              .redirectOutput(log.toFile());
      builder.environment().putAll(env);
      Process process = builder.start();
      if (!process.waitFor(minutes, TimeUnit.MINUTES)) {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly().waitFor();
        return new Run(-1, "timed out after " + minutes + " min:\n" + Files.readString(log, StandardCharsets.UTF_8));
      }
      return new Run(process.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(log);
    }
  }

  private static boolean commandWorks(String... command) {
    try {
      return new ProcessBuilder(command).redirectErrorStream(true).start().waitFor() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }
}
