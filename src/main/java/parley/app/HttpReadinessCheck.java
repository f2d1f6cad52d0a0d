package parley.app;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;

/** Pekko Management readiness check: ready only while the client port is bound and open. */
public final class HttpReadinessCheck implements Supplier<CompletionStage<Boolean>> {

  private final NodeStatus status;

  public HttpReadinessCheck(ActorSystem system) {
    this.status = NodeStatus.get(Adapter.toTyped(system));
  }

  @Override
  public CompletionStage<Boolean> get() {
    return CompletableFuture.completedFuture(status.serving());
  }
}
