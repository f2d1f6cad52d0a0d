package parley.app;

import java.time.Duration;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.server.Route;
import parley.transport.RequestDeadline;

/**
 * Binds the client port and ties it to coordinated shutdown. Every connection must deliver a
 * request head within {@code parley.http.request-header-timeout} ({@link RequestDeadline}).
 */
public final class HttpServer {

  private HttpServer() {}

  public static CompletionStage<ServerBinding> start(
      ActorSystem<?> system, Settings.Http settings, Route routes) {
    NodeStatus status = NodeStatus.get(system);
    CoordinatedShutdown shutdown = CoordinatedShutdown.get(system);
    // Readiness drops first, so new clients go elsewhere while this node drains.
    shutdown.addTask(
        CoordinatedShutdown.PhaseBeforeServiceUnbind(),
        "parley-not-ready",
        () -> {
          status.serving(false);
          return java.util.concurrent.CompletableFuture.completedFuture(Done.getInstance());
        });
    return Http.get(system)
        .newServerAt(settings.iface(), settings.port())
        // Each connection's handler is preceded by the request-head deadline (Slowloris).
        .bindFlow(RequestDeadline.of(settings.requestHeaderTimeout()).join(routes.flow(system)))
        .handle(
            (binding, error) -> {
              if (error != null) {
                throw new StartupFailure(
                    "Cannot listen for clients on "
                        + settings.iface()
                        + ":"
                        + settings.port()
                        + " ("
                        + rootMessage(error)
                        + "). Stop what holds the port or set PARLEY_HTTP_PORT.");
              }
              binding.addToCoordinatedShutdown(Duration.ofSeconds(10), system);
              status.serving(true);
              return binding;
            });
  }

  static String rootMessage(Throwable error) {
    Throwable t = error;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t.getClass().getSimpleName() + ": " + t.getMessage();
  }
}
