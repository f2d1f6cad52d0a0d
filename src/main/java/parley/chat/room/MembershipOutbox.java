package parley.chat.room;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.persistence.cassandra.query.javadsl.CassandraReadJournal;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.persistence.query.javadsl.CurrentEventsByPersistenceIdQuery;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.Effect;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;
import org.apache.pekko.stream.javadsl.Sink;
import parley.chat.user.UserEntity;
import parley.serialization.CborSerializable;

/**
 * Makes sure every user entity learns each change of its membership in one room (a join, a
 * leave, a removal) at least once, whatever crashes: the room holds the membership, so the
 * room, not the connection that asked for the change, sees to it that the user's room list
 * follows.
 *
 * <p><b>Why a second journal, fed from the room's.</b> The room's journal is its timeline:
 * each of its events is a client-visible position, gap-free (design rule 4), so "the user
 * acknowledged" cannot be written there. The outbox is a small event-sourced child of the room
 * with a journal of its own ({@code room-outbox|<room>}) holding the changes not yet
 * acknowledged and {@code through}, the room position up to which every change is among them
 * or acknowledged. The room's journal stays the source of truth: after each write holding a
 * membership change the room hands the changes over at once, and when the room starts it tells
 * the outbox its last membership position; if the outbox is behind (the node died between the
 * room's write and the outbox's), it reads the missing range of the room's journal. That range
 * is read only then, and only up to the last membership change, never the whole timeline.
 *
 * <p>Each pending change goes to its user entity, asked again with backoff until it answers;
 * an answer is journaled and ends the retries. The user entity takes a change idempotently and
 * in order (it keeps the position of its latest join and departure), so a copy sent twice, or
 * a late copy of an older change, does no harm. Only the newest change per user is kept: it
 * is the one that matters. While changes wait, the outbox keeps its room awake through the
 * room's shard, or an idle room would be passivated with them and nobody would send them until
 * the room was used again.
 */
public final class MembershipOutbox
    extends EventSourcedBehavior<MembershipOutbox.Command, MembershipOutbox.Event, MembershipOutbox.State> {

  /**
   * How long a user entity has to answer, and the retry backoff. Fixed, not settings: they only
   * bound how soon a user entity that was unreachable (its node failing over) is asked again.
   */
  static final Duration ASK_TIMEOUT = Duration.ofSeconds(5);

  static final Duration FIRST_RETRY = Duration.ofMillis(500);

  static final Duration LAST_RETRY = Duration.ofSeconds(30);

  public static PersistenceId persistenceId(String roomId) {
    return PersistenceId.of("room-outbox", roomId);
  }

  /** What the outbox reaches outside its room. */
  public record Links(
      Function<String, RecipientRef<UserEntity.Command>> users,
      Runnable keepRoomAwake,
      CurrentEventsByPersistenceIdQuery roomJournal) {

    /** The user entities and the room through Cluster Sharding, the room's journal in Cassandra. */
    public static Links sharded(ActorSystem<?> system, String roomId) {
      ClusterSharding sharding = ClusterSharding.get(system);
      return new Links(
          user -> sharding.entityRefFor(UserEntity.ENTITY_KEY, user),
          () -> sharding.entityRefFor(RoomEntity.ENTITY_KEY, roomId).tell(new RoomEntity.KeepAwake()),
          PersistenceQuery.get(system)
              .getReadJournalFor(CassandraReadJournal.class, CassandraReadJournal.Identifier()));
    }
  }

  static Behavior<Command> create(String roomId, Links links) {
    return Behaviors.setup(
        context -> Behaviors.withTimers(timers -> new MembershipOutbox(roomId, links, context, timers)));
  }

  /** One change of {@code user}'s membership, at room position {@code seq}. */
  public record Notice(String user, boolean joined, long seq) implements CborSerializable {}

  /** The change an event of the room makes to someone's membership, if any. */
  static Optional<Notice> notice(RoomEntity.Event event, long seq) {
    if (event instanceof RoomEntity.RoomCreated e) {
      return Optional.of(new Notice(e.owner(), true, seq));
    } else if (event instanceof RoomEntity.MemberJoined e) {
      return Optional.of(new Notice(e.user(), true, seq));
    } else if (event instanceof RoomEntity.MemberLeft e) {
      return Optional.of(new Notice(e.user(), false, seq));
    } else if (event instanceof RoomEntity.MemberRemoved e) {
      return Optional.of(new Notice(e.user(), false, seq));
    }
    return Optional.empty();
  }

  // ---------------------------------------------------------------------------------------
  // Commands (all from the room or from the outbox itself; none crosses nodes)

  public sealed interface Command extends CborSerializable {}

  /**
   * The room wrote {@code notices}, the last at {@code upTo}; its membership changed last at
   * {@code previous} before them. If the outbox is not through {@code previous}, something was
   * missed and it reads the room's journal instead.
   */
  record Changed(List<Notice> notices, long previous, long upTo) implements Command {}

  /** The room recovered; its membership changed last at {@code lastMembershipSeq}. */
  record RoomRecovered(long lastMembershipSeq) implements Command {}

  private record CaughtUp(long upTo, List<Notice> notices, Throwable failure) implements Command {}

  private record Answered(Notice notice) implements Command {}

  private record Unanswered(Notice notice) implements Command {}

  private record Retry() implements Command {}

  // ---------------------------------------------------------------------------------------
  // Events

  public sealed interface Event extends CborSerializable {
    String roomId();
  }

  /** {@code notices} are to be delivered; every change up to {@code through} is accounted for. */
  public record Enqueued(String roomId, List<Notice> notices, long through) implements Event {}

  /** {@code user}'s entity took the change at {@code seq}. */
  public record Delivered(String roomId, String user, long seq) implements Event {}

  // ---------------------------------------------------------------------------------------
  // State

  /** The newest undelivered change per user, and the room position accounted for. */
  public record State(long through, Map<String, Notice> pending) implements CborSerializable {

    public State {
      pending = Map.copyOf(pending);
    }

    static State empty() {
      return new State(0, Map.of());
    }

    State enqueue(List<Notice> notices, long upTo) {
      Map<String, Notice> next = new HashMap<>(pending);
      for (Notice n : notices) {
        next.merge(n.user(), n, (a, b) -> b.seq() > a.seq() ? b : a);
      }
      return new State(Math.max(through, upTo), next);
    }

    State delivered(String user, long seq) {
      Notice waiting = pending.get(user);
      if (waiting == null || waiting.seq() != seq) {
        return this;
      }
      Map<String, Notice> next = new HashMap<>(pending);
      next.remove(user);
      return new State(through, next);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Behavior

  private final String roomId;
  private final Links links;
  private final ActorContext<Command> context;
  private final TimerScheduler<Command> timers;

  /** Users asked and not yet answered; in memory, since after a restart everything is asked again. */
  private final Set<String> asking = new HashSet<>();

  /** Reading the room's journal up to this position; 0 when not reading. */
  private long catchingUpTo;

  /** The last read of the room's journal failed; the next retry reads again. */
  private boolean readFailed;

  private Duration backoff = FIRST_RETRY;

  private MembershipOutbox(
      String roomId, Links links, ActorContext<Command> context, TimerScheduler<Command> timers) {
    super(persistenceId(roomId));
    this.roomId = roomId;
    this.links = links;
    this.context = context;
    this.timers = timers;
  }

  @Override
  public State emptyState() {
    return State.empty();
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return RetentionCriteria.snapshotEvery(100, 2);
  }

  @Override
  public SignalHandler<State> signalHandler() {
    return newSignalHandlerBuilder().onSignal(RecoveryCompleted.instance(), this::deliver).build();
  }

  @Override
  public CommandHandler<Command, Event, State> commandHandler() {
    return newCommandHandlerBuilder()
        .forAnyState()
        .onCommand(Changed.class, this::onChanged)
        .onCommand(RoomRecovered.class, (state, r) -> catchUpIfBehind(state, r.lastMembershipSeq()))
        .onCommand(CaughtUp.class, this::onCaughtUp)
        .onCommand(Answered.class, this::onAnswered)
        .onCommand(Unanswered.class, (state, u) -> {
          asking.remove(u.notice().user());
          retryLater();
          return Effect().none();
        })
        .onCommand(Retry.class, (state, r) -> {
          if (readFailed) {
            readFailed = false;
            readRoomJournal(state.through() + 1, catchingUpTo);
          }
          if (!state.pending().isEmpty()) {
            links.keepRoomAwake().run();
          }
          deliver(state);
          return Effect().none();
        })
        .build();
  }

  private Effect<Event, State> onChanged(State state, Changed changed) {
    if (catchingUpTo > 0) {
      // The journal read ends at an earlier position: take this after it.
      return Effect().stash();
    }
    if (state.through() < changed.previous()) {
      return catchUpIfBehind(state, changed.upTo());
    }
    return Effect()
        .persist(new Enqueued(roomId, changed.notices(), changed.upTo()))
        .thenRun(this::deliver);
  }

  private Effect<Event, State> catchUpIfBehind(State state, long lastMembershipSeq) {
    if (state.through() >= lastMembershipSeq || catchingUpTo >= lastMembershipSeq) {
      return Effect().none();
    }
    catchingUpTo = lastMembershipSeq;
    context.getLog().info("Room {}: membership changes {}..{} are read from its journal", roomId, state.through() + 1, lastMembershipSeq);
    readRoomJournal(state.through() + 1, lastMembershipSeq);
    return Effect().none();
  }

  private void readRoomJournal(long from, long to) {
    context.pipeToSelf(
        links.roomJournal()
            .currentEventsByPersistenceId(RoomEntity.persistenceId(roomId).id(), from, to)
            .map(envelope -> notice((RoomEntity.Event) envelope.event(), envelope.sequenceNr()))
            .filter(Optional::isPresent)
            .map(Optional::get)
            .runWith(Sink.seq(), context.getSystem()),
        (notices, failure) -> new CaughtUp(to, notices, failure));
  }

  private Effect<Event, State> onCaughtUp(State state, CaughtUp caughtUp) {
    if (caughtUp.upTo() != catchingUpTo) {
      return Effect().none();
    }
    if (caughtUp.failure() != null) {
      context.getLog().warn("Room {}: reading its journal for membership changes failed, retrying: {}", roomId, caughtUp.failure().toString());
      readFailed = true;
      retryLater();
      return Effect().none();
    }
    catchingUpTo = 0;
    return Effect()
        .persist(new Enqueued(roomId, caughtUp.notices(), caughtUp.upTo()))
        .thenRun(this::deliver)
        .thenUnstashAll();
  }

  private Effect<Event, State> onAnswered(State state, Answered answered) {
    Notice notice = answered.notice();
    asking.remove(notice.user());
    backoff = FIRST_RETRY;
    Notice waiting = state.pending().get(notice.user());
    if (waiting == null) {
      return Effect().none();
    }
    if (waiting.seq() != notice.seq()) {
      // A newer change of the same user came meanwhile: that one goes now.
      deliver(state);
      return Effect().none();
    }
    return Effect().persist(new Delivered(roomId, notice.user(), notice.seq()));
  }

  /** Asks every user with a pending change who is not being asked already. */
  private void deliver(State state) {
    for (Notice notice : state.pending().values()) {
      if (asking.add(notice.user())) {
        RecipientRef<UserEntity.Command> user = links.users().apply(notice.user());
        context.ask(
            UserEntity.Ack.class,
            user,
            ASK_TIMEOUT,
            replyTo -> notice.joined()
                ? new UserEntity.RoomJoined(roomId, notice.seq(), replyTo)
                : new UserEntity.RoomLeft(roomId, notice.seq(), replyTo),
            (ack, failure) -> failure == null ? new Answered(notice) : new Unanswered(notice));
      }
    }
  }

  private void retryLater() {
    if (!timers.isTimerActive("retry")) {
      timers.startSingleTimer("retry", new Retry(), backoff);
      backoff = backoff.multipliedBy(2).compareTo(LAST_RETRY) > 0 ? LAST_RETRY : backoff.multipliedBy(2);
    }
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onEvent(Enqueued.class, (state, e) -> state.enqueue(e.notices(), e.through()))
        .onEvent(Delivered.class, (state, e) -> state.delivered(e.user(), e.seq()))
        .build();
  }
}
