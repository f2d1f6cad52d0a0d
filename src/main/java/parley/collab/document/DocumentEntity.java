package parley.collab.document;

import com.fasterxml.jackson.annotation.JsonIgnore;
import org.pcollections.HashTreePMap;
import org.pcollections.PMap;
import org.pcollections.PVector;
import org.pcollections.TreePVector;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.JournalPersistFailed;
import org.apache.pekko.persistence.typed.JournalPersistRejected;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerBuilder;
import org.apache.pekko.persistence.typed.javadsl.Effect;
import org.apache.pekko.persistence.typed.javadsl.EffectBuilder;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;
import parley.chat.room.RoomEntity;
import parley.cluster.ConsistentHashingShardAllocationStrategy;
import parley.collab.ot.InvalidOperationException;
import parley.collab.ot.TextOperation;
import parley.serialization.CborSerializable;

/**
 * One collaboratively edited text document ({@code doc|<id>} in the journal), the single point
 * of order for its operations (design rule 9).
 *
 * <p>A client sends an operation with the revision it was based on; the entity transforms it
 * against the operations applied since, persists it as the next revision, acknowledges it and
 * then pushes it to every subscriber (rule 3: persist, then acknowledge, then push). Its state
 * holds the text, the revision, the last {@link DocumentSettings#retainedOps()} operations (to
 * transform late submissions and to let reconnecting clients catch up) and the recent client
 * operation ids (rule 5: a retry gets the original acknowledgement, across restarts too).
 *
 * <p><b>Group commit.</b> While a journal write is in flight, Pekko stashes incoming commands.
 * When the write completes, the entity sends itself a {@code Flush}; the submissions unstashed
 * or received before it are gathered and written together as one atomic write, each sender
 * acknowledged when that write completes. An idle document writes a submission at once.
 *
 * <p><b>Subscribers and cursors</b> are ephemeral: kept in fields of this behavior instance,
 * never in {@link State}, because they are actor refs and positions of live sessions that mean
 * nothing after a restart or on another node. A subscriber watches the entity (its ref comes
 * in {@link Subscribed}) and subscribes again when it stops, whether it stopped cleanly
 * (passivation, rebalance, a failed write) or went down with its node, which no message
 * of the entity's own could announce.
 *
 * <p><b>For a session.</b> {@link Subscribe} answers with the document ({@link Subscribed}) and
 * from then on pushes every operation after {@code Opened.revision}. Replies and pushes travel
 * on different refs, so order by revision: the session's own operation is pushed too (its
 * {@link OpApplied} carries the author and client operation id), and a revision that jumps is
 * healed with {@link GetOps}. A submission that timed out or got {@code unavailable} is sent
 * again with the same client operation id; the dedup window makes that safe.
 *
 * <p><b>Documents owned by a room.</b> Who may open, read and edit a document: its owner, its
 * editors and, if it was created in a room, the room's members. The RoomEntity is the one
 * writer of its membership, so the document asks it ({@link RoomEntity.IsMember}) instead of
 * keeping a copy, and trusts a "member" answer for {@link DocumentSettings#roomMembershipTtl()}:
 * one ask per user and TTL, never one per operation, and a member who leaves loses access
 * within the TTL. While the room is being asked, that user's commands wait in arrival order
 * (others' go on); then they are served, or all refused ({@code not_found}, as a stranger
 * hears of any document it may not see, or {@code unavailable} if the room did not answer in
 * time). A user found to be no longer a member also loses the subscriptions: each gets
 * {@link DocumentClosed}, and subscribing again is refused. The answers are a cache in this behavior instance, never journaled.
 */
public final class DocumentEntity
    extends EventSourcedBehavior<DocumentEntity.Command, DocumentEntity.Event, DocumentEntity.State> {

  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "doc");

  /** Bounds of one journal write of gathered submissions (as a room's, see ChatSettings). */
  static final int MAX_BATCH = 64;

  static final int MAX_BATCH_BYTES = 32 * 1024;

  /**
   * Bounds of one {@code doc_ops} page: operations, and their weight as the retained window
   * counts it. Documented limits of the protocol, not settings: a client pages on either way.
   */
  static final int OPS_PAGE = 200;

  static final long OPS_PAGE_BYTES = 64 * 1024;

  /** Error codes of {@link Rejected}; the code is the contract, the message is for humans. */
  public static final String NOT_FOUND = "not_found";
  public static final String ALREADY_EXISTS = "already_exists";
  public static final String FORBIDDEN = "forbidden";
  public static final String BAD_REQUEST = "bad_request";
  public static final String BAD_TEXT = "bad_text";
  public static final String BAD_OPERATION = InvalidOperationException.BAD_OPERATION;
  public static final String BASE_LENGTH_MISMATCH = InvalidOperationException.BASE_LENGTH_MISMATCH;
  public static final String BAD_REVISION = "bad_revision";
  public static final String RESYNC_REQUIRED = "resync_required";
  public static final String DOCUMENT_TOO_LARGE = "document_too_large";
  /** The chat codes, for a document created in a room: the same contract as a room's. */
  public static final String NOT_A_MEMBER = "not_a_member";
  public static final String ROOM_NOT_FOUND = "room_not_found";
  /**
   * The journal write failed (nothing was applied unless a retry says otherwise), or the owning
   * room did not answer in time: retry.
   */
  public static final String UNAVAILABLE = "unavailable";

  /** How a document reaches the room that owns it: the room's shard region, or a test's stand-in. */
  @FunctionalInterface
  public interface Rooms {
    RecipientRef<RoomEntity.Command> room(String roomId);
  }

  /** Starts the document shard region on this node; the room shard region must run too. */
  public static void init(ActorSystem<?> system, DocumentSettings settings) {
    ClusterSharding sharding = ClusterSharding.get(system);
    Rooms rooms = roomId -> sharding.entityRefFor(RoomEntity.ENTITY_KEY, roomId);
    sharding.init(
        Entity.of(ENTITY_KEY, entity -> create(entity.getEntityId(), settings, rooms))
            .withStopMessage(new Stop())
            .withAllocationStrategy(ConsistentHashingShardAllocationStrategy.configured(system)));
  }

  public static Behavior<Command> create(String docId, DocumentSettings settings, Rooms rooms) {
    return create(docId, settings, rooms, Clock.systemUTC());
  }

  /** As {@link #create(String, DocumentSettings, Rooms)}, on {@code clock} (tests move time). */
  static Behavior<Command> create(String docId, DocumentSettings settings, Rooms rooms, Clock clock) {
    return Behaviors.setup(context -> new DocumentEntity(docId, settings, rooms, clock, context));
  }

  // ---------------------------------------------------------------------------------------
  // Commands

  public sealed interface Command extends CborSerializable {}

  /**
   * Creates the document, owned by {@code ownerId}, with {@code initialText} (null or empty for
   * none) and the users in {@code editors} allowed to edit it besides the owner. With a
   * {@code room} (null for none), the owner must be a member of it, and its members may edit too.
   */
  public record Create(
      String ownerId, String initialText, List<String> editors, String room, ActorRef<CreateReply> replyTo)
      implements Command {
    public Create {
      initialText = initialText == null ? "" : initialText;
      editors = editors == null ? List.of() : List.copyOf(editors);
    }
  }

  /** Reads the document: text, revision, editors and the cursors of the connected sessions. */
  public record Open(String userId, ActorRef<OpenReply> replyTo) implements Command {}

  /**
   * Applies {@code op}, made on the text at {@code baseRevision}. {@code clientOpId} is unique
   * per user; sending it again gets the original {@link Acked}.
   */
  public record Submit(
      String userId, String clientOpId, long baseRevision, TextOperation op, ActorRef<SubmitReply> replyTo)
      implements Command {}

  /** The operations after {@code fromRevision}, for a client catching up after a reconnect. */
  public record GetOps(String userId, long fromRevision, ActorRef<GetOpsReply> replyTo) implements Command {}

  /** Lets {@code editorId} edit the document; only the owner may. */
  public record AddEditor(String byUserId, String editorId, ActorRef<AddEditorReply> replyTo) implements Command {}

  /**
   * Registers {@code subscriber} for {@link Push}es, answered with {@link Subscribed}: the
   * document at the moment of subscribing (every operation after its revision is pushed) and
   * this entity's ref, for the subscriber to watch. Idempotent; sending it again renews the
   * subscription and keeps the entity from idle passivation. {@code watching} false is what a
   * node that predates the watch sends (it lacks the field) while a rolling upgrade runs both:
   * that subscriber is answered {@link Opened} and told {@link DocumentClosed} when the entity
   * stops, as it expects.
   */
  public record Subscribe(
      String userId, String sessionId, ActorRef<Push> subscriber, ActorRef<OpenReply> replyTo, boolean watching)
      implements Command {}

  public record Unsubscribe(ActorRef<Push> subscriber) implements Command {}

  /**
   * Moves the cursor of a subscribed session: {@code position} and {@code selectionEnd}
   * (equal when nothing is selected) in the text at {@code revision}. Ephemeral: never
   * journaled, no reply, ignored from sessions that are not subscribed.
   */
  public record UpdateCursor(String userId, String sessionId, long revision, int position, int selectionEnd)
      implements Command {}

  /** Sharding's stop message: writes what is gathered, then stops. */
  record Stop() implements Command {}

  private record Flush() implements Command {}

  private record SubscriberTerminated(ActorRef<Push> subscriber) implements Command {}

  /** The owning room answered (or not) whether the creator of {@code create} is a member. */
  private record CreateChecked(Create create, RoomAnswer answer) implements Command {}

  /** The owning room answered (or not) whether {@code userId} is a member. */
  private record MembershipChecked(String userId, RoomAnswer answer) implements Command {}

  /** What asking the owning room came to. */
  private enum RoomAnswer {
    MEMBER,
    NOT_A_MEMBER,
    NO_SUCH_ROOM,
    NO_ANSWER;

    static RoomAnswer of(RoomEntity.MembershipReply reply, Throwable failure) {
      if (reply instanceof RoomEntity.Membership membership) {
        return membership.member() ? MEMBER : NOT_A_MEMBER;
      }
      if (reply instanceof RoomEntity.Rejected rejected && ROOM_NOT_FOUND.equals(rejected.code())) {
        return NO_SUCH_ROOM;
      }
      return NO_ANSWER;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Replies

  public sealed interface CreateReply extends CborSerializable {}

  public sealed interface OpenReply extends CborSerializable {}

  public sealed interface SubmitReply extends CborSerializable {}

  public sealed interface GetOpsReply extends CborSerializable {}

  public sealed interface AddEditorReply extends CborSerializable {}

  /** Why a command was refused: {@code code} is one of the constants of this class. */
  public record Rejected(String code, String message)
      implements CreateReply, OpenReply, SubmitReply, GetOpsReply, AddEditorReply {}

  public record Created(String docId, long revision) implements CreateReply {}

  /** {@code room} is the owning room, null for a document without one. */
  public record Opened(
      String docId, String text, long revision, String owner, String room, List<String> editors, List<Cursor> cursors)
      implements OpenReply {}

  /**
   * The answer to {@link Subscribe}: the document, and the entity that will push its changes;
   * when that actor ends, the subscription has ended with it.
   */
  public record Subscribed(Opened document, ActorRef<Command> entity) implements OpenReply {}

  /** The submission is revision {@code revision} of the document, in the journal. */
  public record Acked(String docId, long revision, String clientOpId) implements SubmitReply {}

  /**
   * The operations after {@code fromRevision}, in order, one page of them: {@code revision} is
   * the newest, and a page that ends before it is followed by asking from its last operation.
   */
  public record Ops(String docId, long fromRevision, long revision, List<HistoryEntry> ops) implements GetOpsReply {}

  public record Editors(String docId, String owner, List<String> editors) implements AddEditorReply {}

  // ---------------------------------------------------------------------------------------
  // Pushes to subscribers

  public sealed interface Push extends CborSerializable {}

  /** Revision {@code revision}, persisted; {@code op} applies to the text at revision - 1. */
  public record OpApplied(String docId, long revision, TextOperation op, String author, String clientOpId)
      implements Push {}

  /** A session's cursor, in the text at {@code revision}. */
  public record CursorMoved(
      String docId, String userId, String sessionId, long revision, int position, int selectionEnd)
      implements Push {}

  /** The session left the document. */
  public record CursorRemoved(String docId, String userId, String sessionId) implements Push {}

  public record EditorsChanged(String docId, String owner, List<String> editors) implements Push {}

  /**
   * The subscription ended because the user is no longer a member of the owning room (or, for
   * a subscriber that does not watch the entity, because the entity stopped). Subscribe again;
   * that is refused if the user may no longer read the document.
   */
  public record DocumentClosed(String docId) implements Push {}

  // ---------------------------------------------------------------------------------------
  // Events

  public sealed interface Event extends CborSerializable {
    String docId();
  }

  /** {@code room} is the owning room, null for none (and in events written before rooms owned documents). */
  public record DocumentCreated(String docId, String owner, String text, List<String> editors, String room)
      implements Event {}

  /** {@code op} is the operation as applied: transformed to the text at revision - 1. */
  public record OperationApplied(String docId, long revision, TextOperation op, String author, String clientOpId)
      implements Event {}

  public record EditorAdded(String docId, String editorId) implements Event {}

  // ---------------------------------------------------------------------------------------
  // State

  /** One applied operation, as retained for transformation and catch-up. */
  public record HistoryEntry(long revision, TextOperation op, String author, String clientOpId)
      implements CborSerializable {}

  /** A client operation id the document remembers, and the revision it became. */
  public record DedupEntry(String userId, String clientOpId, long revision) implements CborSerializable {}

  /** Where a session's cursor is; not journaled. */
  public record Cursor(String userId, String sessionId, int position, int selectionEnd)
      implements CborSerializable {}

  /**
   * The document as the journal has it. {@code owner} is null until it is created; {@code room}
   * is the owning room, null for none;
   * {@code history} holds the operations of revisions {@code revision - history.size() + 1} to
   * {@code revision}; {@code recentClientOps} the newest client operation ids, oldest first.
   */
  public record State(
      String owner,
      String room,
      List<String> editors,
      String text,
      long revision,
      List<HistoryEntry> history,
      List<DedupEntry> recentClientOps,
      @JsonIgnore Map<String, Long> clientOpIndex,
      @JsonIgnore long historySize)
      implements CborSerializable {

    /**
     * The two windows are persistent vectors (pcollections) and the retry index a persistent
     * map derived from the dedup window (not stored in snapshots): an operation adds to each in
     * O(log n) instead of copying a thousand entries.
     */
    public State {
      editors = List.copyOf(editors);
      history = history instanceof PVector<HistoryEntry> vector ? vector : TreePVector.from(history);
      recentClientOps = recentClientOps instanceof PVector<DedupEntry> vector ? vector : TreePVector.from(recentClientOps);
      clientOpIndex = clientOpIndex instanceof PMap<String, Long> index ? index : indexOf(recentClientOps);
      // Derived like the index: what the retained operations weigh (0 from a snapshot).
      historySize = historySize > 0 || history.isEmpty() ? historySize : history.stream().mapToLong(h -> sizeBound(h.op())).sum();
    }

    static State empty() {
      return new State(null, null, List.of(), "", 0, List.of(), List.of(), null, 0);
    }

    public boolean exists() {
      return owner != null;
    }

    /**
     * Whether the document itself names {@code userId}: its owner and editors may always open,
     * read and edit it. The members of an owning room may too, but that the room knows.
     */
    public boolean isOwnerOrEditor(String userId) {
      return exists() && userId != null && (owner.equals(userId) || editors.contains(userId));
    }

    public boolean ownedByRoom() {
      return room != null;
    }

    /** The oldest base revision whose later operations are all retained. */
    public long oldestRetainedBase() {
      return revision - history.size();
    }

    /** The retained operations after {@code base}, which must be within the retained window. */
    public List<HistoryEntry> historyAfter(long base) {
      return history.subList((int) (base - oldestRetainedBase()), history.size());
    }

    /** The revision an earlier submission of {@code clientOpId} by {@code userId} became. */
    public Optional<Long> revisionOf(String userId, String clientOpId) {
      return Optional.ofNullable(clientOpIndex.get(key(userId, clientOpId)));
    }

    State created(DocumentCreated event) {
      return new State(event.owner(), event.room(), event.editors(), event.text(), 0, List.of(), List.of(), null, 0);
    }

    State applied(OperationApplied event, DocumentSettings limits) {
      return applied(event, event.op().apply(text), limits);
    }

    /** As {@link #applied(OperationApplied, DocumentSettings)}, with the new text computed. */
    State applied(OperationApplied event, String newText, DocumentSettings limits) {
      HistoryEntry entry = new HistoryEntry(event.revision(), event.op(), event.author(), event.clientOpId());
      PVector<HistoryEntry> nextHistory = (PVector<HistoryEntry>) history;
      long entrySize = sizeBound(event.op());
      long size = historySize;
      // Bounded by count and by weight; the newest operation is always kept.
      while (!nextHistory.isEmpty()
          && (nextHistory.size() >= limits.retainedOps() || size + entrySize > limits.retainedBytes())) {
        size -= sizeBound(nextHistory.get(0).op());
        nextHistory = nextHistory.minus(0);
      }
      PVector<DedupEntry> nextIds = (PVector<DedupEntry>) recentClientOps;
      PMap<String, Long> nextIndex = (PMap<String, Long>) clientOpIndex;
      while (!nextIds.isEmpty() && nextIds.size() >= limits.dedupWindow()) {
        DedupEntry dropped = nextIds.get(0);
        nextIds = nextIds.minus(0);
        String droppedKey = key(dropped.userId(), dropped.clientOpId());
        if (Long.valueOf(dropped.revision()).equals(nextIndex.get(droppedKey))) {
          nextIndex = nextIndex.minus(droppedKey);
        }
      }
      return new State(
          owner,
          room,
          editors,
          newText,
          event.revision(),
          nextHistory.plus(entry),
          nextIds.plus(new DedupEntry(event.author(), event.clientOpId(), event.revision())),
          nextIndex.plus(key(event.author(), event.clientOpId()), event.revision()),
          size + entrySize);
    }

    State withEditor(String editorId) {
      TreeSet<String> more = new TreeSet<>(editors);
      more.add(editorId);
      return new State(owner, room, List.copyOf(more), text, revision, history, recentClientOps, clientOpIndex, historySize);
    }

    private static PMap<String, Long> indexOf(List<DedupEntry> ids) {
      PMap<String, Long> index = HashTreePMap.empty();
      for (DedupEntry id : ids) {
        index = index.plus(key(id.userId(), id.clientOpId()), id.revision());
      }
      return index;
    }

    private static String key(String userId, String clientOpId) {
      return userId + '\n' + clientOpId;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Behavior

  private final String docId;
  private final DocumentSettings settings;
  private final Rooms rooms;
  private final Clock clock;
  private final ActorContext<Command> context;

  // Ephemeral, per incarnation (see the class comment): live subscriptions and their cursors.
  private final Map<ActorRef<Push>, SessionKey> subscribers = new LinkedHashMap<>();
  /** Subscribers that do not watch this entity (see {@link Subscribe#watching}). */
  private final Set<ActorRef<Push>> unwatching = new HashSet<>();
  private final Map<SessionKey, Cursor> cursors = new LinkedHashMap<>();

  // Group commit: submissions gathered for the next write, whether a Flush is on its way, and
  // the submissions of the write in flight (told to retry if it fails).
  private final List<Submit> pending = new ArrayList<>();
  private boolean flushScheduled;
  private List<Submit> inFlight = List.of();

  // The owning room's answers (see the class comment): until when (clock millis) each member
  // was found to be one; the commands of the users whose answer is awaited, in arrival order;
  // and the creations waiting for the room. All of it is a cache: a new incarnation asks again.
  private final Map<String, Long> memberUntil = new HashMap<>();
  private final Map<String, List<Command>> awaitingRoom = new HashMap<>();
  private final List<Create> creating = new ArrayList<>();

  private record SessionKey(String userId, String sessionId) {}

  /** Whether a user may use the document now, or the owning room must be asked first. */
  private enum Access {
    GRANTED,
    DENIED,
    ASK_ROOM
  }

  private DocumentEntity(
      String docId, DocumentSettings settings, Rooms rooms, Clock clock, ActorContext<Command> context) {
    super(PersistenceId.of(ENTITY_KEY.name(), docId));
    this.docId = docId;
    this.settings = settings;
    this.rooms = rooms;
    this.clock = clock;
    this.context = context;
  }

  @Override
  public State emptyState() {
    return State.empty();
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    // Events stay in the journal (the full edit history); snapshots bound the replay.
    return RetentionCriteria.snapshotEvery(settings.snapshotEvery(), 2);
  }

  @Override
  public CommandHandler<Command, Event, State> commandHandler() {
    CommandHandlerBuilder<Command, Event, State> builder = newCommandHandlerBuilder();
    builder
        .forState(state -> !state.exists())
        .onCommand(Create.class, this::onCreate)
        .onCommand(Open.class, (state, open) -> Effect().reply(open.replyTo(), notFound()))
        .onCommand(Subscribe.class, (state, subscribe) -> Effect().reply(subscribe.replyTo(), notFound()))
        .onCommand(Submit.class, (state, submit) -> Effect().reply(submit.replyTo(), notFound()))
        .onCommand(GetOps.class, (state, get) -> Effect().reply(get.replyTo(), notFound()))
        .onCommand(AddEditor.class, (state, add) -> Effect().reply(add.replyTo(), notFound()));
    builder
        .forState(State::exists)
        .onCommand(
            Create.class,
            (state, create) ->
                Effect().reply(create.replyTo(), new Rejected(ALREADY_EXISTS, "document " + docId + " exists")))
        .onCommand(Open.class, (state, open) -> guarded(state, open.userId(), open))
        .onCommand(Subscribe.class, (state, subscribe) -> guarded(state, subscribe.userId(), subscribe))
        .onCommand(Submit.class, (state, submit) -> guarded(state, submit.userId(), submit))
        .onCommand(GetOps.class, (state, get) -> guarded(state, get.userId(), get))
        .onCommand(AddEditor.class, this::onAddEditor);
    builder
        .forAnyState()
        .onCommand(CreateChecked.class, this::onCreateChecked)
        .onCommand(MembershipChecked.class, this::onMembershipChecked)
        .onCommand(Flush.class, this::onFlush)
        .onCommand(Unsubscribe.class, (state, unsubscribe) -> removeSubscriber(unsubscribe.subscriber()))
        .onCommand(SubscriberTerminated.class, (state, terminated) -> removeSubscriber(terminated.subscriber()))
        .onCommand(UpdateCursor.class, this::onUpdateCursor)
        .onCommand(Stop.class, this::onStop);
    return builder.build();
  }

  private Effect<Event, State> onCreate(State state, Create create) {
    if (create.ownerId() == null || create.ownerId().isBlank()) {
      return Effect().reply(create.replyTo(), new Rejected(BAD_REQUEST, "a document needs an owner"));
    }
    if (settings.tooLarge(create.initialText())) {
      return Effect().reply(create.replyTo(), tooLarge(create.initialText().length()));
    }
    try {
      // An insert refuses lone surrogates, which the journal's CBOR could not encode.
      TextOperation.builder().insert(create.initialText()).build();
    } catch (InvalidOperationException e) {
      return Effect().reply(create.replyTo(), new Rejected(BAD_TEXT, e.getMessage()));
    }
    if (create.room() == null) {
      return persistCreated(create);
    }
    if (create.room().isBlank()) {
      return Effect().reply(create.replyTo(), new Rejected(BAD_REQUEST, "a room id must not be blank"));
    }
    return Effect()
        .none()
        .thenRun(
            unchanged -> {
              creating.add(create);
              askRoom(create.room(), create.ownerId(), answer -> new CreateChecked(create, answer));
            });
  }

  private Effect<Event, State> onCreateChecked(State state, CreateChecked checked) {
    Create create = checked.create();
    Rejected refusal =
        state.exists()
            ? new Rejected(ALREADY_EXISTS, "document " + docId + " exists")
            : switch (checked.answer()) {
              case MEMBER -> null;
              case NOT_A_MEMBER -> new Rejected(
                  NOT_A_MEMBER, create.ownerId() + " is not a member of room " + create.room());
              case NO_SUCH_ROOM -> new Rejected(ROOM_NOT_FOUND, "room " + create.room() + " does not exist");
              case NO_ANSWER -> roomSilent(create.room());
            };
    if (refusal != null) {
      return Effect()
          .none()
          .thenRun(unchanged -> creating.remove(create))
          .thenReply(create.replyTo(), unchanged -> refusal);
    }
    // Removed only once written: should the write fail, the stopping entity answers unavailable.
    return persistCreated(create).thenRun(created -> creating.remove(create));
  }

  private EffectBuilder<Event, State> persistCreated(Create create) {
    TreeSet<String> editors = new TreeSet<>(create.editors());
    editors.remove(create.ownerId());
    return Effect()
        .persist(new DocumentCreated(docId, create.ownerId(), create.initialText(), List.copyOf(editors), create.room()))
        .thenRun(created -> create.replyTo().tell(new Created(docId, created.revision())));
  }

  // ---------------------------------------------------------------------------------------
  // Who may use the document

  /** Serves {@code command} of {@code userId} if the user may use the document, once known. */
  private Effect<Event, State> guarded(State state, String userId, Command command) {
    return switch (access(state, userId)) {
      case GRANTED -> command instanceof Submit submit
          ? onSubmit(state, submit)
          : Effect().none().thenRun(now -> serve(now, command));
      // Someone who may not use the document hears what they would of no document at all,
      // so the answer does not tell a stranger whether it exists.
      case DENIED -> Effect().none().thenRun(unchanged -> refuse(command, notFound()));
      case ASK_ROOM -> Effect().none().thenRun(unchanged -> awaitRoom(state.room(), userId, command));
    };
  }

  private Access access(State state, String userId) {
    if (state.isOwnerOrEditor(userId)) {
      return Access.GRANTED;
    }
    if (!state.ownedByRoom() || userId == null) {
      return Access.DENIED;
    }
    Long until = memberUntil.get(userId);
    return until != null && clock.millis() < until ? Access.GRANTED : Access.ASK_ROOM;
  }

  /** Holds {@code command} until the room answers for {@code userId}; asks it unless asked already. */
  private void awaitRoom(String roomId, String userId, Command command) {
    List<Command> waiting = awaitingRoom.get(userId);
    if (waiting != null) {
      waiting.add(command);
      return;
    }
    awaitingRoom.put(userId, new ArrayList<>(List.of(command)));
    askRoom(roomId, userId, answer -> new MembershipChecked(userId, answer));
  }

  private void askRoom(String roomId, String userId, Function<RoomAnswer, Command> then) {
    context.ask(
        RoomEntity.MembershipReply.class,
        rooms.room(roomId),
        settings.roomAskTimeout(),
        replyTo -> new RoomEntity.IsMember(userId, replyTo),
        (reply, failure) -> then.apply(RoomAnswer.of(reply, failure)));
  }

  /**
   * Serves the user's waiting commands in their order, or refuses them all. Submissions join
   * the next write, behind any gathered already, so one user's operations keep their order.
   */
  private Effect<Event, State> onMembershipChecked(State state, MembershipChecked checked) {
    String userId = checked.userId();
    RoomAnswer answer = checked.answer();
    if (answer == RoomAnswer.MEMBER || state.isOwnerOrEditor(userId)) {
      return Effect()
          .none()
          .thenRun(
              now -> {
                if (answer == RoomAnswer.MEMBER) {
                  memberUntil.put(userId, clock.millis() + settings.roomMembershipTtl().toMillis());
                }
                for (Command command : awaitingRoom.getOrDefault(userId, List.of())) {
                  if (command instanceof Submit submit) {
                    pending.add(submit);
                  } else {
                    serve(now, command);
                  }
                }
                awaitingRoom.remove(userId);
                if (!pending.isEmpty() && !flushScheduled) {
                  flushScheduled = true;
                  context.getSelf().tell(new Flush());
                }
              });
    }
    Rejected refusal = answer == RoomAnswer.NO_ANSWER ? roomSilent(state.room()) : notFound();
    return Effect()
        .none()
        .thenRun(
            unchanged -> {
              memberUntil.remove(userId);
              awaitingRoom.getOrDefault(userId, List.of()).forEach(command -> refuse(command, refusal));
              awaitingRoom.remove(userId);
              if (answer != RoomAnswer.NO_ANSWER) {
                endSubscriptions(userId);
              }
            });
  }

  /** Answers a read or a subscription of a user who may use the document. */
  private void serve(State state, Command command) {
    if (command instanceof Open open) {
      open.replyTo().tell(opened(state));
    } else if (command instanceof Subscribe subscribe) {
      ActorRef<Push> subscriber = subscribe.subscriber();
      if (subscribers.put(subscriber, new SessionKey(subscribe.userId(), subscribe.sessionId())) == null) {
        context.watchWith(subscriber, new SubscriberTerminated(subscriber));
      }
      if (subscribe.watching()) {
        subscribe.replyTo().tell(new Subscribed(opened(state), context.getSelf()));
      } else {
        unwatching.add(subscriber);
        subscribe.replyTo().tell(opened(state));
      }
    } else if (command instanceof GetOps get) {
      get.replyTo().tell(ops(state, get));
    } else if (command instanceof AddEditor add) {
      add.replyTo().tell(onlyTheOwnerAddsEditors());
    } else {
      throw new IllegalArgumentException("not a read: " + command);
    }
  }

  private static void refuse(Command command, Rejected refusal) {
    if (command instanceof Open open) {
      open.replyTo().tell(refusal);
    } else if (command instanceof Subscribe subscribe) {
      subscribe.replyTo().tell(refusal);
    } else if (command instanceof Submit submit) {
      submit.replyTo().tell(refusal);
    } else if (command instanceof GetOps get) {
      get.replyTo().tell(refusal);
    } else if (command instanceof AddEditor add) {
      add.replyTo().tell(refusal);
    } else {
      throw new IllegalArgumentException("not a guarded command: " + command);
    }
  }

  /** The user left the owning room: their sessions stop hearing of the document. */
  private void endSubscriptions(String userId) {
    List<ActorRef<Push>> theirs =
        subscribers.entrySet().stream()
            .filter(subscription -> subscription.getValue().userId().equals(userId))
            .map(Map.Entry::getKey)
            .toList();
    for (ActorRef<Push> subscriber : theirs) {
      drop(subscriber);
      subscriber.tell(new DocumentClosed(docId));
    }
  }

  private Effect<Event, State> removeSubscriber(ActorRef<Push> subscriber) {
    if (!subscribers.containsKey(subscriber)) {
      return Effect().none();
    }
    return Effect().none().thenRun(unchanged -> drop(subscriber));
  }

  private void drop(ActorRef<Push> subscriber) {
    SessionKey session = subscribers.remove(subscriber);
    unwatching.remove(subscriber);
    context.unwatch(subscriber);
    if (!subscribers.containsValue(session) && cursors.remove(session) != null) {
      push(new CursorRemoved(docId, session.userId(), session.sessionId()));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Operations

  private Effect<Event, State> onSubmit(State state, Submit submit) {
    if (flushScheduled) {
      return Effect().none().thenRun(unchanged -> pending.add(submit));
    }
    return commit(state, List.of(submit));
  }

  private Effect<Event, State> onFlush(State state, Flush flush) {
    flushScheduled = false;
    if (pending.isEmpty()) {
      return Effect().none();
    }
    return commit(state, drainPending());
  }

  private Effect<Event, State> onStop(State state, Stop stop) {
    if (pending.isEmpty()) {
      return Effect().stop();
    }
    return commit(state, drainPending()).thenStop();
  }

  /**
   * The next write's submissions, oldest first: at most {@link #MAX_BATCH}, and no more than
   * {@link #MAX_BATCH_BYTES} of operations (always at least one), so a burst of large pastes
   * never makes a journal batch Cassandra refuses (its batch_size_fail_threshold, 50 KiB by
   * default). What is left waits for the next write.
   */
  private List<Submit> drainPending() {
    int count = 0;
    long bytes = 0;
    while (count < pending.size() && count < MAX_BATCH) {
      bytes += sizeBound(pending.get(count).op());
      if (count > 0 && bytes > MAX_BATCH_BYTES) {
        break;
      }
      count++;
    }
    List<Submit> taken = pending.subList(0, count);
    List<Submit> batch = List.copyOf(taken);
    taken.clear();
    return batch;
  }

  /** An upper bound of an operation's journaled size: 3 UTF-8 bytes per code unit inserted. */
  private static long sizeBound(TextOperation op) {
    if (op == null) {
      return 0;
    }
    long bytes = 0;
    for (TextOperation.Component c : op.components()) {
      bytes += 8 + (c instanceof TextOperation.Insert insert ? 3L * insert.s().length() : 0);
    }
    return bytes;
  }

  /**
   * Decides every submission of {@code batch} in order, each against the state the previous
   * ones leave, and writes the accepted ones as one atomic write. All replies and pushes wait
   * for that write.
   */
  private EffectBuilder<Event, State> commit(State state, List<Submit> batch) {
    List<Outcome> outcomes = new ArrayList<>(batch.size());
    List<Event> events = new ArrayList<>();
    State next = state;
    for (Submit submit : batch) {
      Outcome outcome = decide(next, submit);
      if (outcome instanceof Accepted accepted) {
        events.add(accepted.event());
        next = accepted.after();
      }
      outcomes.add(outcome);
    }
    if (events.isEmpty()) {
      return Effect()
          .none()
          .thenRun(
              unchanged -> {
                replyAll(outcomes);
                flushRest();
              });
    }
    // Remembered before the write so the failure signal can tell these senders to retry.
    inFlight = batch;
    return Effect()
        .persist(events)
        .thenRun(
            written -> {
              inFlight = List.of();
              replyAll(outcomes);
              for (Outcome outcome : outcomes) {
                if (outcome instanceof Accepted accepted) {
                  publish(accepted.event());
                }
              }
              // Whatever arrived during the write is gathered until this Flush comes round.
              flushScheduled = true;
              context.getSelf().tell(new Flush());
            });
  }

  /** A batch that wrote nothing may have left submissions behind (see drainPending). */
  private void flushRest() {
    if (!pending.isEmpty() && !flushScheduled) {
      flushScheduled = true;
      context.getSelf().tell(new Flush());
    }
  }

  /** Decides a submission of a user already let in (see {@link #guarded}). */
  private Outcome decide(State state, Submit submit) {
    if (submit.clientOpId() == null || submit.clientOpId().isEmpty()) {
      return new Refused(submit, new Rejected(BAD_REQUEST, "a submission needs a clientOpId"));
    }
    Optional<Long> earlier = state.revisionOf(submit.userId(), submit.clientOpId());
    if (earlier.isPresent()) {
      return new Repeated(submit, earlier.get());
    }
    if (submit.op() == null) {
      return new Refused(submit, new Rejected(BAD_OPERATION, "a submission needs an operation"));
    }
    Rejected badBase = checkBase(state, submit.baseRevision());
    if (badBase != null) {
      return new Refused(submit, badBase);
    }
    try {
      TextOperation op = submit.op();
      for (HistoryEntry applied : state.historyAfter(submit.baseRevision())) {
        op = TextOperation.transform(op, applied.op()).aPrime();
      }
      String text = op.apply(state.text());
      if (text.length() > state.text().length() && settings.tooLarge(text)) {
        return new Refused(submit, tooLarge(text.length()));
      }
      OperationApplied event =
          new OperationApplied(docId, state.revision() + 1, op, submit.userId(), submit.clientOpId());
      return new Accepted(submit, event, state.applied(event, text, settings));
    } catch (InvalidOperationException e) {
      return new Refused(submit, new Rejected(e.code(), e.getMessage()));
    }
  }

  /** Null if the operations after {@code base} are all retained, else why not. */
  private static Rejected checkBase(State state, long base) {
    if (base < 0 || base > state.revision()) {
      return new Rejected(
          BAD_REVISION, "revision " + base + " is not between 0 and the current " + state.revision());
    }
    if (base < state.oldestRetainedBase()) {
      return new Rejected(
          RESYNC_REQUIRED,
          "revision " + base + " is older than the oldest retained " + state.oldestRetainedBase()
              + "; reopen the document");
    }
    return null;
  }

  private void replyAll(List<Outcome> outcomes) {
    for (Outcome outcome : outcomes) {
      Submit submit = outcome.submit();
      if (outcome instanceof Accepted accepted) {
        submit.replyTo().tell(new Acked(docId, accepted.event().revision(), submit.clientOpId()));
      } else if (outcome instanceof Repeated repeated) {
        submit.replyTo().tell(new Acked(docId, repeated.revision(), submit.clientOpId()));
      } else {
        submit.replyTo().tell(((Refused) outcome).rejection());
      }
    }
  }

  /** Pushes a persisted operation and moves the cursors it shifts. */
  private void publish(OperationApplied event) {
    cursors.replaceAll(
        (session, cursor) ->
            new Cursor(
                cursor.userId(),
                cursor.sessionId(),
                transformIndex(cursor.position(), event.op()),
                transformIndex(cursor.selectionEnd(), event.op())));
    push(new OpApplied(docId, event.revision(), event.op(), event.author(), event.clientOpId()));
  }

  private GetOpsReply ops(State state, GetOps get) {
    Rejected badBase = checkBase(state, get.fromRevision());
    if (badBase != null) {
      return badBase;
    }
    return new Ops(docId, get.fromRevision(), state.revision(), page(state.historyAfter(get.fromRevision())));
  }

  /**
   * The first operations of {@code after}, at most {@link #OPS_PAGE} of them weighing at most
   * {@link #OPS_PAGE_BYTES} together (always at least one): one answer stays a few tens of
   * kilobytes however far behind the client is, and a client whose page ends before
   * {@code Ops.revision} asks again from its last operation (docs/protocol.md).
   */
  static List<HistoryEntry> page(List<HistoryEntry> after) {
    long weight = 0;
    int end = 0;
    while (end < after.size() && end < OPS_PAGE) {
      weight += sizeBound(after.get(end).op());
      if (end > 0 && weight > OPS_PAGE_BYTES) {
        break;
      }
      end++;
    }
    return List.copyOf(after.subList(0, end));
  }

  private Effect<Event, State> onAddEditor(State state, AddEditor add) {
    if (!state.owner().equals(add.byUserId())) {
      // Refused as forbidden only to those who may use the document; a stranger is told
      // there is no such document, as for every other request.
      return guarded(state, add.byUserId(), add);
    }
    if (add.editorId() == null || add.editorId().isBlank()) {
      return Effect().reply(add.replyTo(), new Rejected(BAD_REQUEST, "an editor needs a user id"));
    }
    if (state.isOwnerOrEditor(add.editorId())) {
      return Effect().reply(add.replyTo(), new Editors(docId, state.owner(), state.editors()));
    }
    return Effect()
        .persist(new EditorAdded(docId, add.editorId()))
        .thenRun(
            added -> {
              add.replyTo().tell(new Editors(docId, added.owner(), added.editors()));
              push(new EditorsChanged(docId, added.owner(), added.editors()));
            });
  }

  private Effect<Event, State> onUpdateCursor(State state, UpdateCursor update) {
    SessionKey session = new SessionKey(update.userId(), update.sessionId());
    if (!subscribers.containsValue(session) || checkBase(state, update.revision()) != null) {
      // A cursor from an unsubscribed session or from an unknown revision is dropped; the
      // session sends its next move soon enough.
      return Effect().none();
    }
    int position = update.position();
    int selectionEnd = update.selectionEnd();
    for (HistoryEntry applied : state.historyAfter(update.revision())) {
      position = transformIndex(position, applied.op());
      selectionEnd = transformIndex(selectionEnd, applied.op());
    }
    int length = state.text().length();
    Cursor cursor =
        new Cursor(
            update.userId(),
            update.sessionId(),
            Math.max(0, Math.min(position, length)),
            Math.max(0, Math.min(selectionEnd, length)));
    return Effect()
        .none()
        .thenRun(
            unchanged -> {
              cursors.put(session, cursor);
              push(
                  new CursorMoved(
                      docId,
                      cursor.userId(),
                      cursor.sessionId(),
                      state.revision(),
                      cursor.position(),
                      cursor.selectionEnd()));
            });
  }

  /** Where {@code index} moves when {@code op} is applied (ot.js's transformIndex). */
  static int transformIndex(int index, TextOperation op) {
    int remaining = index;
    int moved = index;
    for (TextOperation.Component component : op.components()) {
      if (component instanceof TextOperation.Retain retain) {
        remaining -= retain.n();
      } else if (component instanceof TextOperation.Insert insert) {
        moved += insert.length();
      } else {
        moved -= Math.min(remaining, component.length());
        remaining -= component.length();
      }
      if (remaining < 0) {
        break;
      }
    }
    return moved;
  }

  private void push(Push message) {
    for (ActorRef<Push> subscriber : subscribers.keySet()) {
      subscriber.tell(message);
    }
  }

  private Opened opened(State state) {
    return new Opened(
        docId,
        state.text(),
        state.revision(),
        state.owner(),
        state.room(),
        state.editors(),
        List.copyOf(cursors.values()));
  }

  private Rejected notFound() {
    return new Rejected(NOT_FOUND, "no document " + docId);
  }

  private static Rejected onlyTheOwnerAddsEditors() {
    return new Rejected(FORBIDDEN, "only the owner adds editors");
  }

  private static Rejected roomSilent(String roomId) {
    return new Rejected(UNAVAILABLE, "room " + roomId + " did not answer in time; retry");
  }

  private Rejected tooLarge(int chars) {
    return new Rejected(
        DOCUMENT_TOO_LARGE,
        "the document would be " + 2L * chars + " bytes (UTF-16); the limit is " + settings.maxBytes());
  }

  // ---------------------------------------------------------------------------------------
  // Events applied

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onEvent(DocumentCreated.class, (state, created) -> state.created(created))
        .onEvent(OperationApplied.class, (state, applied) -> state.applied(applied, settings))
        .onEvent(EditorAdded.class, (state, added) -> state.withEditor(added.editorId()))
        .build();
  }

  // ---------------------------------------------------------------------------------------
  // Signals

  @Override
  public SignalHandler<State> signalHandler() {
    return newSignalHandlerBuilder()
        .onSignal(
            JournalPersistFailed.class,
            (state, failed) -> refuseInFlight("the journal write failed: " + failed.failure().getMessage()))
        .onSignal(
            JournalPersistRejected.class,
            (state, rejected) ->
                refuseInFlight("the journal refused the write: " + rejected.failure().getMessage()))
        .onSignal(PostStop.instance(), state -> onStopped())
        .build();
  }

  /**
   * Whoever waits for the room's answer retries. Subscribers that watch this entity learn of
   * the stop from the stop itself; the others are told.
   */
  private void onStopped() {
    unwatching.forEach(subscriber -> subscriber.tell(new DocumentClosed(docId)));
    Rejected moving = new Rejected(UNAVAILABLE, "the document stopped before the room answered; retry");
    awaitingRoom.values().forEach(waiting -> waiting.forEach(command -> refuse(command, moving)));
    creating.forEach(create -> create.replyTo().tell(moving));
  }

  /** The write failed, so the entity stops; its senders may retry (the dedup window keeps that safe). */
  private void refuseInFlight(String message) {
    for (Submit submit : inFlight) {
      submit.replyTo().tell(new Rejected(UNAVAILABLE, message));
    }
    inFlight = List.of();
  }

  // ---------------------------------------------------------------------------------------
  // How one submission of a batch was decided (internal, never sent)

  private sealed interface Outcome {
    Submit submit();
  }

  private record Accepted(Submit submit, OperationApplied event, State after) implements Outcome {}

  private record Repeated(Submit submit, long revision) implements Outcome {}

  private record Refused(Submit submit, Rejected rejection) implements Outcome {}
}
