package parley.persistence;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import parley.app.Settings;
import parley.app.StartupFailure;

/**
 * A single-node Apache Cassandra for development and tests, run as a child JVM with its own
 * classpath (Cassandra brings its own Netty, Guava and logback, which must never meet the
 * node's). Its data, logs and rendered config live under one folder, so a second run reuses
 * the data.
 *
 * <p>The child runs in a session of its own ({@code setsid}): Ctrl-C in a terminal then
 * reaches only the node, which shuts down through coordinated shutdown first and stops
 * Cassandra last, instead of both dying at once with writes in flight.
 */
public final class EmbeddedCassandra implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(EmbeddedCassandra.class);

  /** Module flags Cassandra 5 needs on JDK 17 (its conf/jvm17-server.options, not in the jar). */
  private static final List<String> JDK17_FLAGS =
      List.of(
          "-Djdk.attach.allowAttachSelf=true",
          "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
          "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
          "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
          "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
          "--add-exports=java.sql/java.sql=ALL-UNNAMED",
          "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
          "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
          "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
          "--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED",
          "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
          "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
          "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
          "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
          "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
          "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
          "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
          "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
          "--add-opens=java.base/java.io=ALL-UNNAMED",
          "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
          "--add-opens=java.base/java.lang=ALL-UNNAMED",
          "--add-opens=java.base/java.util=ALL-UNNAMED",
          "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
          "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
          "-Dio.netty.tryReflectionSetAccessible=true");

  /** A single node needs no gossip settling; these make a start take seconds, not a minute. */
  private static final List<String> FAST_START_FLAGS =
      List.of(
          "-Dcassandra.skip_wait_for_gossip_to_settle=0",
          "-Dcassandra.ring_delay_ms=100",
          "-Dcassandra.superuser_setup_delay_ms=0",
          "-Dcassandra.shutdown_announce_in_ms=0");

  private final Process process;
  private final Path dataDir;
  private final int nativePort;

  private EmbeddedCassandra(Process process, Path dataDir, int nativePort) {
    this.process = process;
    this.dataDir = dataDir;
    this.nativePort = nativePort;
  }

  /** Starts Cassandra and returns once it accepts CQL connections. */
  public static EmbeddedCassandra start(Settings.Embedded settings) {
    Path dataDir = settings.dataDir().toAbsolutePath().normalize();
    prepareDataDir(dataDir);
    stopStaleInstance(dataDir);
    requirePortFree(settings.nativePort(), "PARLEY_CASSANDRA_PORT");
    requirePortFree(settings.storagePort(), "PARLEY_CASSANDRA_STORAGE_PORT");
    String classpath = readClasspath(settings.classpathFile());
    Path confDir = writeConfig(dataDir, settings.storagePort());

    List<String> command = new ArrayList<>();
    if (Files.isExecutable(Path.of("/usr/bin/setsid"))) {
      command.add("/usr/bin/setsid");
    }
    command.add(javaExecutable(settings.java()));
    command.add("-Xms" + settings.heap());
    command.add("-Xmx" + settings.heap());
    command.add("-XX:+UseG1GC");
    command.add("-XX:+ExitOnOutOfMemoryError");
    command.addAll(JDK17_FLAGS);
    command.addAll(FAST_START_FLAGS);
    command.add("-Dcassandra-foreground=yes");
    command.add("-Dcassandra.config=file://" + confDir.resolve("cassandra.yaml"));
    command.add("-Dcassandra.storagedir=" + dataDir);
    command.add("-Dcassandra.logdir=" + dataDir.resolve("logs"));
    command.add("-Dlogback.configurationFile=" + confDir.resolve("logback.xml"));
    command.add("-Dcassandra.config.allow_system_properties=true");
    command.add("-Dcassandra.settings.native_transport_port=" + settings.nativePort());
    command.add("-Dcassandra.settings.storage_port=" + settings.storagePort());
    command.add("-cp");
    command.add(classpath);
    command.add("org.apache.cassandra.service.CassandraDaemon");

    Process process;
    try {
      process =
          new ProcessBuilder(command)
              .redirectOutput(dataDir.resolve("logs").resolve("stdout.log").toFile())
              .redirectError(ProcessBuilder.Redirect.INHERIT)
              .start();
      Files.writeString(pidFile(dataDir), Long.toString(process.pid()));
    } catch (IOException e) {
      throw new StartupFailure("Cannot start the embedded Cassandra: " + e.getMessage());
    }
    EmbeddedCassandra cassandra = new EmbeddedCassandra(process, dataDir, settings.nativePort());
    log.info(
        "Starting embedded Cassandra (pid {}) on 127.0.0.1:{}, data in {}",
        process.pid(),
        settings.nativePort(),
        dataDir);
    cassandra.awaitCql(settings.startTimeout());
    return cassandra;
  }

  public InetSocketAddress contactPoint() {
    return InetSocketAddress.createUnresolved("127.0.0.1", nativePort);
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** SIGTERM, then wait: Cassandra flushes and exits cleanly in a few seconds. */
  @Override
  public void close() {
    if (!process.isAlive()) {
      return;
    }
    log.info("Stopping embedded Cassandra (pid {})", process.pid());
    process.destroy();
    try {
      if (!process.waitFor(60, TimeUnit.SECONDS)) {
        log.warn("Embedded Cassandra did not stop within 60 s; killing it");
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    try {
      Files.deleteIfExists(pidFile(dataDir));
    } catch (IOException e) {
      log.debug("Could not remove the pid file", e);
    }
  }

  private void awaitCql(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new StartupFailure(
            "The embedded Cassandra exited with status "
                + process.exitValue()
                + " during start-up; see "
                + dataDir.resolve("logs/system.log"));
      }
      if (accepts(nativePort)) {
        return;
      }
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        close();
        throw new StartupFailure("Interrupted while waiting for the embedded Cassandra");
      }
    }
    close();
    throw new StartupFailure(
        "The embedded Cassandra did not accept CQL connections within "
            + timeout.toSeconds()
            + " s; see "
            + dataDir.resolve("logs/system.log"));
  }

  private static void prepareDataDir(Path dataDir) {
    try {
      Files.createDirectories(dataDir.resolve("logs"));
      Files.createDirectories(dataDir.resolve("conf"));
    } catch (IOException | UncheckedIOException e) {
      throw new StartupFailure(
          "Cannot use "
              + dataDir
              + " as the embedded Cassandra's data folder ("
              + e.getClass().getSimpleName()
              + ": "
              + e.getMessage()
              + "). Point PARLEY_CASSANDRA_DATA_DIR at a writable folder.");
    }
    if (!Files.isWritable(dataDir) || !Files.isReadable(dataDir)) {
      throw new StartupFailure(
          "The embedded Cassandra's data folder "
              + dataDir
              + " is not readable and writable. Fix its permissions or point"
              + " PARLEY_CASSANDRA_DATA_DIR elsewhere.");
    }
  }

  /**
   * A node killed with SIGKILL cannot stop its Cassandra; the pid file lets the next run find
   * that orphan and stop it before starting a fresh one on the same data.
   */
  private static void stopStaleInstance(Path dataDir) {
    Path pidFile = pidFile(dataDir);
    Optional<ProcessHandle> stale = readPid(pidFile).flatMap(ProcessHandle::of);
    stale
        .filter(ProcessHandle::isAlive)
        .filter(p -> p.info().commandLine().map(c -> c.contains("CassandraDaemon")).orElse(false))
        .ifPresent(
            p -> {
              log.warn("Stopping a stale embedded Cassandra (pid {}) left by an earlier run", p.pid());
              p.destroy();
              p.onExit().orTimeout(60, TimeUnit.SECONDS).exceptionally(e -> null).join();
              if (p.isAlive()) {
                p.destroyForcibly();
              }
            });
    try {
      Files.deleteIfExists(pidFile);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static Optional<Long> readPid(Path pidFile) {
    try {
      return Optional.of(Long.parseLong(Files.readString(pidFile).strip()));
    } catch (IOException | NumberFormatException e) {
      return Optional.empty();
    }
  }

  private static void requirePortFree(int port, String variable) {
    if (accepts(port)) {
      throw new StartupFailure(
          "Port 127.0.0.1:"
              + port
              + " is already in use, so the embedded Cassandra cannot listen there. Stop what"
              + " holds it, set "
              + variable
              + " to another port, or set PARLEY_CASSANDRA_CONTACT_POINTS to use an external"
              + " Cassandra.");
    }
  }

  private static boolean accepts(int port) {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", port), 500);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private static String readClasspath(Path classpathFile) {
    try {
      String classpath = Files.readString(classpathFile).strip();
      if (classpath.isEmpty()) {
        throw new IOException("empty file");
      }
      return classpath;
    } catch (IOException e) {
      throw new StartupFailure(
          "Cannot read Cassandra's classpath from "
              + classpathFile.toAbsolutePath()
              + " ("
              + e.getMessage()
              + "). Build it with `mvn -q generate-resources` (the launcher does), or set"
              + " PARLEY_CASSANDRA_CLASSPATH_FILE.");
    }
  }

  /** Renders the bundled cassandra.yaml and logback config into the data folder. */
  private static Path writeConfig(Path dataDir, int storagePort) {
    Path confDir = dataDir.resolve("conf");
    String yaml =
        resource("/cassandra.yaml").replace("@STORAGE_PORT@", Integer.toString(storagePort));
    try {
      Files.writeString(confDir.resolve("cassandra.yaml"), yaml);
      Files.writeString(confDir.resolve("logback.xml"), resource("/cassandra-logback.xml"));
    } catch (IOException e) {
      throw new StartupFailure("Cannot write Cassandra's config to " + confDir + ": " + e);
    }
    return confDir;
  }

  private static String resource(String name) {
    try (InputStream in = EmbeddedCassandra.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("missing resource " + name);
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String javaExecutable(String configured) {
    if (!configured.isBlank()) {
      return configured;
    }
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  private static Path pidFile(Path dataDir) {
    return dataDir.resolve("cassandra.pid");
  }
}
