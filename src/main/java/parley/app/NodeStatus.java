package parley.app;

import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * Whether this node serves clients: true once the client port is bound, false again as soon
 * as coordinated shutdown starts, so a load balancer stops routing here before sockets close.
 */
public final class NodeStatus implements Extension {

  private final AtomicBoolean serving = new AtomicBoolean(false);

  public boolean serving() {
    return serving.get();
  }

  void serving(boolean value) {
    serving.set(value);
  }

  public static NodeStatus get(ActorSystem<?> system) {
    return Id.INSTANCE.apply(system);
  }

  private static final class Id extends ExtensionId<NodeStatus> {
    static final Id INSTANCE = new Id();

    @Override
    public NodeStatus createExtension(ActorSystem<?> system) {
      return new NodeStatus();
    }
  }
}
