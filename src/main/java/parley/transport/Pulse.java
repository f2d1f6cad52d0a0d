package parley.transport;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import parley.chat.ChatSettings;

/**
 * One timer wheel per node for the sessions' periodic work (pings, heartbeat deadlines,
 * presence renewals, token expiry). Each session keeps one {@link Beat} here, at the first
 * moment it has something to do, instead of three or four actor timers: with tens of
 * thousands of idle sessions, Pekko's scheduler walking its fine wheel (10 ms a slot, 5 s a
 * turn) past every timer of every session was the largest share of an idle node's CPU
 * (docs/benchmarks.md). This wheel turns once per {@link #resolution()} and sees each beat
 * when it is due; a beat further away than one turn comes early and the session sets the next.
 */
public final class Pulse implements Extension {

  private static final int SLOTS = 64;

  /** One session's next due moment; cancelled when the session sets another or stops. */
  public static final class Beat {
    private final ActorRef<?> target;
    private final Object message;
    private volatile boolean cancelled;

    private Beat(ActorRef<?> target, Object message) {
      this.target = target;
      this.message = message;
    }

    public void cancel() {
      cancelled = true;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private void fire() {
      if (!cancelled) {
        ((ActorRef) target).tell(message);
      }
    }
  }

  private final long resolutionNanos;
  private final List<List<Beat>> slots = new ArrayList<>(SLOTS);
  /** Turns so far; the slot {@code tick % SLOTS} is the one fired next. Guarded by {@code this}. */
  private long tick;

  private Pulse(ActorSystem<?> system) {
    ChatSettings settings = ChatSettings.from(system.settings().config());
    Duration resolution = resolutionFor(settings.heartbeatInterval(), settings.sessionRenewInterval());
    this.resolutionNanos = resolution.toNanos();
    for (int i = 0; i < SLOTS; i++) {
      slots.add(new ArrayList<>());
    }
    system.scheduler().scheduleAtFixedRate(resolution, resolution, this::turn, system.executionContext());
  }

  /**
   * A tenth of the shortest period the sessions keep, between 10 ms and a second: a ping or a
   * deadline is at most that late (a second, with the default 30 s heartbeat).
   */
  static Duration resolutionFor(Duration heartbeatInterval, Duration renewInterval) {
    Duration tenth = (heartbeatInterval.compareTo(renewInterval) < 0 ? heartbeatInterval : renewInterval).dividedBy(10);
    if (tenth.compareTo(Duration.ofMillis(10)) < 0) {
      return Duration.ofMillis(10);
    }
    return tenth.compareTo(Duration.ofSeconds(1)) > 0 ? Duration.ofSeconds(1) : tenth;
  }

  public Duration resolution() {
    return Duration.ofNanos(resolutionNanos);
  }

  /** Tells {@code target} {@code message} in about {@code delayNanos} (at most one turn of the wheel). */
  public <T> Beat schedule(ActorRef<T> target, T message, long delayNanos) {
    Beat beat = new Beat(target, message);
    long turns = Math.max(1, Math.min(SLOTS - 1, (delayNanos + resolutionNanos - 1) / resolutionNanos));
    synchronized (this) {
      slots.get((int) ((tick + turns) % SLOTS)).add(beat);
    }
    return beat;
  }

  private void turn() {
    List<Beat> due;
    synchronized (this) {
      int slot = (int) (++tick % SLOTS);
      due = slots.get(slot);
      slots.set(slot, new ArrayList<>());
    }
    for (Beat beat : due) {
      beat.fire();
    }
  }

  public static Pulse get(ActorSystem<?> system) {
    return Id.INSTANCE.apply(system);
  }

  private static final class Id extends ExtensionId<Pulse> {
    static final Id INSTANCE = new Id();

    @Override
    public Pulse createExtension(ActorSystem<?> system) {
      return new Pulse(system);
    }
  }
}
