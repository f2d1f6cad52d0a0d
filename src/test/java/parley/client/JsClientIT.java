package parley.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.typesafe.config.ConfigFactory;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.testing.InJvmNode;
import parley.testing.Npm;
import parley.testing.TestCassandra;

/**
 * The TypeScript client package (clients/js) against a real node: builds it with {@code tsc}
 * and runs its {@code node --test} suite (connect and resume, two users, typed errors, a
 * reconnect after the server closes the socket, token refresh under 1 s heartbeats, a job
 * followed to completion, the job worker on the suite's queue), and the example application (examples/chat) that installs it. The
 * node pings every second and allows no clock skew, so the suite's 3 and 4 second tokens
 * expire when they say.
 */
class JsClientIT {

  private static final Path PACKAGE =
      Path.of(System.getProperty("parley.base.dir", "."), "clients", "js");
  private static final Path EXAMPLE =
      Path.of(System.getProperty("parley.base.dir", "."), "examples", "chat");
  private static final String WORKER_KEY = "js-client-worker-key";
  private static final String QUEUE = "sdk";
  /** The example's own queue, so its worker takes none of the suite's jobs. */
  private static final String EXAMPLE_QUEUE = "example";
  /** The summary line of node's TAP ("# pass 7") or spec ("ℹ pass 7") reporter. */
  private static final Pattern PASSED = Pattern.compile("^(#|ℹ) pass [1-9]", Pattern.MULTILINE);
  private static InJvmNode node;

  @BeforeAll
  static void start() throws Exception {
    assumeTrue(Npm.available(), "JS client tests skipped: npm (Node 20) is not installed");
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
                parley.jobs.queues { %s { partitions = 1 }, %s { partitions = 1 } }
                """
                    .formatted(WORKER_KEY, QUEUE, EXAMPLE_QUEUE)));
  }

  @AfterAll
  static void stop() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void thePackagesTestsPassAgainstARealNode() throws Exception {
    Npm.installed(PACKAGE);
    Npm.Run test =
        Npm.run(
            PACKAGE,
            List.of("npm", "test"),
            Map.of(
                "PARLEY_URL", node.http().toString(),
                "PARLEY_AUTH_SECRET", node.system.settings().config().getString("parley.auth.secret"),
                "PARLEY_WORKER_KEY", WORKER_KEY,
                "PARLEY_JOB_QUEUE", QUEUE),
            5);
    System.out.println(test.output());
    assertEquals(0, test.exitCode(), "npm test failed:\n" + test.output());
    // A suite that found no tests also exits 0.
    assertTrue(PASSED.matcher(test.output()).find(), "no test passed:\n" + test.output());
  }

  /**
   * examples/chat as its README runs it, with a worker on its queue as {@code ./parley worker}
   * runs one: it says hello and hears it back, sends a typed line, follows its job to the
   * demo handler's echo, and exits 0 at the end of its input.
   */
  @Test
  void theExampleChatsAndHasItsJobDone() throws Exception {
    Npm.built(PACKAGE);
    Npm.installed(EXAMPLE);
    String user = "example-" + UUID.randomUUID().toString().substring(0, 8);
    String room = "room-" + user;
    JobWorker worker =
        JobWorker.connect(node.ws(), WORKER_KEY, JobWorker.Options.of(EXAMPLE_QUEUE, 1), new DemoJobHandler())
            .get(30, TimeUnit.SECONDS);
    ProcessBuilder builder = new ProcessBuilder("node", "chat.js").directory(EXAMPLE.toFile()).redirectErrorStream(true);
    builder
        .environment()
        .putAll(
            Map.of(
                "PARLEY_URL", node.http().toString(),
                "PARLEY_USER", user,
                "PARLEY_ROOM", room,
                "PARLEY_JOB_QUEUE", EXAMPLE_QUEUE));
    Process chat = builder.start();
    Lines output = new Lines(chat);
    try {
      output.await(Pattern.quote(room + " #") + "\\d+ " + Pattern.quote(user + ": hello from " + user));
      output.await("job " + Pattern.quote(EXAMPLE_QUEUE) + ":\\S+ completed " + Pattern.quote("{\"echo\":{\"from\":\"" + user + "\""));
      try (Writer typed = new OutputStreamWriter(chat.getOutputStream(), StandardCharsets.UTF_8)) {
        typed.write("a typed line\n");
        typed.flush();
        output.await(Pattern.quote(room + " #") + "\\d+ " + Pattern.quote(user + ": a typed line"));
      }
      assertTrue(chat.waitFor(20, TimeUnit.SECONDS), "the example did not exit at the end of its input:\n" + output);
      assertEquals(0, chat.exitValue(), "the example failed:\n" + output);
      System.out.println(output);
    } finally {
      chat.destroyForcibly();
      worker.stop().get(30, TimeUnit.SECONDS);
    }
  }

  /** A process's output lines as they come. */
  private static final class Lines {
    private final List<String> lines = new ArrayList<>();

    Lines(Process process) {
      Thread reader =
          new Thread(
              () -> {
                try (BufferedReader in =
                    new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                  for (String line; (line = in.readLine()) != null; ) {
                    synchronized (lines) {
                      lines.add(line);
                    }
                  }
                } catch (IOException e) {
                  // The process was destroyed: its lines so far are what there is.
                }
              },
              "example-output");
      reader.setDaemon(true);
      reader.start();
    }

    /** Waits up to 30 s for a line matching {@code regex}. */
    void await(String regex) throws InterruptedException {
      Pattern pattern = Pattern.compile(regex);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (System.nanoTime() < deadline) {
        synchronized (lines) {
          if (lines.stream().anyMatch(line -> pattern.matcher(line).find())) {
            return;
          }
        }
        Thread.sleep(50);
      }
      throw new AssertionError("no line matching " + regex + " within 30 s:\n" + this);
    }

    @Override
    public String toString() {
      synchronized (lines) {
        return String.join("\n", lines);
      }
    }
  }
}
