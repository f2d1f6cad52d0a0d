package parley.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A Parley node in a JVM of its own, started from the built jar as an operator starts it,
 * with its output in target/node-logs/NAME.log. Tests drive it through its ports and signals.
 */
public final class NodeProcess implements AutoCloseable {

  private static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  private static final int LOWEST_PORT = 20_000;
  private static final int PORTS = 32_768 - LOWEST_PORT;
  /** Starts at a random place so JVMs started one after another do not reuse each other's ports. */
  private static final AtomicInteger nextPort =
      new AtomicInteger(ThreadLocalRandom.current().nextInt(PORTS));

  private final String name;
  private final Process process;
  private final Path log;
  public final String host;
  public final int httpPort;
  public final int managementPort;

  private NodeProcess(String name, Process process, Path log, String host, int httpPort, int managementPort) {
    this.name = name;
    this.process = process;
    this.log = log;
    this.host = host;
    this.httpPort = httpPort;
    this.managementPort = managementPort;
  }

  /** Environment for a dev-profile node on free ports of 127.0.0.1 against the test Cassandra. */
  public static Map<String, String> defaultEnv(String keyspaceOwner) {
    Map<String, String> env = new HashMap<>();
    env.put("PARLEY_PROFILE", "dev");
    env.put("PARLEY_HOST", "127.0.0.1");
    env.put("PARLEY_HTTP_PORT", Integer.toString(freePort()));
    env.put("PARLEY_MANAGEMENT_PORT", Integer.toString(freePort()));
    env.put("PARLEY_REMOTE_PORT", Integer.toString(freePort()));
    if (keyspaceOwner != null) {
      var config = TestCassandra.keyspacesFor(keyspaceOwner);
      env.put("PARLEY_CASSANDRA_CONTACT_POINTS", TestCassandra.contactPointString());
      env.put("PARLEY_JOURNAL_KEYSPACE", config.getString("parley.cassandra.journal-keyspace"));
      env.put("PARLEY_SNAPSHOT_KEYSPACE", config.getString("parley.cassandra.snapshot-keyspace"));
      env.put("PARLEY_APPLY_SCHEMA_ON_START", "false");
    }
    return env;
  }

  public static NodeProcess start(String name, Map<String, String> env) throws IOException {
    Path buildDir = Path.of(System.getProperty("parley.build.dir", "target"));
    Path logDir = Files.createDirectories(buildDir.resolve("node-logs"));
    Path log = logDir.resolve(name + ".log");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> command = new ArrayList<>();
    command.add(java);
    command.add("-Xmx384m");
    command.add("-XX:+UseSerialGC");
    command.add("-cp");
    command.add(buildDir.resolve("parley.jar") + ":" + buildDir.resolve("lib") + "/*");
    command.add("parley.app.Main");
    command.add("run");
    ProcessBuilder builder =
        new ProcessBuilder(command)
            .directory(Path.of(System.getProperty("parley.base.dir", ".")).toFile())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile());
    builder.environment().keySet().removeIf(k -> k.startsWith("PARLEY_"));
    builder.environment().putAll(env);
    return new NodeProcess(
        name,
        builder.start(),
        log,
        env.getOrDefault("PARLEY_HOST", "127.0.0.1"),
        Integer.parseInt(env.getOrDefault("PARLEY_HTTP_PORT", "8080")),
        Integer.parseInt(env.getOrDefault("PARLEY_MANAGEMENT_PORT", "8558")));
  }

  /** Waits until Pekko Management's /ready answers 200; fails early if the node exits. */
  public Duration awaitReady(Duration timeout) throws Exception {
    long start = System.nanoTime();
    long deadline = start + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new AssertionError(name + " exited with " + process.exitValue() + ":\n" + output());
      }
      if (status("http://" + host + ":" + managementPort + "/ready") == 200) {
        return Duration.ofNanos(System.nanoTime() - start);
      }
      Thread.sleep(200);
    }
    throw new AssertionError(name + " not ready within " + timeout + ":\n" + output());
  }

  public static int status(String url) {
    try {
      return HTTP.send(
              HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(2)).build(),
              HttpResponse.BodyHandlers.discarding())
          .statusCode();
    } catch (IOException e) {
      return -1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return -1;
    }
  }

  public String baseUrl() {
    return "http://" + host + ":" + httpPort;
  }

  /** Waits for the process to end and returns its exit status. */
  public int awaitExit(Duration timeout) throws InterruptedException {
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      throw new AssertionError(name + " still running after " + timeout + ":\n" + output());
    }
    return process.exitValue();
  }

  public void signal(String signal) throws IOException, InterruptedException {
    new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).start().waitFor();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  public long pid() {
    return process.pid();
  }

  public String output() {
    try {
      return Files.readString(log);
    } catch (IOException e) {
      return "(no output: " + e + ")";
    }
  }

  @Override
  public void close() {
    process.destroyForcibly();
    try {
      process.waitFor(20, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * A port free now, for a node to listen on shortly. Taken below the kernel's ephemeral range
   * (32768 and up): a port the kernel hands out could, between this check and the node's bind,
   * become the local end of one of the many outgoing connections a test makes (the Cassandra
   * driver's, a client's), and the bind would fail. Each port is handed out once per JVM.
   */
  public static int freePort() {
    for (int tries = 0; tries < PORTS; tries++) {
      int port = LOWEST_PORT + Math.floorMod(nextPort.getAndIncrement(), PORTS);
      try (ServerSocket socket = new ServerSocket(port)) {
        return port;
      } catch (IOException busy) {
        // held by something else: try the next
      }
    }
    throw new IllegalStateException("No free port in " + LOWEST_PORT + ".." + (LOWEST_PORT + PORTS - 1));
  }
}
