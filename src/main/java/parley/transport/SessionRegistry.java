package parley.transport;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * The sessions open on this node, so that a node shutting down can tell every client to
 * reconnect elsewhere (WebSocket close 1012, a {@code close} event for SSE and long-poll)
 * before its shards are handed off.
 */
public final class SessionRegistry implements Extension {

  private static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(5);

  private final Set<ActorRef<Session.Command>> sessions = ConcurrentHashMap.newKeySet();

  /** Completes when the last session has ended after shutdown began. */
  private final CompletableFuture<Done> drained = new CompletableFuture<>();

  private volatile boolean draining;

  private SessionRegistry(ActorSystem<?> system) {
    CoordinatedShutdown.get(system)
        .addTask(
            CoordinatedShutdown.PhaseServiceUnbind(),
            "parley-drain-sessions",
            () -> {
              draining = true;
              sessions.forEach(session -> session.tell(new Session.Drain()));
              if (sessions.isEmpty()) {
                drained.complete(Done.getInstance());
              }
              return drained
                  .completeOnTimeout(Done.getInstance(), DRAIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            });
  }

  void register(ActorRef<Session.Command> session) {
    sessions.add(session);
  }

  void unregister(ActorRef<Session.Command> session) {
    if (sessions.remove(session) && draining && sessions.isEmpty()) {
      drained.complete(Done.getInstance());
    }
  }

  public int size() {
    return sessions.size();
  }

  public static SessionRegistry get(ActorSystem<?> system) {
    return Id.INSTANCE.apply(system);
  }

  private static final class Id extends ExtensionId<SessionRegistry> {
    static final Id INSTANCE = new Id();

    @Override
    public SessionRegistry createExtension(ActorSystem<?> system) {
      return new SessionRegistry(system);
    }
  }
}
