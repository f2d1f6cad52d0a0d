package parley.app;

import com.datastax.oss.driver.api.core.CqlSession;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.io.IOException;
import java.net.BindException;
import java.net.ServerSocket;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import parley.chat.ChatSettings;
import parley.collab.document.DocumentSettings;
import parley.persistence.CassandraConnection;
import parley.persistence.CassandraSchema;
import parley.persistence.EmbeddedCassandra;
import parley.transport.CursorCheckpoints;

/**
 * The node's command line: {@code run} (default) starts a node; {@code schema apply} and
 * {@code schema print} manage the Cassandra schema. The profile comes from PARLEY_PROFILE
 * ({@code dev} or {@code production}, the default).
 */
public final class Main {

  static {
    commonPoolOfTwoAtLeast();
  }

  private static final Logger log = LoggerFactory.getLogger(Main.class);
  private static final Duration START_TIMEOUT = Duration.ofSeconds(60);

  private Main() {}

  static final String COMMON_POOL_PARALLELISM = "java.util.concurrent.ForkJoinPool.common.parallelism";

  /**
   * CompletableFuture runs its async callbacks on the common pool only if that pool has two
   * threads or more, and otherwise starts a new thread for each one. The pool sizes itself to
   * the cores less one, so on a node of two cores every answer to an ask from Pekko's Java API
   * (its asks and pipeToSelf chain async callbacks on a stage converted from a Scala future)
   * started and ended a thread: two per connection opened (JFR, 5,056 thread starts in 11 s of
   * opening). Set before anything touches the pool, which reads the property once; an
   * operator's own setting is left alone.
   */
  static void commonPoolOfTwoAtLeast() {
    if (System.getProperty(COMMON_POOL_PARALLELISM) == null && Runtime.getRuntime().availableProcessors() < 3) {
      System.setProperty(COMMON_POOL_PARALLELISM, "2");
    }
  }

  public static void main(String[] args) {
    // Checked first and told on stderr: with an unknown format, logback has no appender to use.
    String logFormat = System.getenv().getOrDefault("PARLEY_LOG_FORMAT", "text");
    if (!List.of("text", "json").contains(logFormat)) {
      System.err.println("PARLEY_LOG_FORMAT is '" + logFormat + "'; it must be 'text' or 'json'.");
      System.exit(1);
    }
    String command = args.length == 0 ? "run" : args[0];
    try {
      switch (command) {
        case "run" -> run();
        case "schema" -> schema(args.length > 1 ? args[1] : "");
        default -> {
          System.err.println("usage: parley [run | schema apply | schema print]");
          System.exit(2);
        }
      }
    } catch (StartupFailure failure) {
      log.error(failure.getMessage());
      System.exit(1);
    }
  }

  static Config loadConfig() {
    String profile = System.getenv().getOrDefault("PARLEY_PROFILE", "production");
    if (!List.of("dev", "production").contains(profile)) {
      throw new StartupFailure(
          "PARLEY_PROFILE is '" + profile + "'; it must be 'dev' or 'production'.");
    }
    try {
      Config config = ConfigFactory.load(profile);
      // Read here, before anything starts, so a bad value stops the node with one clear line
      // instead of failing each entity or connection that reads it later.
      ChatSettings.from(config);
      DocumentSettings.from(config);
      CursorCheckpoints.Settings.from(config);
      return config;
    } catch (ConfigException | IllegalArgumentException e) {
      throw new StartupFailure("The configuration is invalid: " + e.getMessage());
    }
  }

  private static void run() {
    long startNanos = System.nanoTime();
    Config config = loadConfig();
    Settings settings = Settings.from(config);
    AtomicReference<ActorSystem<Void>> system = new AtomicReference<>();

    EmbeddedCassandra embedded = null;
    List<InetSocketAddress> contactPoints = settings.cassandra().contactPoints();
    if (settings.cassandra().embeddedWanted()) {
      embedded = EmbeddedCassandra.start(settings.cassandra().embedded());
      contactPoints = List.of(embedded.contactPoint());
      stopAfterNode(embedded, system);
    }

    try (CqlSession session = CassandraConnection.open(settings.cassandra(), contactPoints)) {
      CassandraSchema schema = CassandraSchema.of(settings.cassandra());
      if (settings.cassandra().applySchemaOnStart()) {
        schema.apply(session);
      }
      schema.verify(session);
    }

    Config nodeConfig = nodeOverrides(contactPoints).withFallback(config);
    requirePortsFree(settings, nodeConfig);
    CompletableFuture<ServerBinding> started = new CompletableFuture<>();
    try {
      system.set(ActorSystem.create(Guardian.create(settings, started), "Parley", nodeConfig));
    } catch (RuntimeException e) {
      throw explainSystemFailure(e, nodeConfig);
    }
    try {
      started.get(START_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof StartupFailure f
          ? f
          : new StartupFailure("The node failed to start: " + HttpServer.rootMessage(e));
    } catch (TimeoutException e) {
      throw new StartupFailure("The node did not bind its ports within " + START_TIMEOUT);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new StartupFailure("Interrupted during start-up");
    }
    log.info(
        "Parley node {} serving http://{}:{} in {} ms (profile {}, Cassandra {}, common pool of {})",
        system.get().address(),
        settings.http().iface(),
        settings.http().port(),
        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos),
        settings.profile(),
        CassandraConnection.describe(contactPoints),
        ForkJoinPool.getCommonPoolParallelism());
  }

  private static void schema(String action) {
    Settings.Cassandra cassandra = Settings.Cassandra.from(loadConfig());
    CassandraSchema schema = CassandraSchema.of(cassandra);
    switch (action) {
      case "print" -> schema.statements().forEach(s -> System.out.println(s + ";\n"));
      case "apply" -> {
        if (cassandra.embeddedWanted()) {
          throw new StartupFailure(
              "`schema apply` needs PARLEY_CASSANDRA_CONTACT_POINTS (the embedded Cassandra"
                  + " of `run` in the dev profile applies the schema itself).");
        }
        try (CqlSession session = CassandraConnection.open(cassandra, cassandra.contactPoints())) {
          schema.apply(session);
          schema.verify(session);
        }
      }
      default -> {
        System.err.println("usage: parley schema [apply | print]");
        System.exit(2);
      }
    }
  }

  /**
   * Checks the node's ports before the actor system binds them: a port in use then ends the
   * node with one line naming the port and the variable that moves it, not a bind stack trace.
   */
  private static void requirePortsFree(Settings settings, Config config) {
    requirePortFree(
        settings.http().iface(), settings.http().port(), "clients", "PARLEY_HTTP_PORT");
    requirePortFree(
        config.getString("pekko.management.http.hostname"),
        config.getInt("pekko.management.http.port"),
        "Pekko Management",
        "PARLEY_MANAGEMENT_PORT");
    requirePortFree(
        config.getString("pekko.remote.artery.canonical.hostname"),
        config.getInt("pekko.remote.artery.canonical.port"),
        "cluster remoting",
        "PARLEY_REMOTE_PORT");
  }

  private static void requirePortFree(String host, int port, String purpose, String variable) {
    if (port == 0) {
      return;
    }
    try (ServerSocket socket = new ServerSocket()) {
      socket.setReuseAddress(true);
      socket.bind(new InetSocketAddress(host, port));
    } catch (IOException e) {
      throw new StartupFailure(
          "Cannot listen for "
              + purpose
              + " on "
              + host
              + ":"
              + port
              + " ("
              + e.getMessage()
              + "). Stop what holds the port or set "
              + variable
              + ".");
    }
  }

  /** Settings known only at start-up: where Cassandra is. */
  private static Config nodeOverrides(List<InetSocketAddress> contactPoints) {
    List<String> points =
        contactPoints.stream().map(cp -> cp.getHostString() + ":" + cp.getPort()).toList();
    return ConfigFactory.parseMap(
        Map.of("datastax-java-driver.basic.contact-points", ConfigValueFactory.fromIterable(points)));
  }

  private static StartupFailure explainSystemFailure(RuntimeException e, Config config) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof BindException) {
        return new StartupFailure(
            "Cannot bind cluster remoting on "
                + config.getString("pekko.remote.artery.canonical.hostname")
                + ":"
                + config.getInt("pekko.remote.artery.canonical.port")
                + " ("
                + t.getMessage()
                + "). Another node may be running here; set PARLEY_HOST or PARLEY_REMOTE_PORT.");
      }
    }
    return new StartupFailure("The actor system failed to start: " + HttpServer.rootMessage(e));
  }

  /**
   * The node's JVM shutdown (Ctrl-C, SIGTERM) runs coordinated shutdown; Cassandra must
   * outlive it so in-flight journal writes complete, so it is stopped only after the actor
   * system has terminated.
   */
  private static void stopAfterNode(
      EmbeddedCassandra embedded, AtomicReference<ActorSystem<Void>> system) {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  ActorSystem<Void> running = system.get();
                  if (running != null) {
                    try {
                      running.getWhenTerminated().toCompletableFuture().get(60, TimeUnit.SECONDS);
                    } catch (Exception e) {
                      log.warn("The node did not terminate in time; stopping Cassandra anyway");
                    }
                  }
                  embedded.close();
                },
                "parley-embedded-cassandra-stop"));
  }
}
