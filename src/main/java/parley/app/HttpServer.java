package parley.app;

import java.time.Duration;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.server.Route;

/** Binds the client port and ties it to coordinated shutdown. */
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
        .bind(routes)
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
