package parley.multijvm;

import static java.nio.file.StandardOpenOption.APPEND;
import static java.nio.file.StandardOpenOption.CREATE;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * One Parley node in a JVM of its own, started from the built jar as an operator starts it,
 * on a loopback address of its own (127.0.0.2, .3, …) with the same ports as its peers. Its
 * output goes to target/node-logs/NAME.log. Tests drive it through its ports and signals.
 */
final class ClusterNode implements AutoCloseable {

  static final int HTTP_PORT = 28080;
  static final int MANAGEMENT_PORT = 28558;
  static final int REMOTE_PORT = 28552;

  private static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * Small heaps and the serial collector keep several nodes affordable on two cores; C1 only
   * makes start-up cheaper. Test-only timings: hubs renew room leases every 2 s (so a room that
   * moved is found again quickly) and the coordinators look for misplaced shards every 2 s.
   */
  private static final List<String> JVM_OPTIONS =
      List.of(
          "-Xmx256m",
          "-XX:+UseSerialGC",
          "-XX:TieredStopAtLevel=1",
          "-Dparley.chat.hub-renew-interval=2s",
          "-Dparley.chat.session-renew-interval=2s",
          "-Dpekko.cluster.sharding.rebalance-interval=2s");

  final String name;
  final String host;
  private final Process process;
  private final Path log;

  private ClusterNode(String name, String host, Process process, Path log) {
    this.name = name;
    this.host = host;
    this.process = process;
    this.log = log;
  }

  /**
   * Starts a dev-profile node on {@code host}; {@code env} adds to (and wins over) the defaults,
   * and so do {@code jvmOptions} (a {@code -D} given twice takes the later value).
   */
  static ClusterNode start(String name, String host, Map<String, String> env, List<String> jvmOptions) throws IOException {
    Path buildDir = Path.of(System.getProperty("parley.build.dir", "target"));
    Path log = Files.createDirectories(buildDir.resolve("node-logs")).resolve(name + ".log");
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(JVM_OPTIONS);
    command.addAll(jvmOptions);
    command.add("-cp");
    command.add(buildDir.resolve("parley.jar") + ":" + buildDir.resolve("lib") + "/*");
    command.add("parley.app.Main");
    command.add("run");
    ProcessBuilder builder =
        new ProcessBuilder(command)
            .directory(Path.of(System.getProperty("parley.base.dir", ".")).toFile())
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    Map<String, String> environment = builder.environment();
    environment.keySet().removeIf(k -> k.startsWith("PARLEY_"));
    environment.put("PARLEY_PROFILE", "dev");
    environment.put("PARLEY_HOST", host);
    environment.put("PARLEY_REMOTE_PORT", Integer.toString(REMOTE_PORT));
    environment.put("PARLEY_HTTP_INTERFACE", host);
    environment.put("PARLEY_HTTP_PORT", Integer.toString(HTTP_PORT));
    environment.put("PARLEY_MANAGEMENT_HOST", host);
    environment.put("PARLEY_MANAGEMENT_PORT", Integer.toString(MANAGEMENT_PORT));
    environment.put("PARLEY_APPLY_SCHEMA_ON_START", "false");
    environment.putAll(env);
    Files.writeString(log, "---- starting " + name + " on " + host + "\n", CREATE, APPEND);
    return new ClusterNode(name, host, builder.start(), log);
  }

  static String address(String host) {
    return "pekko://Parley@" + host + ":" + REMOTE_PORT;
  }

  /** This node's cluster address, as members and the shard distribution name it. */
  String address() {
    return address(host);
  }

  URI http() {
    return URI.create("http://" + host + ":" + HTTP_PORT);
  }

  URI ws() {
    return URI.create("ws://" + host + ":" + HTTP_PORT + "/v1/ws");
  }

  String management(String path) {
    return "http://" + host + ":" + MANAGEMENT_PORT + path;
  }

  /** Waits until Pekko Management's /ready answers 200; fails early if the node exits. */
  Duration awaitReady(Duration timeout) throws InterruptedException {
    long start = System.nanoTime();
    long deadline = start + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new AssertionError(name + " exited with " + process.exitValue() + ":\n" + tail());
      }
      if (status(management("/ready")) == 200) {
        return Duration.ofNanos(System.nanoTime() - start);
      }
      Thread.sleep(200);
    }
    throw new AssertionError(name + " not ready within " + timeout + ":\n" + tail());
  }

  /** A management endpoint's JSON, or empty if the node does not answer (in time). */
  Optional<JsonNode> getJson(String path) {
    return getText(path)
        .map(
            text -> {
              try {
                return JSON.readTree(text);
              } catch (IOException e) {
                throw new AssertionError(name + " answered " + path + " with no JSON: " + text, e);
              }
            });
  }

  /** A management endpoint's text, or empty if the node does not answer (in time). */
  Optional<String> getText(String path) {
    try {
      HttpResponse<String> response =
          HTTP.send(
              HttpRequest.newBuilder(URI.create(management(path)))
                  .timeout(Duration.ofSeconds(8))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      return response.statusCode() == 200 ? Optional.of(response.body()) : Optional.empty();
    } catch (IOException e) {
      return Optional.empty();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Optional.empty();
    }
  }

  static int status(String url) {
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

  void signal(String signal) throws IOException, InterruptedException {
    int status = new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).start().waitFor();
    if (status != 0) {
      throw new IOException("kill -" + signal + " " + process.pid() + " failed with " + status);
    }
  }

  /** Waits for the process to end and returns its exit status. */
  int awaitExit(Duration timeout) throws InterruptedException {
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      throw new AssertionError(name + " still running after " + timeout + ":\n" + tail());
    }
    return process.exitValue();
  }

  boolean isAlive() {
    return process.isAlive();
  }

  /** The end of the node's output, for failure messages. */
  String tail() {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
    } catch (IOException e) {
      return "(no output: " + e + ")";
    }
  }

  @Override
  public void close() {
    // SIGKILL ends a stopped (SIGSTOP) process too.
    process.destroyForcibly();
    try {
      process.waitFor(20, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String toString() {
    return name + "@" + host;
  }
}
