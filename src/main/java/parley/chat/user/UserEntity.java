package parley.chat.user;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import parley.chat.room.RoomEntity;
import parley.chat.room.RoomPush;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.Effect;
import org.apache.pekko.persistence.typed.javadsl.EffectBuilder;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandlerBuilder;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import parley.chat.ChatSettings;
import parley.cluster.ConsistentHashingShardAllocationStrategy;
import parley.serialization.CborSerializable;

/**
 * One user's place in the chat outside any room's timeline (design rule 4): the rooms the user
 * belongs to, with a read marker and a delivery marker in each, and when the user was last seen.
 * Unread counts follow from a room's read marker and that room's latest seq, which the room
 * knows; this entity never asks a room anything.
 *
 * <p>Both markers only move forward: a lower (or equal) seq is answered with the current marker
 * and writes nothing, so a client on a stale device or a retried request cannot move a marker
 * back. Reading implies delivery: moving the read marker past the delivery marker moves that too.
 *
 * <p>Presence is ephemeral (design rule 10): the live sessions are known in memory only, and
 * only the last-seen time is journaled, when the user's first session ever opens and when the
 * last one ends (for a session whose node died, once its offline grace ran out).
 * Persistence id {@code user|<userId>}.
 *
 * <p>It is also the one path by which a user's job pushes reach their connections ({@link
 * Relay}), and keeps in memory the latest push of each of their recent jobs ({@link JobWindow})
 * so that a long-poll or SSE client catches up on what changed while it was away ({@link
 * FollowJobs}). That window is not journaled (the jobs' own journals are the record; a client
 * that finds it lost re-reads its jobs), so it costs no write.
 */
public final class UserEntity
    extends EventSourcedBehavior<UserEntity.Command, UserEntity.Event, UserEntity.State> {

  public static final EntityTypeKey<Command> ENTITY_KEY =
      EntityTypeKey.create(Command.class, "user");

  public static void init(ActorSystem<?> system) {
    Duration offlineGrace = ChatSettings.from(system.settings().config()).offlineGrace();
    ClusterSharding.get(system)
        .init(
            Entity.of(ENTITY_KEY, entity -> create(entity.getEntityId(), offlineGrace))
                .withAllocationStrategy(ConsistentHashingShardAllocationStrategy.configured(system)));
  }

  public static Behavior<Command> create(String userId, Duration offlineGrace) {
    return create(userId, Clock.systemUTC(), offlineGrace, null);
  }

  /**
   * For tests: the clock stamps last-seen times, and presence announcements go to {@code rooms}
   * instead of the room entities (null: to the room entities).
   */
  static Behavior<Command> create(
      String userId, Clock clock, Duration offlineGrace, Consumer<RoomPush.Ephemeral> rooms) {
    return Behaviors.withTimers(timers -> Behaviors.setup(
        context -> new UserEntity(
            userId, clock, offlineGrace, context, timers, rooms != null ? rooms : roomEntities(context.getSystem()))));
  }

  private static Consumer<RoomPush.Ephemeral> roomEntities(ActorSystem<?> system) {
    ClusterSharding sharding = ClusterSharding.get(system);
    return push -> sharding.entityRefFor(RoomEntity.ENTITY_KEY, push.room()).tell(new RoomEntity.Relay(push));
  }

  // ---------------------------------------------------------------------------------------
  // Commands and replies

  public sealed interface Command extends CborSerializable {}

  /**
   * The room journaled this user's join as {@code seq}. Both markers start at the join, so
   * unread counts start after it. Joining a room the user already belongs to writes nothing,
   * and neither does a join older than the user's latest departure from the room: the room
   * sends each change at least once, so a late copy of an old join must not undo a leave.
   */
  public record RoomJoined(String room, long seq, ActorRef<Ack> replyTo) implements Command {}

  /**
   * The room journaled that the user left or was removed, as {@code seq}; its markers are
   * forgotten. Leaving twice writes nothing, nor does a leave older than the user's join.
   */
  public record RoomLeft(String room, long seq, ActorRef<Ack> replyTo) implements Command {}

  /** Move the read marker to {@code seq}; the caller keeps {@code seq} within the room's log. */
  public record MarkRead(String room, long seq, ActorRef<ReadReply> replyTo) implements Command {}

  /** A client of this user received the room's events up to {@code seq}. */
  public record MarkDelivered(String room, long seq, ActorRef<DeliveryReply> replyTo)
      implements Command {}

  public record GetRooms(ActorRef<Rooms> replyTo) implements Command {}

  /**
   * A session of this user is live. The entity watches {@code session}: when it stops, or its
   * node is downed, the session ends as if {@link SessionClosed} had been sent.
   *
   * <p>Send it again every minute or so while the session lives (a lease renewal, design rule
   * 7): a renewal of a known session writes nothing, but it keeps the entity from being
   * passivated as idle, and it registers the session again with a new incarnation of the entity
   * after a passivation, a rebalance or a failover, which starts knowing no sessions. A renewal
   * ({@code renewal}) that registers the session again is sent what the session missed while
   * this incarnation did not know it: see {@link #catchUp}.
   */
  public record SessionOpened(
      String sessionId, ActorRef<Notice> session, boolean renewal, ActorRef<Presence> replyTo)
      implements Command {}

  /**
   * The session ended. When it was the user's last, the user is offline and last seen now;
   * unless {@code restarting}: its node closed it as it shut down (1012), and its client is
   * reconnecting to another node, so it counts as vanished, like a session of a node that died.
   */
  public record SessionClosed(String sessionId, boolean restarting) implements Command {}

  public record GetPresence(ActorRef<Presence> replyTo) implements Command {}

  /**
   * A push of the user's job {@code jobId} at {@code version} ({@code frame}, rendered by its
   * partition): kept in the job window and handed to every live session and job follower, as
   * {@link Relayed}; nothing is journaled (the partition keeps what matters durable).
   */
  public record Relay(String frame, String jobId, long version) implements Command {}

  /**
   * A long-poll or SSE session follows the user's job pushes: it is answered {@link JobsFrom}
   * with the pushes after {@code after} as counted by the incarnation {@code epoch} (null: the
   * client has no place yet, and starts from now), then is sent each new one as {@link
   * Relayed}, until it stops. Both come by {@code session}, so they arrive in order. Nothing is
   * journaled; a poll session is not online.
   */
  public record FollowJobs(String epoch, long after, ActorRef<Notice> session) implements Command {}

  /** A watched session actor stopped; sent by the watch, never by another actor. */
  private record SessionTerminated(ActorRef<Notice> session) implements Command {}

  /** The offline grace of a session that vanished ran out; sent by a timer, never by another actor. */
  private record GraceEnded(String sessionId) implements Command {}

  /** What the user's live sessions hear from it. */
  public sealed interface Notice extends CborSerializable {}

  /**
   * The user is now in {@code room} (joined on another connection, or a direct message room
   * created by someone else): sessions start following it after {@code seq}.
   */
  public record RoomAdded(String room, long seq) implements Notice {}

  /**
   * A job push for the user's live sessions, at {@code position} of the incarnation
   * {@code epoch}'s job pushes.
   */
  public record Relayed(String frame, String epoch, long position) implements Notice {}

  /**
   * The answer to {@link FollowJobs}: the latest push of each job changed after {@code from},
   * in the order of their positions, and the position of the latest push ({@code position}).
   * {@code reset} is null when nothing after the client's place is missing; otherwise a code
   * ({@code jobs_restarted}: the place was counted by an earlier incarnation; {@code
   * jobs_window}: more jobs changed since than are kept) and the pushes start from what is
   * known. {@code more}: the answer was cut to a page; ask again after its last push.
   */
  public record JobsFrom(String epoch, long from, long position, List<JobPush> pushes, String reset, boolean more)
      implements Notice {}

  /** One job push and its position. */
  public record JobPush(long position, String frame) {}

  public record Ack(String room) implements CborSerializable {}

  public sealed interface ReadReply extends CborSerializable {}

  public sealed interface DeliveryReply extends CborSerializable {}

  /** {@code advanced} is false when the marker was already at or past the requested seq. */
  public record MarkedRead(String room, long readSeq, boolean advanced) implements ReadReply {}

  /** {@code advanced} is false when the marker was already at or past the requested seq. */
  public record MarkedDelivered(String room, long deliveredSeq, boolean advanced)
      implements DeliveryReply {}

  /** A refusal with a stable machine {@code code} (e.g. {@code not_a_member}). */
  public record Rejected(String code, String message) implements ReadReply, DeliveryReply {}

  /** The user's rooms, ordered by room id. */
  public record Rooms(List<RoomMarker> rooms) implements CborSerializable {}

  /** A room the user belongs to, the seq of the join, and the user's two markers in it. */
  public record RoomMarker(String room, long joinedSeq, long readSeq, long deliveredSeq) {}

  /**
   * {@code online}: at least one live session. {@code lastSeen}: when the user's last session
   * ended or, while online, when the latest session opened; null for a user never connected.
   */
  public record Presence(String userId, boolean online, Instant lastSeen)
      implements CborSerializable {}

  // ---------------------------------------------------------------------------------------
  // Events

  public sealed interface Event extends CborSerializable {
    String userId();
  }

  public record JoinedRoom(String userId, String room, long seq) implements Event {}

  /** {@code seq} is the room's position of the departure (0 in events written before it was kept). */
  public record LeftRoom(String userId, String room, long seq) implements Event {}

  public record ReadMarkerMoved(String userId, String room, long readSeq) implements Event {}

  public record DeliveryMarkerMoved(String userId, String room, long deliveredSeq)
      implements Event {}

  public record LastSeenRecorded(String userId, Instant at) implements Event {}

  // ---------------------------------------------------------------------------------------
  // State

  /**
   * Rooms by id; {@code lastSeen} is null until the user's first session. {@code departed}
   * holds, for each room the user left or was removed from, the room's position of that
   * departure, so a late copy of an older join is recognised as one.
   */
  public record State(Map<String, RoomMarker> rooms, Instant lastSeen, Map<String, Long> departed)
      implements CborSerializable {

    public State {
      rooms = Map.copyOf(rooms);
      departed = departed == null ? Map.of() : Map.copyOf(departed);
    }

    static State empty() {
      return new State(Map.of(), null, Map.of());
    }

    /** Whether a change of the user's membership at {@code seq} is older than what is known. */
    boolean stale(String room, long seq) {
      RoomMarker marker = rooms.get(room);
      return marker != null ? seq < marker.joinedSeq() : seq <= departed.getOrDefault(room, 0L);
    }

    Optional<RoomMarker> marker(String room) {
      return Optional.ofNullable(rooms.get(room));
    }

    List<RoomMarker> roomsInOrder() {
      return rooms.values().stream().sorted(Comparator.comparing(RoomMarker::room)).toList();
    }

    State join(String room, long seq) {
      Map<String, Long> left = new HashMap<>(departed);
      left.remove(room);
      return new State(with(new RoomMarker(room, seq, seq, seq)), lastSeen, left);
    }

    State leave(String room, long seq) {
      Map<String, RoomMarker> next = new HashMap<>(rooms);
      next.remove(room);
      Map<String, Long> left = new HashMap<>(departed);
      left.merge(room, seq, Math::max);
      return new State(next, lastSeen, left);
    }

    State read(String room, long seq) {
      RoomMarker m = rooms.get(room);
      return withRoom(
          new RoomMarker(
              room,
              m.joinedSeq(),
              Math.max(m.readSeq(), seq),
              Math.max(m.deliveredSeq(), seq)));
    }

    State deliver(String room, long seq) {
      RoomMarker m = rooms.get(room);
      return withRoom(
          new RoomMarker(room, m.joinedSeq(), m.readSeq(), Math.max(m.deliveredSeq(), seq)));
    }

    State seen(Instant at) {
      return new State(rooms, at, departed);
    }

    private State withRoom(RoomMarker marker) {
      return new State(with(marker), lastSeen, departed);
    }

    private Map<String, RoomMarker> with(RoomMarker marker) {
      Map<String, RoomMarker> next = new HashMap<>(rooms);
      next.put(marker.room(), marker);
      return next;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Behavior

  private final String userId;
  private final Clock clock;
  /** How long a vanished session still counts as online (parley.chat.offline-grace). */
  private final Duration offlineGrace;
  private final ActorContext<Command> context;
  private final TimerScheduler<Command> timers;

  /**
   * The user's live sessions by session id. In memory only, not in {@link State}: a session is
   * a live actor, meaningless once this incarnation ends, and journaling every connect and
   * disconnect would make presence cost a write (design rule 10). Sessions renew their
   * registration (see {@link SessionOpened}), which rebuilds this map after the entity moves.
   */
  private final Map<String, ActorRef<Notice>> sessions = new HashMap<>();

  /**
   * Sessions whose actor stopped without saying {@link SessionClosed}, or that said it {@code
   * restarting}, by session id, with when that was known. That happens when their node died or
   * shut down: the client is most likely reconnecting to
   * another node, so for {@link #offlineGrace} the user still counts as online. If a session
   * comes back within it, nothing was journaled and nobody was told "offline" for a blink; when
   * a whole node's clients come back at once, that is one journal write fewer per user. In
   * memory, like {@link #sessions}.
   */
  private final Map<String, Instant> vanished = new HashMap<>();

  /** The latest end of a session while others still counted: lastSeen once the last one ends. */
  private Instant lastEnded;

  /** When the newest live session opened: lastSeen while online. In memory, like {@link #sessions}. */
  private Instant newestSessionAt;

  /**
   * Whether this incarnation has known any session of the user. One that has not was just
   * started (after a move, a failover or a passivation) and cannot tell whether the user is
   * online: see {@link #adoptUnknown}.
   */
  private boolean knewASession;

  /** Sessions following the job pushes ({@link FollowJobs}); in memory, like {@link #sessions}. */
  private final Set<ActorRef<Notice>> jobFollowers = new HashSet<>();

  /**
   * The latest push of each of the user's last {@value #WINDOW_JOBS} changed jobs, at most
   * {@value #WINDOW_CHARS} characters of them (docs/transports.md): a poll loop that misses
   * more than that between two polls is told so ({@code jobs_window}).
   */
  private final JobWindow jobs = new JobWindow(newEpoch(), WINDOW_JOBS, WINDOW_CHARS);

  /**
   * Rooms joined through this incarnation and not left since, with the seq of the join: what a
   * session that registers again after a move missed ({@link #catchUp}). In memory, like
   * {@link #sessions}.
   */
  private final Map<String, Long> joinedHere = new HashMap<>();

  static final int WINDOW_JOBS = 256;
  static final long WINDOW_CHARS = 1 << 20;
  /** A catch-up answer carries at most this many characters of pushes, well inside a remote frame. */
  private static final long PAGE_CHARS = 256 * 1024;

  /** Where presence announcements go: the rooms the user is in. */
  private final Consumer<RoomPush.Ephemeral> rooms;

  private UserEntity(
      String userId,
      Clock clock,
      Duration offlineGrace,
      ActorContext<Command> context,
      TimerScheduler<Command> timers,
      Consumer<RoomPush.Ephemeral> rooms) {
    super(
        PersistenceId.of(ENTITY_KEY.name(), userId),
        SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(5), 0.1));
    this.userId = userId;
    this.clock = clock;
    this.offlineGrace = offlineGrace;
    this.context = context;
    this.timers = timers;
    this.rooms = rooms;
  }

  @Override
  public State emptyState() {
    return State.empty();
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return RetentionCriteria.snapshotEvery(100, 2);
  }

  /**
   * Commands are dispatched by one method rather than through a handler built with {@code
   * newCommandHandlerBuilder()}: the builder makes some thirty objects per incarnation, and a
   * node keeps an incarnation for every user connected to it, so they were 0.7 KB of each idle
   * connection's heap (docs/benchmarks.md, "What a connection costs").
   */
  @Override
  public CommandHandler<Command, Event, State> commandHandler() {
    return this::onCommand;
  }

  private Effect<Event, State> onCommand(State state, Command command) {
    if (command instanceof SessionOpened opened) {
      return onSessionOpened(state, opened);
    } else if (command instanceof SessionClosed closed) {
      return closed.restarting() ? sessionRestarting(closed.sessionId()) : endSession(closed.sessionId());
    } else if (command instanceof SessionTerminated terminated) {
      return onSessionTerminated(terminated);
    } else if (command instanceof GraceEnded ended) {
      Instant at = vanished.remove(ended.sessionId());
      return at == null ? Effect().none() : wentOfflineIfLast(at);
    } else if (command instanceof GetPresence get) {
      return Effect().reply(get.replyTo(), presence(state));
    } else if (command instanceof RoomJoined joined) {
      return onRoomJoined(state, joined);
    } else if (command instanceof RoomLeft left) {
      return onRoomLeft(state, left);
    } else if (command instanceof MarkRead mark) {
      return onMarkRead(state, mark);
    } else if (command instanceof MarkDelivered mark) {
      return onMarkDelivered(state, mark);
    } else if (command instanceof GetRooms get) {
      return Effect().reply(get.replyTo(), rooms(state));
    } else if (command instanceof Relay relay) {
      onRelay(relay);
      return Effect().none();
    } else if (command instanceof FollowJobs follow) {
      onFollowJobs(follow);
      return Effect().none();
    }
    return Effect().unhandled();
  }

  /**
   * A job push is kept in the window and passed on, unless the window already has that version
   * of the job (a copy, or one overtaken by a newer push): each connection gets each version
   * once, in version order.
   */
  private void onRelay(Relay relay) {
    JobWindow.Entry entry = jobs.accept(relay.jobId(), relay.version(), relay.frame());
    if (entry == null) {
      return;
    }
    Relayed relayed = new Relayed(relay.frame(), jobs.epoch(), entry.position());
    Set<ActorRef<Notice>> to = new LinkedHashSet<>(sessions.values());
    to.addAll(jobFollowers);
    to.forEach(session -> session.tell(relayed));
  }

  private void onFollowJobs(FollowJobs follow) {
    if (jobFollowers.add(follow.session())) {
      context.watchWith(follow.session(), new SessionTerminated(follow.session()));
    }
    String reset =
        follow.epoch() == null ? null
            : !follow.epoch().equals(jobs.epoch()) || follow.after() > jobs.position() ? "jobs_restarted"
            : follow.after() < jobs.droppedUpTo() ? "jobs_window"
            : null;
    // Without a place, from now; after a reset, from the oldest push kept: what came before it
    // is what the client must re-read.
    long from = follow.epoch() == null ? jobs.position() : reset != null ? jobs.droppedUpTo() : follow.after();
    JobWindow.Page page = jobs.after(from, PAGE_CHARS);
    List<JobPush> pushes = page.entries().stream().map(e -> new JobPush(e.position(), e.frame())).toList();
    follow.session().tell(new JobsFrom(jobs.epoch(), from, jobs.position(), pushes, reset, page.more()));
  }

  private static String newEpoch() {
    return Long.toString(ThreadLocalRandom.current().nextLong(1L << 40), 36);
  }

  private Effect<Event, State> onRoomJoined(State state, RoomJoined joined) {
    Ack ack = new Ack(joined.room());
    if (state.marker(joined.room()).isPresent() || state.stale(joined.room(), joined.seq())) {
      return Effect().reply(joined.replyTo(), ack);
    }
    return Effect()
        .persist(new JoinedRoom(userId, joined.room(), joined.seq()))
        .thenRun(s -> {
          joinedHere.put(joined.room(), joined.seq());
          sessions.values().forEach(session -> session.tell(new RoomAdded(joined.room(), joined.seq())));
        })
        .thenReply(joined.replyTo(), s -> ack);
  }

  private Effect<Event, State> onRoomLeft(State state, RoomLeft left) {
    Ack ack = new Ack(left.room());
    if (state.stale(left.room(), left.seq())) {
      return Effect().reply(left.replyTo(), ack);
    }
    // Written even for a room the user was not known to be in: the departure's position is
    // what makes a join older than it, arriving late, recognisable.
    return Effect()
        .persist(new LeftRoom(userId, left.room(), left.seq()))
        .thenRun(s -> joinedHere.remove(left.room()))
        .thenReply(left.replyTo(), s -> ack);
  }

  private Effect<Event, State> onMarkRead(State state, MarkRead mark) {
    Optional<RoomMarker> marker = state.marker(mark.room());
    if (marker.isEmpty()) {
      return Effect().reply(mark.replyTo(), notAMember(mark.room()));
    }
    if (mark.seq() <= marker.get().readSeq()) {
      return Effect()
          .reply(mark.replyTo(), new MarkedRead(mark.room(), marker.get().readSeq(), false));
    }
    return Effect()
        .persist(new ReadMarkerMoved(userId, mark.room(), mark.seq()))
        .thenReply(mark.replyTo(), s -> new MarkedRead(mark.room(), mark.seq(), true));
  }

  private Effect<Event, State> onMarkDelivered(State state, MarkDelivered mark) {
    Optional<RoomMarker> marker = state.marker(mark.room());
    if (marker.isEmpty()) {
      return Effect().reply(mark.replyTo(), notAMember(mark.room()));
    }
    if (mark.seq() <= marker.get().deliveredSeq()) {
      return Effect()
          .reply(
              mark.replyTo(),
              new MarkedDelivered(mark.room(), marker.get().deliveredSeq(), false));
    }
    return Effect()
        .persist(new DeliveryMarkerMoved(userId, mark.room(), mark.seq()))
        .thenReply(mark.replyTo(), s -> new MarkedDelivered(mark.room(), mark.seq(), true));
  }

  private Effect<Event, State> onSessionOpened(State state, SessionOpened opened) {
    ActorRef<Notice> known = sessions.get(opened.sessionId());
    if (known != null) {
      if (!known.equals(opened.session())) {
        forget(opened.sessionId());
        remember(opened.sessionId(), opened.session());
      }
      return Effect().reply(opened.replyTo(), presence(state));
    }
    // Presence is ephemeral (design rule 10): while online, lastSeen is the newest session's
    // start, kept here, and only going offline is journaled. A write per connect doubled the
    // journal's load when a failed node's clients all came back at once. The one exception is
    // a user's first session ever, so that a user who connected is never shown as one who
    // never did, even if this entity's node dies before they go offline.
    boolean wasOffline = !online();
    Instant now = clock.instant();
    EffectBuilder<Event, State> effect = state.lastSeen() == null
        ? Effect().persist(new LastSeenRecorded(userId, now))
        : Effect().none();
    return effect
        .thenRun(
            s -> {
              remember(opened.sessionId(), opened.session());
              newestSessionAt = now;
              if (wasOffline) {
                announcePresence(s, "online", now.toEpochMilli());
              }
              if (opened.renewal()) {
                catchUp(opened.session());
              }
            })
        .thenReply(opened.replyTo(), this::presence);
  }

  /**
   * A live session renews with this incarnation, which did not know it: it registered with an
   * earlier one (this entity moved, or was passivated while a renewal was late), and has heard
   * nothing from this one. So it is sent what this incarnation told its sessions meanwhile: the
   * rooms the user joined and is still in (a room the session already follows is ignored), and
   * the newest push of each job that changed, in order (a push carries the whole job, so the
   * newest stands for the ones before it). Memory only, like the sessions: nothing is read or
   * written, so what an earlier incarnation was told and could not pass on is not in it.
   */
  private void catchUp(ActorRef<Notice> session) {
    joinedHere.forEach((room, seq) -> session.tell(new RoomAdded(room, seq)));
    for (JobWindow.Entry entry : jobs.after(0, Long.MAX_VALUE).entries()) {
      session.tell(new Relayed(entry.frame(), jobs.epoch(), entry.position()));
    }
  }

  /**
   * A session actor stopped. A session that ends says {@link SessionClosed} as it stops, but that
   * comes through sharding and often after this signal, so the session is only set aside as
   * vanished: its {@link SessionClosed} ends it at once, and if none comes (its node died) the
   * grace ends it.
   */
  private Effect<Event, State> onSessionTerminated(SessionTerminated terminated) {
    List<String> ids =
        sessions.entrySet().stream()
            .filter(e -> e.getValue().equals(terminated.session()))
            .map(Map.Entry::getKey)
            .toList();
    jobFollowers.remove(terminated.session());
    for (String id : ids) {
      sessions.remove(id);
      vanish(id);
    }
    return Effect().none();
  }

  /** Its node closed the session as it shut down: the user's client is on its way elsewhere. */
  private Effect<Event, State> sessionRestarting(String sessionId) {
    if (forget(sessionId) || adoptUnknown()) {
      vanish(sessionId);
    }
    return Effect().none();
  }

  /** The session still counts as online until it closes or its grace runs out. */
  private void vanish(String sessionId) {
    vanished.put(sessionId, clock.instant());
    timers.startSingleTimer(sessionId, new GraceEnded(sessionId), offlineGrace);
  }

  private Effect<Event, State> endSession(String sessionId) {
    boolean ended = forget(sessionId);
    if (vanished.remove(sessionId) != null) {
      timers.cancel(sessionId);
      ended = true;
    }
    return ended || adoptUnknown() ? wentOfflineIfLast(clock.instant()) : Effect().none();
  }

  /**
   * A session this incarnation never knew is ending. When the incarnation has known no session
   * at all, it has just started, and the session most likely registered with the incarnation
   * before it, which told the user's rooms they were online; nothing else would ever tell them
   * otherwise. So the ending session is taken as the user's only one. Should a second device
   * still be live, it is shown offline only until its next renewal registers it again.
   */
  private boolean adoptUnknown() {
    if (knewASession) {
      return false;
    }
    knewASession = true;
    if (newestSessionAt == null) {
      newestSessionAt = clock.instant();
    }
    return true;
  }

  private Effect<Event, State> wentOfflineIfLast(Instant at) {
    // Seen until the latest of the ends: a session that closed while another was in its grace
    // was there after the vanished one.
    lastEnded = lastEnded == null || at.isAfter(lastEnded) ? at : lastEnded;
    if (online()) {
      return Effect().none();
    }
    Instant seen = lastEnded;
    lastEnded = null;
    return Effect()
        .persist(new LastSeenRecorded(userId, seen))
        .thenRun(s -> announcePresence(s, "offline", seen.toEpochMilli()));
  }

  private boolean online() {
    return !sessions.isEmpty() || !vanished.isEmpty();
  }

  /**
   * Presence goes to everyone who shares a room with the user, through the rooms' own
   * fan-out: pushed, never journaled in the rooms (design rule 10).
   */
  private void announcePresence(State state, String status, long at) {
    for (RoomMarker marker : state.roomsInOrder()) {
      rooms.accept(new RoomPush.Ephemeral(marker.room(), "presence", userId, 0, status, at));
    }
  }

  private void remember(String sessionId, ActorRef<Notice> session) {
    sessions.put(sessionId, session);
    knewASession = true;
    // The same message for the same ref, so watching a ref twice is allowed.
    context.watchWith(session, new SessionTerminated(session));
  }

  /** Removes a session; unwatches its actor unless another session id still names it. */
  private boolean forget(String sessionId) {
    ActorRef<Notice> session = sessions.remove(sessionId);
    if (session == null) {
      return false;
    }
    if (!sessions.containsValue(session) && !jobFollowers.contains(session)) {
      context.unwatch(session);
    }
    return true;
  }

  private Rooms rooms(State state) {
    return new Rooms(state.roomsInOrder());
  }

  private Presence presence(State state) {
    return online()
        ? new Presence(userId, true, newestSessionAt)
        : new Presence(userId, false, state.lastSeen());
  }

  private Rejected notAMember(String room) {
    return new Rejected("not_a_member", userId + " is not a member of room " + room);
  }

  /** Built once for all incarnations: it needs nothing of any one of them. */
  private static final EventHandler<State, Event> EVENTS =
      EventHandlerBuilder.<State, Event>builder()
          .forAnyState()
          .onEvent(JoinedRoom.class, (state, e) -> state.join(e.room(), e.seq()))
          .onEvent(LeftRoom.class, (state, e) -> state.leave(e.room(), e.seq()))
          .onEvent(ReadMarkerMoved.class, (state, e) -> state.read(e.room(), e.readSeq()))
          .onEvent(DeliveryMarkerMoved.class, (state, e) -> state.deliver(e.room(), e.deliveredSeq()))
          .onEvent(LastSeenRecorded.class, (state, e) -> state.seen(e.at()))
          .build();

  @Override
  public EventHandler<State, Event> eventHandler() {
    return EVENTS;
  }
}
