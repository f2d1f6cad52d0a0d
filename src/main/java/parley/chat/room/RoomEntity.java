package parley.chat.room;

import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import com.fasterxml.jackson.annotation.JsonIgnore;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.cassandra.query.javadsl.CassandraReadJournal;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.Effect;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;
import org.apache.pekko.stream.javadsl.Sink;
import parley.chat.ChatSettings;
import parley.chat.Ids;
import parley.cluster.ConsistentHashingShardAllocationStrategy;
import parley.ops.ParleyMetrics;
import parley.persistence.GroupCommit;
import parley.serialization.CborSerializable;
import parley.serialization.Text;
import org.pcollections.HashTreePMap;
import org.pcollections.HashTreePSet;
import org.pcollections.PMap;
import org.pcollections.PSet;
import org.pcollections.PVector;
import org.pcollections.TreePVector;

/**
 * A chat room (or a direct-message room): its members and roles, topic and timeline. The
 * timeline is the room's event log: every visible change is one journaled event and its
 * sequence number is the timeline position {@code seq}, gap-free from 1 (design rule 4).
 *
 * <p>The sharded entity is a small front actor over the event-sourced journal actor. While a
 * journal write is in flight the front gathers the writes that arrive and hands them over as
 * one batch, which is persisted as one atomic write: one Cassandra round trip per batch, not
 * per message (design rule 3). Every sender is answered only after the write holding its
 * event completes; then the events go to the fan-out hubs that follow the room.
 *
 * <p>Retries are recognised by {@code (user, clientMsgId)} within the recent window kept in
 * state, so a retry after a restart or failover gets the original seq (design rule 5).
 */
public final class RoomEntity
    extends EventSourcedBehavior<RoomEntity.Command, RoomEntity.Event, RoomEntity.State> {

  public static final EntityTypeKey<Command> ENTITY_KEY =
      EntityTypeKey.create(Command.class, "room");

  /**
   * {@code starts} is this node's end of the topic every node's hub hears {@link Started} on.
   */
  public static void init(ActorSystem<?> system, ChatSettings settings, ActorRef<Topic.Command<Started>> starts) {
    ClusterSharding.get(system)
        .init(
            Entity.of(ENTITY_KEY, ctx -> create(ctx.getEntityId(), settings, MembershipOutbox.Links.sharded(system, ctx.getEntityId()), starts))
                .withAllocationStrategy(ConsistentHashingShardAllocationStrategy.configured(system)));
  }

  /** The topic {@link Started} goes out on; one per node, spawned before the rooms start. */
  public static Behavior<Topic.Command<Started>> startsTopic() {
    return Topic.create(Started.class, "parley-room-starts");
  }

  /**
   * A room's incarnation started (first use, waking from passivation, or a move by failover or
   * rebalance). It knows no hub yet, and a hub's lease renewal may be 20 s away; pushes until
   * then would reach nobody, and ephemeral ones (presence, typing) no gap healing brings back.
   * So the room says it started, to every node's hub at once, and the hubs that follow it
   * subscribe now.
   */
  public record Started(String room) implements CborSerializable {}

  /** A write the room held when its journal failed: retryable, the clientMsgId dedups it. */
  private static final Rejected UNAVAILABLE =
      new Rejected("unavailable", "the room could not write to storage; retry with the same clientMsgId");

  public static PersistenceId persistenceId(String roomId) {
    return PersistenceId.of(ENTITY_KEY.name(), roomId);
  }

  /**
   * The room: the group-commit front, its journal actor and the outbox that tells user entities
   * of membership changes ({@link MembershipOutbox}). Either child stopping (a storage failure)
   * stops the room; the next message starts all three afresh from their journals.
   */
  public static Behavior<Command> create(
      String roomId, ChatSettings settings, MembershipOutbox.Links links, ActorRef<Topic.Command<Started>> starts) {
    return Behaviors.setup(
        context -> {
          ActorRef<MembershipOutbox.Command> outbox = context.spawn(MembershipOutbox.create(roomId, links), "outbox");
          context.watch(outbox);
          ActorRef<Command> journal =
              context.spawn(journal(roomId, settings, context.getSelf(), outbox, starts, Clock.systemUTC()), "journal");
          context.watch(journal);
          return GroupCommit.front(journal, new GroupCommit.Spec<>(
              Command.class, Write.class, BatchDone.class, null, WriteBatch::new, Write::weight,
              write -> write.replyTo().tell(UNAVAILABLE), settings.maxBatch(), settings.maxBatchBytes()));
        });
  }

  /**
   * The event-sourced part alone; {@code front} hears {@link BatchDone} after each batch and
   * {@code outbox} every membership change.
   */
  static Behavior<Command> journal(
      String roomId,
      ChatSettings settings,
      ActorRef<Command> front,
      ActorRef<MembershipOutbox.Command> outbox,
      ActorRef<Topic.Command<Started>> starts,
      Clock clock) {
    return Behaviors.setup(context -> new RoomEntity(roomId, settings, context, front, outbox, starts, clock));
  }

  /** As the other, for tests of the timeline alone: membership changes and starts go nowhere. */
  static Behavior<Command> journal(
      String roomId, ChatSettings settings, ActorRef<Command> front, Clock clock) {
    return Behaviors.setup(
        context -> new RoomEntity(roomId, settings, context, front, context.getSystem().ignoreRef(), context.getSystem().ignoreRef(), clock));
  }

  // ---------------------------------------------------------------------------------------
  // Commands

  public sealed interface Command extends CborSerializable {}

  /** A command that changes the timeline; the front batches these. */
  public sealed interface Write extends Command {
    ActorRef<WriteReply> replyTo();

    /** Message bytes the write adds, for bounding a batch. */
    default int weight() {
      return 64;
    }
  }

  public record Create(String user, String visibility, String topic, ActorRef<WriteReply> replyTo)
      implements Write {}

  public record Join(String user, ActorRef<WriteReply> replyTo) implements Write {}

  public record Leave(String user, ActorRef<WriteReply> replyTo) implements Write {}

  public record Invite(String by, String user, ActorRef<WriteReply> replyTo) implements Write {}

  public record RemoveMember(String by, String user, ActorRef<WriteReply> replyTo)
      implements Write {}

  /** {@code ifVersion}: change the topic only if the settings are still at that version (null: whatever). */
  public record SetTopic(String by, String topic, Long ifVersion, ActorRef<WriteReply> replyTo) implements Write {}

  /** A message; {@code fromServer} posts for an application backend without membership. */
  public record Post(
      String user, String clientMsgId, String body, boolean fromServer, ActorRef<WriteReply> replyTo)
      implements Write {
    @Override
    public int weight() {
      return 64 + body.length() * 3;
    }
  }

  /** A direct message; the room (id derived from both users) is created on first use. */
  public record PostDirect(
      String from, String to, String clientMsgId, String body, ActorRef<WriteReply> replyTo)
      implements Write {
    @Override
    public int weight() {
      return 64 + body.length() * 3;
    }
  }

  public record Edit(
      String user, long target, String clientMsgId, String body, ActorRef<WriteReply> replyTo)
      implements Write {
    @Override
    public int weight() {
      return 64 + body.length() * 3;
    }
  }

  public record Delete(String user, long target, String clientMsgId, ActorRef<WriteReply> replyTo)
      implements Write {}

  /** Registers (or renews) a node's hub as a follower of this room for the lease time. */
  public record Subscribe(ActorRef<RoomPush> hub, ActorRef<Subscribed> replyTo)
      implements Command {}

  /**
   * Timeline positions {@code from..to} (inclusive), at most {@code limit}, oldest first; with
   * {@code from <= 0}, the newest {@code limit} positions up to {@code to}.
   */
  public record GetEvents(
      String user, long from, long to, int limit, ActorRef<EventsReply> replyTo)
      implements Command {}

  public record GetInfo(String user, ActorRef<InfoReply> replyTo) implements Command {}

  /**
   * Whether {@code user} is a member now: what a document owned by the room asks before it
   * lets a user in (the room is the one writer of its membership, so nobody keeps a copy).
   */
  public record IsMember(String user, ActorRef<MembershipReply> replyTo) implements Command {}

  /**
   * Sent by the room's outbox through the room's shard while user entities still have to hear
   * of membership changes: it counts as use, so the idle room is not passivated meanwhile.
   */
  public record KeepAwake() implements Command {}

  /** Typing notice from a member; pushed, never journaled. */
  public record Typing(String user) implements Command {}

  /** An ephemeral push (read marker, receipt, presence) to relay to the room's followers. */
  public record Relay(RoomPush.Ephemeral push) implements Command {}

  /** Front to journal: the writes gathered while the previous batch was in flight. */
  record WriteBatch(List<Write> writes) implements Command {}

  /** Journal to front: the batch is written (or rejected) and its senders answered. */
  record BatchDone() implements Command {}

  record EventsLoaded(GetEvents request, List<TimelineEvent> events, Throwable failure)
      implements Command {}

  record HubTerminated(ActorRef<RoomPush> hub) implements Command {}

  // ---------------------------------------------------------------------------------------
  // Replies

  public sealed interface WriteReply extends CborSerializable {}

  public sealed interface EventsReply extends CborSerializable {}

  public sealed interface InfoReply extends CborSerializable {}

  public sealed interface MembershipReply extends CborSerializable {}

  /** The write is in the journal at {@code seq} (or was, for a recognised retry). */
  public record Written(String room, long seq, long ts, String clientMsgId, boolean duplicate)
      implements WriteReply {}

  public record Rejected(String code, String message)
      implements WriteReply, EventsReply, InfoReply, MembershipReply {}

  public record Subscribed(String room, long lastSeq) implements CborSerializable {}

  /**
   * {@code epoch} is when the room was created: a position saved against another epoch comes
   * from a store that was since wiped, and must not be trusted.
   */
  public record Events(String room, List<TimelineEvent> events, long lastSeq, long epoch)
      implements EventsReply {}

  public record Info(
      String room,
      String visibility,
      String topic,
      String owner,
      Map<String, String> members,
      long lastSeq,
      boolean direct,
      long settingsVersion)
      implements InfoReply {}

  public record Membership(String room, String user, boolean member) implements MembershipReply {}

  // ---------------------------------------------------------------------------------------
  // Events: each is one timeline position.

  public sealed interface Event extends CborSerializable {
    String roomId();

    long ts();
  }

  public record RoomCreated(
      String roomId, String owner, String visibility, String topic, boolean direct, long ts)
      implements Event {}

  public record MemberInvited(String roomId, String user, String by, long ts) implements Event {}

  public record MemberJoined(String roomId, String user, long ts) implements Event {}

  public record MemberLeft(String roomId, String user, long ts) implements Event {}

  public record MemberRemoved(String roomId, String user, String by, long ts) implements Event {}

  public record TopicChanged(String roomId, String topic, String by, long ts) implements Event {}

  public record MessagePosted(String roomId, String user, String clientMsgId, String body, long ts)
      implements Event {}

  public record MessageEdited(
      String roomId, String user, long target, String clientMsgId, String body, long ts)
      implements Event {}

  public record MessageDeleted(String roomId, String user, long target, String clientMsgId, long ts)
      implements Event {}

  /** The timeline entry of an event at position {@code seq}. */
  public static TimelineEvent timelineEvent(Event event, long seq) {
      if (event instanceof RoomCreated e) {
        return new TimelineEvent(e.roomId(), seq, e.ts(), TimelineEvent.CREATED, e.owner(), null, null, null, null, e.topic(), e.visibility(), false, false);
      }
      if (event instanceof MemberInvited e) {
        return new TimelineEvent(e.roomId(), seq, e.ts(), TimelineEvent.INVITED, e.user(), e.by(), null, null, null, null, null, false, false);
      }
      if (event instanceof MemberJoined e) {
        return new TimelineEvent(e.roomId(), seq, e.ts(), TimelineEvent.JOINED, e.user(), null, null, null, null, null, null, false, false);
      }
      if (event instanceof MemberLeft e) {
        return new TimelineEvent(e.roomId(), seq, e.ts(), TimelineEvent.LEFT, e.user(), null, null, null, null, null, null, false, false);
      }
      if (event instanceof MemberRemoved e) {
        return new TimelineEvent(e.roomId(), seq, e.ts(), TimelineEvent.REMOVED, e.user(), e.by(), null, null, null, null, null, false, false);
      }
      if (event instanceof TopicChanged e) {
        return new TimelineEvent(e.roomId(), seq, e.ts(), TimelineEvent.TOPIC, e.by(), e.by(), null, null, null, e.topic(), null, false, false);
      }
      if (event instanceof MessagePosted e) {
        return new TimelineEvent(e.roomId(), seq, e.ts(), TimelineEvent.MESSAGE, e.user(), null, e.body(), e.clientMsgId(), null, null, null, false, false);
      }
      if (event instanceof MessageEdited e) {
        return new TimelineEvent(e.roomId(), seq, e.ts(), TimelineEvent.EDITED, e.user(), null, e.body(), e.clientMsgId(), e.target(), null, null, false, false);
      }
      if (event instanceof MessageDeleted e) {
        return new TimelineEvent(e.roomId(), seq, e.ts(), TimelineEvent.DELETED, e.user(), null, null, e.clientMsgId(), e.target(), null, null, false, false);
      }
    throw new IllegalArgumentException("unknown event " + event);
  }

  // ---------------------------------------------------------------------------------------
  // State

  public static final String OWNER = "owner";
  public static final String MEMBER = "member";
  public static final String PUBLIC = "public";
  public static final String PRIVATE = "private";

  /**
   * The room as of {@code seq}. {@code recent} is the newest part of the timeline (bounded by
   * the recent window) and doubles as the retry-recognition window, indexed by {@code writes}
   * ((user, clientMsgId) to seq, derived from {@code recent} and not stored in snapshots);
   * {@code redactions} holds the latest content of edited and deleted messages, applied
   * whenever history is served.
   *
   * <p>Every collection is a persistent one (pcollections), whatever a constructor is given:
   * applying an event shares all but O(log n) of the previous state instead of copying a
   * window of a thousand events, which is what made each message cost O(window).
   */
  public record State(
      boolean exists,
      boolean direct,
      String owner,
      String visibility,
      String topic,
      Map<String, String> members,
      Set<String> invited,
      long seq,
      List<TimelineEvent> recent,
      Map<Long, Redaction> redactions,
      long createdAt,
      long lastMembershipSeq,
      long settingsSeq,
      @JsonIgnore Map<String, Long> writes)
      implements CborSerializable {

    public State {
      members = persistent(members);
      invited = invited instanceof PSet<String> set ? set : HashTreePSet.from(invited);
      recent = recent instanceof PVector<TimelineEvent> vector ? vector : TreePVector.from(recent);
      redactions = persistent(redactions);
      writes = writes == null ? writesOf(recent) : persistent(writes);
    }

    /**
     * The version of the room's settings (its topic): the seq of its latest {@code created} or
     * {@code topic} event, what {@code If-Match} names. A snapshot from before this field
     * existed reads 0 and counts as the creation's seq, 1.
     */
    public long settingsVersion() {
      return Math.max(1, settingsSeq);
    }

    public static State empty() {
      return new State(false, false, null, null, null, Map.of(), Set.of(), 0, List.of(), Map.of(), 0, 0, 0, Map.of());
    }

    public boolean isMember(String user) {
      return members.containsKey(user);
    }

    public boolean isOwner(String user) {
      return user.equals(owner) && isMember(user);
    }

    /**
     * Whether {@code user} may know the room exists: any room they are in or invited to, and
     * every public room (anyone may join one). To anybody else a private room or a direct
     * message room is answered exactly as a room that does not exist ({@code room_not_found}),
     * so nobody learns by asking which private rooms there are or who writes to whom.
     */
    boolean visibleTo(String user) {
      return exists && (isMember(user) || invited.contains(user) || (!direct && PUBLIC.equals(visibility)));
    }

    /** The earlier write of {@code user} named {@code clientMsgId}, if still in the window. */
    Optional<TimelineEvent> findWrite(String user, String clientMsgId) {
      Long position = writes.get(writeKey(user, clientMsgId));
      return position == null ? Optional.empty() : recentAt(position);
    }

    private static Map<String, Long> writesOf(List<TimelineEvent> recent) {
      PMap<String, Long> index = HashTreePMap.empty();
      for (TimelineEvent e : recent) {
        if (e.clientMsgId() != null) {
          index = index.plus(writeKey(e.user(), e.clientMsgId()), e.seq());
        }
      }
      return index;
    }

    private static String writeKey(String user, String clientMsgId) {
      return user + '\n' + clientMsgId;
    }

    Optional<TimelineEvent> recentAt(long position) {
      long first = seq - recent.size() + 1;
      if (position < first || position > seq) {
        return Optional.empty();
      }
      return Optional.of(recent.get((int) (position - first)));
    }

    long firstRecentSeq() {
      return seq - recent.size() + 1;
    }

    TimelineEvent redact(TimelineEvent e) {
      Long subject = e.isMessage() ? Long.valueOf(e.seq()) : e.target();
      Redaction r = subject == null ? null : redactions.get(subject);
      if (r == null) {
        return e;
      }
      if (r.deleted()) {
        return e.isMessage() || TimelineEvent.EDITED.equals(e.kind())
            ? e.withContent(null, e.isMessage() ? false : e.edited(), e.isMessage())
            : e;
      }
      return e.isMessage() ? e.withContent(r.body(), true, false) : e;
    }

    State apply(Event event, int window) {
      long next = seq + 1;
      TimelineEvent entry = timelineEvent(event, next);
      PVector<TimelineEvent> nextRecent = (PVector<TimelineEvent>) recent;
      PMap<String, Long> nextWrites = (PMap<String, Long>) writes;
      while (nextRecent.size() >= window) {
        TimelineEvent dropped = nextRecent.get(0);
        nextRecent = nextRecent.minus(0);
        String droppedKey = dropped.clientMsgId() == null ? null : writeKey(dropped.user(), dropped.clientMsgId());
        if (droppedKey != null && Long.valueOf(dropped.seq()).equals(nextWrites.get(droppedKey))) {
          nextWrites = nextWrites.minus(droppedKey);
        }
      }
      nextRecent = nextRecent.plus(entry);
      if (entry.clientMsgId() != null) {
        nextWrites = nextWrites.plus(writeKey(entry.user(), entry.clientMsgId()), next);
      }
      long membership = MembershipOutbox.notice(event, next).isPresent() ? next : lastMembershipSeq;
      long settings = event instanceof RoomCreated || event instanceof TopicChanged ? next : settingsSeq;
        if (event instanceof RoomCreated e) {
          return new State(true, e.direct(), e.owner(), e.visibility(), e.topic(), Map.of(e.owner(), OWNER), Set.of(), next, nextRecent, redactions, e.ts(), membership, settings, nextWrites);
        }
        if (event instanceof MemberInvited e) {
          return new State(exists, direct, owner, visibility, topic, members, plus(invited, e.user()), next, nextRecent, redactions, createdAt, membership, settings, nextWrites);
        }
        if (event instanceof MemberJoined e) {
          return new State(exists, direct, owner, visibility, topic, put(members, e.user(), e.user().equals(owner) ? OWNER : MEMBER), minus(invited, e.user()), next, nextRecent, redactions, createdAt, membership, settings, nextWrites);
        }
        if (event instanceof MemberLeft e) {
          return new State(exists, direct, owner, visibility, topic, remove(members, e.user()), invited, next, nextRecent, redactions, createdAt, membership, settings, nextWrites);
        }
        if (event instanceof MemberRemoved e) {
          return new State(exists, direct, owner, visibility, topic, remove(members, e.user()), minus(invited, e.user()), next, nextRecent, redactions, createdAt, membership, settings, nextWrites);
        }
        if (event instanceof TopicChanged e) {
          return new State(exists, direct, owner, visibility, e.topic(), members, invited, next, nextRecent, redactions, createdAt, membership, settings, nextWrites);
        }
        if (event instanceof MessagePosted e) {
          return new State(exists, direct, owner, visibility, topic, members, invited, next, nextRecent, redactions, createdAt, membership, settings, nextWrites);
        }
        if (event instanceof MessageEdited e) {
          return new State(exists, direct, owner, visibility, topic, members, invited, next, nextRecent, put(redactions, e.target(), new Redaction(e.body(), false)), createdAt, membership, settings, nextWrites);
        }
        if (event instanceof MessageDeleted e) {
          return new State(exists, direct, owner, visibility, topic, members, invited, next, nextRecent, put(redactions, e.target(), new Redaction(null, true)), createdAt, membership, settings, nextWrites);
        }
      throw new IllegalArgumentException("unknown event " + event);
    }
  }

  /** The latest content of an edited or deleted message. */
  public record Redaction(String body, boolean deleted) implements CborSerializable {}

  // ---------------------------------------------------------------------------------------
  // Behavior

  private final String roomId;
  private final ChatSettings settings;
  private final ActorContext<Command> context;
  private final ActorRef<Command> front;
  private final ActorRef<MembershipOutbox.Command> outbox;
  private final ActorRef<Topic.Command<Started>> starts;
  private final Clock clock;
  private final ParleyMetrics metrics;
  /**
   * Followers are node hubs holding a lease; they live in memory only, because after a move
   * the hubs find the room again: at once when they hear it {@link Started}, and by renewing
   * should that be lost (design rule 7).
   */
  private final Map<ActorRef<RoomPush>, Long> hubs = new HashMap<>();

  private RoomEntity(
      String roomId,
      ChatSettings settings,
      ActorContext<Command> context,
      ActorRef<Command> front,
      ActorRef<MembershipOutbox.Command> outbox,
      ActorRef<Topic.Command<Started>> starts,
      Clock clock) {
    super(persistenceId(roomId));
    this.roomId = roomId;
    this.settings = settings;
    this.context = context;
    this.front = front;
    this.outbox = outbox;
    this.starts = starts;
    this.clock = clock;
    this.metrics = ParleyMetrics.get(context.getSystem());
  }

  @Override
  public State emptyState() {
    return State.empty();
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return RetentionCriteria.snapshotEvery(500, 2);
  }

  /**
   * A crash may have come between a membership change and the outbox hearing of it; and the
   * hubs that follow the room learn that it started here.
   */
  @Override
  public SignalHandler<State> signalHandler() {
    return newSignalHandlerBuilder()
        .onSignal(RecoveryCompleted.instance(), state -> {
          outbox.tell(new MembershipOutbox.RoomRecovered(state.lastMembershipSeq()));
          starts.tell(Topic.publish(new Started(roomId)));
        })
        .build();
  }

  @Override
  public CommandHandler<Command, Event, State> commandHandler() {
    return newCommandHandlerBuilder()
        .forAnyState()
        .onCommand(WriteBatch.class, this::onWriteBatch)
        .onCommand(Subscribe.class, this::onSubscribe)
        .onCommand(HubTerminated.class, (state, c) -> {
          hubs.remove(c.hub());
          return Effect().none();
        })
        .onCommand(GetEvents.class, this::onGetEvents)
        .onCommand(EventsLoaded.class, this::onEventsLoaded)
        .onCommand(GetInfo.class, this::onGetInfo)
        .onCommand(IsMember.class, this::onIsMember)
        .onCommand(Typing.class, (state, c) -> {
          if (state.isMember(c.user())) {
            push(new RoomPush.Ephemeral(roomId, "typing", c.user(), state.seq(), null, clock.millis()));
          }
          return Effect().none();
        })
        // Its arrival through the shard was the point: it counted as use.
        .onCommand(KeepAwake.class, (state, c) -> Effect().none())
        .onCommand(Relay.class, (state, c) -> {
          push(c.push());
          return Effect().none();
        })
        .build();
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    int window = settings.recentWindow();
    return newEventHandlerBuilder()
        .forAnyState()
        .onAnyEvent((state, event) -> state.apply(event, window));
  }

  /**
   * Decides every write of the batch against the state as the earlier writes of the same
   * batch leave it, persists all their events as one atomic write, and only then answers.
   */
  private Effect<Event, State> onWriteBatch(State state, WriteBatch batch) {
    long now = clock.millis();
    State running = state;
    List<Event> events = new ArrayList<>();
    List<Runnable> replies = new ArrayList<>(batch.writes().size());
    for (Write write : batch.writes()) {
      Decision decision = decide(running, write, now);
      for (Event event : decision.events()) {
        running = running.apply(event, settings.recentWindow());
      }
      events.addAll(decision.events());
      WriteReply reply = decision.reply().apply(running);
      replies.add(() -> write.replyTo().tell(reply));
    }
    if (events.isEmpty()) {
      replies.forEach(Runnable::run);
      front.tell(new BatchDone());
      return Effect().none();
    }
    long firstSeq = state.seq() + 1;
    int messages = (int) events.stream().filter(MessagePosted.class::isInstance).count();
    long started = System.nanoTime();
    return Effect()
        .persist(events)
        .thenRun(
            written -> {
              metrics.persisted(ENTITY_KEY.name(), System.nanoTime() - started, messages);
              replies.forEach(Runnable::run);
              List<TimelineEvent> published = new ArrayList<>(events.size());
              List<MembershipOutbox.Notice> notices = new ArrayList<>();
              for (int i = 0; i < events.size(); i++) {
                published.add(timelineEvent(events.get(i), firstSeq + i));
                MembershipOutbox.notice(events.get(i), firstSeq + i).ifPresent(notices::add);
              }
              if (!notices.isEmpty()) {
                outbox.tell(new MembershipOutbox.Changed(notices, state.lastMembershipSeq(), written.lastMembershipSeq()));
              }
              push(new RoomPush.Published(roomId, published));
              front.tell(new BatchDone());
            });
  }

  /** What one write does: the events it adds and the answer its sender gets. */
  private record Decision(List<Event> events, Function<State, WriteReply> reply) {
    static Decision reject(String code, String message) {
      Rejected rejected = new Rejected(code, message);
      return new Decision(List.of(), s -> rejected);
    }

    static Decision duplicate(TimelineEvent original) {
      Written written =
          new Written(original.room(), original.seq(), original.ts(), original.clientMsgId(), true);
      return new Decision(List.of(), s -> written);
    }

    static Decision written(List<Event> events, String clientMsgId) {
      return new Decision(
          events, s -> new Written(events.get(0).roomId(), s.seq(), events.get(events.size() - 1).ts(), clientMsgId, false));
    }

    /** Idempotent membership changes answer with the current position. */
    static Decision unchanged(State s, String room) {
      Written written = new Written(room, s.seq(), 0, null, true);
      return new Decision(List.of(), x -> written);
    }
  }

  private Decision decide(State s, Write write, long now) {
      if (!wellFormed(write)) {
        // The edge refuses such text; this guard keeps any other path (a new caller, an old
        // node during an upgrade) from handing the journal a string CBOR cannot encode,
        // which would fail the whole batch's write for everyone in it.
        return Decision.reject("bad_text", "the text holds a lone surrogate (not a Unicode string)");
      }
      if (write instanceof Create c) {
        if (Ids.isDirectRoom(roomId)) {
          return Decision.reject("bad_room_id", "direct message rooms are created by send_dm");
        }
        String visibility = PRIVATE.equals(c.visibility()) ? PRIVATE : PUBLIC;
        if (s.exists()) {
          // Only an exact repeat by the owner is the same request again; anything else would
          // let the client believe it made a room it did not make.
          boolean repeat = s.owner().equals(c.user())
              && visibility.equals(s.visibility())
              && java.util.Objects.equals(c.topic(), s.topic());
          return repeat
              ? Decision.unchanged(s, roomId)
              : Decision.reject("room_exists", "room " + roomId + " already exists");
        }
        return Decision.written(List.of(new RoomCreated(roomId, c.user(), visibility, c.topic(), false, now)), null);
      }
      if (write instanceof Join j) {
        // A private room the user was not invited to, or someone else's direct message room,
        // is not theirs to see: not found, as if there were none.
        if (!s.visibleTo(j.user())) {
          return notFound();
        } else if (s.isMember(j.user())) {
          return Decision.unchanged(s, roomId);
        }
        return Decision.written(List.of(new MemberJoined(roomId, j.user(), now)), null);
      }
      if (write instanceof Leave l) {
        if (!s.visibleTo(l.user())) {
          return notFound();
        } else if (!s.isMember(l.user())) {
          return notMember(l.user());
        }
        return Decision.written(List.of(new MemberLeft(roomId, l.user(), now)), null);
      }
      if (write instanceof Invite i) {
        if (!s.visibleTo(i.by())) {
          return notFound();
        } else if (!s.isMember(i.by())) {
          return notMember(i.by());
        } else if (s.direct()) {
          return Decision.reject("forbidden", "nobody can be invited to a direct message room");
        } else if (s.isMember(i.user()) || s.invited().contains(i.user())) {
          return Decision.unchanged(s, roomId);
        }
        return Decision.written(List.of(new MemberInvited(roomId, i.user(), i.by(), now)), null);
      }
      if (write instanceof RemoveMember r) {
        if (!s.visibleTo(r.by())) {
          return notFound();
        } else if (s.direct()) {
          // Nobody owns a conversation between two people: neither may shut the other out.
          return Decision.reject("forbidden", "nobody can be removed from a direct message room");
        } else if (!s.isOwner(r.by())) {
          return Decision.reject("forbidden", "only the owner of " + roomId + " can remove members");
        } else if (!s.isMember(r.user())) {
          return notMember(r.user());
        }
        return Decision.written(List.of(new MemberRemoved(roomId, r.user(), r.by(), now)), null);
      }
      if (write instanceof SetTopic t) {
        if (!s.visibleTo(t.by())) {
          return notFound();
        } else if (s.direct()) {
          return Decision.reject("forbidden", "a direct message room has no topic");
        } else if (!s.isOwner(t.by())) {
          return Decision.reject("forbidden", "only the owner of " + roomId + " can change the topic");
        } else if (t.ifVersion() != null && t.ifVersion() != s.settingsVersion()) {
          return Decision.reject("version_mismatch",
              "the settings of " + roomId + " are at version " + s.settingsVersion() + ", not " + t.ifVersion() + "; read them again");
        }
        return Decision.written(List.of(new TopicChanged(roomId, t.topic(), t.by(), now)), null);
      }
      if (write instanceof Post p) {
        Optional<TimelineEvent> earlier = s.findWrite(p.user(), p.clientMsgId());
        if (earlier.isPresent()) {
          return Decision.duplicate(earlier.get());
        } else if (!s.exists() || (!p.fromServer() && !s.visibleTo(p.user()))) {
          return notFound();
        } else if (!p.fromServer() && !s.isMember(p.user())) {
          return notMember(p.user());
        } else if (tooLarge(p.body())) {
          return bodyTooLarge();
        }
        return Decision.written(List.of(new MessagePosted(roomId, p.user(), p.clientMsgId(), p.body(), now)), p.clientMsgId());
      }
      if (write instanceof PostDirect d) {
        Optional<TimelineEvent> earlier = s.findWrite(d.from(), d.clientMsgId());
        if (earlier.isPresent()) {
          return Decision.duplicate(earlier.get());
        } else if (!roomId.equals(Ids.directRoom(d.from(), d.to())) || d.from().equals(d.to())) {
          return Decision.reject("bad_room_id", roomId + " is not the direct message room of " + d.from() + " and " + d.to());
        } else if (tooLarge(d.body())) {
          return bodyTooLarge();
        }
        List<Event> events = new ArrayList<>();
        if (!s.exists()) {
          events.add(new RoomCreated(roomId, d.from(), PRIVATE, null, true, now));
        }
        if (!s.isMember(d.to()) && !(s.exists() && s.isMember(d.to()))) {
          events.add(new MemberJoined(roomId, d.to(), now));
        }
        if (s.exists() && !s.isMember(d.from())) {
          events.add(new MemberJoined(roomId, d.from(), now));
        }
        events.add(new MessagePosted(roomId, d.from(), d.clientMsgId(), d.body(), now));
        return Decision.written(events, d.clientMsgId());
      }
      if (write instanceof Edit e) {
        Optional<TimelineEvent> earlier = s.findWrite(e.user(), e.clientMsgId());
        if (earlier.isPresent()) {
          return Decision.duplicate(earlier.get());
        } else if (!s.visibleTo(e.user())) {
          return notFound();
        } else if (!s.isMember(e.user())) {
          return notMember(e.user());
        } else if (tooLarge(e.body())) {
          return bodyTooLarge();
        }
        Decision refused = checkOwnMessage(s, e.user(), e.target());
        return refused != null
            ? refused
            : Decision.written(List.of(new MessageEdited(roomId, e.user(), e.target(), e.clientMsgId(), e.body(), now)), e.clientMsgId());
      }
      if (write instanceof Delete d) {
        Optional<TimelineEvent> earlier = s.findWrite(d.user(), d.clientMsgId());
        if (earlier.isPresent()) {
          return Decision.duplicate(earlier.get());
        } else if (!s.visibleTo(d.user())) {
          return notFound();
        } else if (!s.isMember(d.user())) {
          return notMember(d.user());
        }
        Decision refused = checkOwnMessage(s, d.user(), d.target());
        return refused != null
            ? refused
            : Decision.written(List.of(new MessageDeleted(roomId, d.user(), d.target(), d.clientMsgId(), now)), d.clientMsgId());
      }
    throw new IllegalArgumentException("unknown write " + write);
  }

  /** Edits and deletes reach messages within the recent window, and only their author's. */
  private Decision checkOwnMessage(State s, String user, long target) {
    Optional<TimelineEvent> message = s.recentAt(target).filter(TimelineEvent::isMessage);
    Redaction redaction = s.redactions().get(target);
    if (message.isEmpty() || (redaction != null && redaction.deleted())) {
      return Decision.reject("message_not_found", "no message at seq " + target + " in " + roomId + " can be changed");
    }
    if (!message.get().user().equals(user)) {
      return Decision.reject("forbidden", "only the author can change the message at seq " + target);
    }
    return null;
  }

  private static boolean wellFormed(Write write) {
    String text =
        write instanceof Post p ? p.body()
            : write instanceof PostDirect d ? d.body()
            : write instanceof Edit e ? e.body()
            : write instanceof SetTopic t ? t.topic()
            : write instanceof Create c ? c.topic()
            : null;
    return text == null || Text.isWellFormed(text);
  }

  private boolean tooLarge(String body) {
    return body.length() > settings.maxBodyBytes()
        || body.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > settings.maxBodyBytes();
  }

  private static Decision bodyTooLarge() {
    return Decision.reject("body_too_large", "the message body is over the size limit");
  }

  private Decision notFound() {
    return Decision.reject("room_not_found", "room " + roomId + " does not exist");
  }

  private Decision notMember(String user) {
    return Decision.reject("not_a_member", user + " is not a member of room " + roomId);
  }

  private Effect<Event, State> onSubscribe(State state, Subscribe subscribe) {
    if (hubs.put(subscribe.hub(), clock.millis() + settings.hubLease().toMillis()) == null) {
      context.watchWith(subscribe.hub(), new HubTerminated(subscribe.hub()));
    }
    return Effect().reply(subscribe.replyTo(), new Subscribed(roomId, state.seq()));
  }

  private Effect<Event, State> onGetInfo(State state, GetInfo get) {
    if (!state.visibleTo(get.user())) {
      return Effect().reply(get.replyTo(), new Rejected("room_not_found", "room " + roomId + " does not exist"));
    }
    if (!state.isMember(get.user()) && PRIVATE.equals(state.visibility())) {
      return Effect().reply(get.replyTo(), new Rejected("not_a_member", get.user() + " is not a member of room " + roomId));
    }
    return Effect()
        .reply(
            get.replyTo(),
            new Info(roomId, state.visibility(), state.topic(), state.owner(), state.members(), state.seq(), state.direct(), state.settingsVersion()));
  }

  private Effect<Event, State> onIsMember(State state, IsMember ask) {
    if (!state.visibleTo(ask.user())) {
      return Effect().reply(ask.replyTo(), new Rejected("room_not_found", "room " + roomId + " does not exist"));
    }
    return Effect().reply(ask.replyTo(), new Membership(roomId, ask.user(), state.isMember(ask.user())));
  }

  /**
   * Serves a range from the recent window when it holds it, otherwise from the journal
   * (one partition range read); either way with the latest edits and deletions applied.
   */
  private Effect<Event, State> onGetEvents(State state, GetEvents get) {
    if (!state.visibleTo(get.user())) {
      return Effect().reply(get.replyTo(), new Rejected("room_not_found", "room " + roomId + " does not exist"));
    }
    if (!state.isMember(get.user())) {
      return Effect().reply(get.replyTo(), new Rejected("not_a_member", get.user() + " is not a member of room " + roomId));
    }
    int limit = Math.max(1, get.limit());
    long upTo = Math.min(state.seq(), get.to());
    // from <= 0 asks for the newest `limit` events up to `to` (history paging backwards).
    long from = get.from() <= 0 ? Math.max(1, upTo - limit + 1) : get.from();
    long to = Math.min(upTo, from + limit - 1);
    if (from > to) {
      return Effect().reply(get.replyTo(), new Events(roomId, List.of(), state.seq(), state.createdAt()));
    }
    if (from >= state.firstRecentSeq()) {
      List<TimelineEvent> events = new ArrayList<>((int) (to - from + 1));
      for (long p = from; p <= to; p++) {
        events.add(state.redact(state.recentAt(p).orElseThrow()));
      }
      return Effect().reply(get.replyTo(), new Events(roomId, events, state.seq(), state.createdAt()));
    }
    CassandraReadJournal journal =
        PersistenceQuery.get(context.getSystem())
            .getReadJournalFor(CassandraReadJournal.class, CassandraReadJournal.Identifier());
    long last = to;
    context.pipeToSelf(
        journal
            .currentEventsByPersistenceId(persistenceId(roomId).id(), from, last)
            .map(envelope -> timelineEvent((Event) envelope.event(), envelope.sequenceNr()))
            .runWith(Sink.seq(), context.getSystem()),
        (events, failure) -> new EventsLoaded(get, events, failure));
    return Effect().none();
  }

  private Effect<Event, State> onEventsLoaded(State state, EventsLoaded loaded) {
    if (loaded.failure() != null) {
      context.getLog().warn("Reading the journal of room {} failed: {}", roomId, loaded.failure().toString());
      return Effect().reply(loaded.request().replyTo(), new Rejected("unavailable", "the timeline could not be read; retry"));
    }
    List<TimelineEvent> events = loaded.events().stream().map(state::redact).toList();
    return Effect().reply(loaded.request().replyTo(), new Events(roomId, events, state.seq(), state.createdAt()));
  }

  private void push(RoomPush push) {
    if (hubs.isEmpty()) {
      return;
    }
    long now = clock.millis();
    hubs.entrySet().removeIf(hub -> hub.getValue() < now);
    hubs.keySet().forEach(hub -> hub.tell(push));
  }

  // ---------------------------------------------------------------------------------------
  // Persistent collection helpers: State's constructor makes every collection a persistent
  // one, so these add or remove in O(log n) and leave the previous state as it was.

  private static <K, V> PMap<K, V> persistent(Map<K, V> map) {
    return map instanceof PMap<K, V> persistent ? persistent : HashTreePMap.from(map);
  }

  private static <K, V> Map<K, V> put(Map<K, V> map, K key, V value) {
    return ((PMap<K, V>) map).plus(key, value);
  }

  private static <K, V> Map<K, V> remove(Map<K, V> map, K key) {
    return ((PMap<K, V>) map).minus(key);
  }

  private static Set<String> plus(Set<String> set, String value) {
    return ((PSet<String>) set).plus(value);
  }

  private static Set<String> minus(Set<String> set, String value) {
    return ((PSet<String>) set).minus(value);
  }
}
