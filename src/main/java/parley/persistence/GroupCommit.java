package parley.persistence;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.ToIntFunction;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Group commit (design rule 3), written once for every entity that journals: the sharded
 * entity is this front over its event-sourced journal actor. While one batch is being written
 * the front gathers the writes that arrive, and hands them over as the next batch, which the
 * journal actor decides one by one and persists as one atomic write: one Cassandra round trip
 * per batch, not per write. Everything that is not a write goes to the journal actor at once.
 *
 * <p>If the journal actor (or another child the entity watches) stops, a failed write or
 * recovery, every write the front holds is answered {@code unavailable} and the entity stops;
 * the next message starts it afresh from its journal.
 *
 * @param <C> the entity's commands
 * @param <W> its writes, the commands that are batched
 */
public final class GroupCommit<C, W extends C> {

  /**
   * How an entity's commands meet the front: which are writes, how a batch of them is sent to
   * the journal actor, which command says a batch is done, and how a held write is refused.
   * {@code stop}, if not null, is the sharding stop message: the front stops once it has
   * written what it holds, so a hand-off loses no accepted write.
   */
  public record Spec<C, W extends C>(
      Class<C> commands,
      Class<W> writes,
      Class<? extends C> done,
      Class<? extends C> stop,
      Function<List<W>, C> batch,
      ToIntFunction<W> weight,
      Consumer<W> unavailable,
      int maxBatch,
      int maxBatchBytes) {}

  public static <C, W extends C> Behavior<C> front(ActorRef<C> journal, Spec<C, W> spec) {
    return new GroupCommit<>(journal, spec).behavior();
  }

  private final ActorRef<C> journal;
  private final Spec<C, W> spec;
  private final ArrayDeque<W> pending = new ArrayDeque<>();
  private List<W> inFlight = List.of();
  private boolean stopping;

  private GroupCommit(ActorRef<C> journal, Spec<C, W> spec) {
    this.journal = journal;
    this.spec = spec;
  }

  private Behavior<C> behavior() {
    var builder = Behaviors.receive(spec.commands())
        .onMessage(spec.writes(), write -> {
          pending.add(write);
          if (inFlight.isEmpty()) {
            flush();
          }
          return Behaviors.same();
        })
        .onMessage(spec.done(), done -> {
          inFlight = List.of();
          flush();
          return stopping && inFlight.isEmpty() ? Behaviors.stopped() : Behaviors.same();
        });
    if (spec.stop() != null) {
      builder = builder.onMessage(spec.stop(), stop -> {
        stopping = true;
        return inFlight.isEmpty() ? Behaviors.stopped() : Behaviors.same();
      });
    }
    return builder
        .onSignal(Terminated.class, this::onChildStopped)
        .onAnyMessage(message -> {
          journal.tell(message);
          return Behaviors.same();
        })
        .build();
  }

  private void flush() {
    if (pending.isEmpty()) {
      return;
    }
    List<W> batch = new ArrayList<>();
    int bytes = 0;
    while (!pending.isEmpty()
        && batch.size() < spec.maxBatch()
        && (batch.isEmpty() || bytes + spec.weight().applyAsInt(pending.peek()) <= spec.maxBatchBytes())) {
      W next = pending.poll();
      bytes += spec.weight().applyAsInt(next);
      batch.add(next);
    }
    inFlight = Collections.unmodifiableList(batch);
    journal.tell(spec.batch().apply(inFlight));
  }

  private Behavior<C> onChildStopped(Terminated terminated) {
    inFlight.forEach(spec.unavailable());
    pending.forEach(spec.unavailable());
    return Behaviors.stopped();
  }
}
