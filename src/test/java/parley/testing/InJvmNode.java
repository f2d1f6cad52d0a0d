package parley.testing;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.InetSocketAddress;
import java.net.URI;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.ServerBinding;
import parley.app.Guardian;
import parley.app.Settings;

/**
 * A whole Parley node (guardian, entities, hub, HTTP, management) inside the test JVM, with
 * the dev profile's settings, on free ports of 127.0.0.1, against {@link TestCassandra}.
 * Several of them form a real cluster over loopback.
 */
public final class InJvmNode implements AutoCloseable {

  public final ActorSystem<Void> system;
  public final int httpPort;
  public final int remotePort;

  private InJvmNode(ActorSystem<Void> system, int httpPort, int remotePort) {
    this.system = system;
    this.httpPort = httpPort;
    this.remotePort = remotePort;
  }

  /**
   * Starts a node. {@code keyspaces} is a {@link TestCassandra#keyspacesFor} config (share
   * one between nodes of a cluster and between a node and its restart); {@code seedPort} is
   * the remoting port of the cluster's first node, or 0 to form a cluster of one.
   */
  public static InJvmNode start(Config keyspaces, int remotePort, int seedPort, Config extra)
      throws Exception {
    int port = remotePort == 0 ? NodeProcess.freePort() : remotePort;
    String seed = "pekko://Parley@127.0.0.1:" + (seedPort == 0 ? port : seedPort);
    Config config =
        extra
            .withFallback(
                ConfigFactory.parseString(
                    "pekko.remote.artery.canonical.port = "
                        + port
                        + "\nparley.http.port = "
                        + NodeProcess.freePort()
                        + "\nparley.http.websocket-port = "
                        + (NETTY_WEBSOCKETS ? NodeProcess.freePort() : 0)
                        + "\npekko.management.http.port = "
                        + NodeProcess.freePort()
                        + "\nparley.cluster.seed-nodes = \""
                        + seed
                        + "\""
                        + """

                        pekko.remote.artery.canonical.hostname = "127.0.0.1"
                        pekko.cluster.jmx.multi-mbeans-in-same-jvm = on
                        pekko.coordinated-shutdown.exit-jvm = off
                        pekko.coordinated-shutdown.run-by-jvm-shutdown-hook = off
                        pekko.cluster.run-coordinated-shutdown-when-down = off
                        pekko.cluster.split-brain-resolver.stable-after = 3s
                        parley.chat.hub-renew-interval = 1s
                        parley.chat.session-renew-interval = 1s
                        parley.auth.server-key = "test-server-key-for-application-backends"
                        """))
            .withFallback(keyspaces)
            .withFallback(ConfigFactory.load("dev"))
            .resolve();
    Settings settings = Settings.from(config);
    CompletableFuture<ServerBinding> started = new CompletableFuture<>();
    ActorSystem<Void> system = ActorSystem.create(Guardian.create(settings, started), "Parley", config);
    ServerBinding binding = started.get(60, TimeUnit.SECONDS);
    InetSocketAddress address = binding.localAddress();
    return new InJvmNode(system, address.getPort(), port);
  }

  public static InJvmNode start(Config keyspaces) throws Exception {
    return start(keyspaces, 0, 0, ConfigFactory.empty());
  }

  public static final String SERVER_KEY = "test-server-key-for-application-backends";

  public URI http() {
    return URI.create("http://127.0.0.1:" + httpPort);
  }

  /** A dev token for {@code user}, from the node's dev token endpoint. */
  public String token(String user) {
    return parley.client.ParleyClient.devToken(http(), user);
  }

  /** A REST call as a client makes it: bearer token, JSON body, optional Idempotency-Key. */
  public java.net.http.HttpResponse<String> rest(
      String method, String path, String token, String body, String idempotencyKey) {
    java.net.http.HttpRequest.Builder request =
        java.net.http.HttpRequest.newBuilder(http().resolve(path))
            .header("Authorization", "Bearer " + token)
            .header("Content-Type", "application/json")
            .method(
                method,
                body == null
                    ? java.net.http.HttpRequest.BodyPublishers.noBody()
                    : java.net.http.HttpRequest.BodyPublishers.ofString(body));
    if (idempotencyKey != null) {
      request.header("Idempotency-Key", idempotencyKey);
    }
    try {
      return HTTP.send(request.build(), java.net.http.HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static final java.net.http.HttpClient HTTP = java.net.http.HttpClient.newHttpClient();

  /** Pekko Management ({@code /ready}, {@code /alive}) on the port the node was started with. */
  public URI management() {
    return URI.create("http://127.0.0.1:" + system.settings().config().getInt("pekko.management.http.port"));
  }

  /**
   * Where clients open WebSockets: the client port, or with {@code -Dparley.test.websocket=netty}
   * the Netty WebSocket port, so any suite runs against either edge unchanged.
   */
  public URI ws() {
    int websocketPort = system.settings().config().getInt("parley.http.websocket-port");
    return URI.create("ws://127.0.0.1:" + (websocketPort == 0 ? httpPort : websocketPort) + "/v1/ws");
  }

  /** Whether {@link #ws()} names the node's Netty WebSocket port. */
  public boolean onWebSocketPort() {
    return system.settings().config().getInt("parley.http.websocket-port") != 0;
  }

  /** {@code config} with a WebSocket port on Netty, which {@link #ws()} then names. */
  public static Config withWebSocketPort(Config config) {
    return ConfigFactory.parseString("parley.http.websocket-port = " + NodeProcess.freePort()).withFallback(config);
  }

  /** The WebSocket on the client port (Pekko HTTP), whichever edge {@link #ws()} names. */
  public URI clientPortWs() {
    return URI.create("ws://127.0.0.1:" + httpPort + "/v1/ws");
  }

  /** Whether this run's suites open their WebSockets on the Netty port. */
  public static final boolean NETTY_WEBSOCKETS = "netty".equals(System.getProperty("parley.test.websocket"));

  @Override
  public void close() throws Exception {
    system.terminate();
    system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  public static Duration timeout() {
    return Duration.ofSeconds(15);
  }
}
