package parley.transport;

import java.util.HashMap;
import java.util.HashSet;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import parley.chat.Ids;
import parley.chat.fanout.NodeHub;
import parley.chat.handler.ChatHandler;
import parley.chat.handler.ChatPushes;
import parley.chat.room.RoomEntity;
import parley.chat.room.RoomPush;
import parley.chat.room.TimelineEvent;
import parley.chat.user.UserEntity;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.Push;
import parley.protocol.Reply;
import parley.protocol.Request;

/**
 * The rooms a connection follows: each room's timeline in seq order, exactly once, through
 * the node's hub ({@link OrderedDelivery}: a push that skips ahead makes it fetch the missing
 * range first, design rule 6), from where {@code resume} or a transport's cursor says, and
 * the rooms the user joins later from their join event on.
 */
final class RoomStreams {

  /** A followed room: its delivery, and the epoch that tells a stale cursor. */
  private static final class RoomStream {
    final OrderedDelivery<TimelineEvent> order;
    /** The room's epoch as the room reported it (0 until the first fetch answers). */
    long epoch;
    /** The epoch the client's cursor was saved against, checked at the first fetch. */
    long expectedEpoch;
    /**
     * Whether the room has answered a fetch for this user, that is checked they are a member.
     * Until then its live pushes are dropped: a client may name any room in {@code resume},
     * and nothing of a room may reach a stranger. What was dropped is fetched after.
     */
    boolean admitted;

    RoomStream(long delivered, long expectedEpoch, int maxWaiting) {
      this.order = OrderedDelivery.after(delivered, maxWaiting, TimelineEvent::seq);
      this.expectedEpoch = expectedEpoch;
    }
  }

  /** How often a session asks again for a room list its user's entity did not give. */
  private static final Duration ROOM_LIST_RETRY = Duration.ofSeconds(2);
  /**
   * How long {@code resume} waits for the user's room list before it starts the rooms the
   * client named without it: a user entity answers in milliseconds unless its node is gone,
   * and a client reconnecting from a failed node should have its healthy rooms within a
   * second.
   */
  private static final Duration ROOM_LIST_WAIT = Duration.ofMillis(500);

  private final Session session;
  private final String userId;
  private final ActorRef<RoomPush> pushes;
  private final Map<String, RoomStream> rooms = new HashMap<>();
  /** Rooms a starting SSE or poll session has not yet read a first page of. */
  private final Set<String> awaitingFirstPage = new HashSet<>();
  /**
   * Whether room events flow: after {@code resume} (WebSocket), at once for SSE and polls.
   * Until then no room is followed, so nothing is sent twice when resume names a position
   * (docs/protocol.md, Catch-up).
   */
  private boolean resumed;
  /**
   * A starting SSE or poll session reads no room until its job pushes are placed ({@link
   * #release}): see {@link Session#roomsPlaced}.
   */
  private boolean holdingFetches;
  private boolean startReported;
  /**
   * The checkpoint this connection's cursors name (SSE, polls; {@link ResumeCursor}): its id,
   * each room's seq in it, and whether a newer one is being saved.
   */
  private String checkpoint;
  private Map<String, Long> checkpointSeqs = Map.of();
  private boolean savingCheckpoint;

  RoomStreams(Session session, ActorRef<RoomPush> pushes) {
    this.session = session;
    this.userId = session.userId();
    this.pushes = pushes;
  }

  /** Another connection of the user (or REST) joined a room: followed from its join event on. */
  void onRoomAdded(String room, long joinSeq) {
    if (resumed && !rooms.containsKey(room)) {
      follow(room, joinSeq - 1, 0);
    }
  }

  /** The client lagged: what was held is fetched again once it has caught up. */
  void dropWaiting() {
    rooms.values().forEach(s -> s.order.dropWaiting());
  }

  /** The client caught up after lagging: continue every room after what was delivered. */
  void resumeAfterLag() {
    fetchAll();
  }

  /** The job pushes are placed: the rooms' events may flow. */
  void release() {
    holdingFetches = false;
    fetchAll();
  }

  private void fetchAll() {
    rooms.forEach((room, s) -> {
      if (!s.order.fetching()) {
        fetch(room, s);
      }
    });
  }

  /** Each followed room's position: what the {@code lagged} notice tells. */
  Map<String, Long> positions() {
    Map<String, Long> positions = new TreeMap<>();
    rooms.forEach((room, s) -> positions.put(room, s.order.delivered()));
    return positions;
  }

  /** What a chat reply means for what this connection follows. */
  void followAfter(Request.Chat request, Reply reply) {
    if (reply instanceof Reply.Written written) {
      if (request instanceof Request.CreateRoom || request instanceof Request.Join) {
        if (resumed && !rooms.containsKey(written.room())) {
          follow(written.room(), written.seq() - 1, 0);
        }
      } else if (request instanceof Request.Leave) {
        unfollow(written.room());
      }
    } else if (reply instanceof Reply.DirectWritten written && resumed && !rooms.containsKey(written.room())) {
      follow(written.room(), 0, 0);
    }
  }

  /**
   * Follows every room of the user from the client's positions (or its read markers) and
   * sends what it missed; live pushes join seamlessly because delivery is by seq. The reply
   * goes out before any resumed event.
   *
   * <p>The room list lives with the user's entity. If that entity does not answer within
   * {@link #ROOM_LIST_WAIT} (its node is failing over), the rooms the client named start
   * anyway, each on its own (each room checks membership before it delivers anything), the
   * reply says {@code pending}, and the list is asked again until it comes; then
   * {@code resume_complete} names every room followed. A room that answers is never held back
   * by one that does not.
   */
  void resume(String id, Map<String, Long> positions) {
    resumed = true;
    session.ask(user(), UserEntity.GetRooms::new, UserEntity.Rooms.class, ROOM_LIST_WAIT, list -> {
      Map<String, Long> from = new LinkedHashMap<>();
      for (UserEntity.RoomMarker marker : list.rooms()) {
        from.put(marker.room(), positions.getOrDefault(marker.room(), marker.readSeq()));
      }
      session.reply(Codec.reply(id, new Reply.Resumed(from, null)));
      from.forEach((room, after) -> {
        if (!rooms.containsKey(room) || positions.containsKey(room)) {
          followFromClient(room, after);
        }
      });
    }, failure -> {
      session.reply(Codec.reply(id, new Reply.Resumed(new LinkedHashMap<>(positions), true)));
      positions.forEach(this::followFromClient);
      retryRoomList(list -> session.send(Codec.push(new Push.ResumeComplete(positions()))));
    });
  }

  /** A room the client named in {@code resume}, from its position. */
  private void followFromClient(String room, long after) {
    RoomStream stream = rooms.get(room);
    if (stream == null) {
      follow(room, after, 0);
    } else if (after < stream.order.delivered()) {
      // The client says it lacks what this session sent: deliver again from its position.
      stream.order.restart(after);
      fetchIfNeeded(room, stream);
    }
  }

  /** Follows the listed rooms not followed yet, from their read markers. */
  private void followListed(UserEntity.Rooms list) {
    for (UserEntity.RoomMarker marker : list.rooms()) {
      if (!rooms.containsKey(marker.room())) {
        follow(marker.room(), marker.readSeq(), 0);
      }
    }
  }

  /** Asks for the user's room list again every few seconds until it comes (or the session ends). */
  private void retryRoomList(Consumer<UserEntity.Rooms> then) {
    session.later(ROOM_LIST_RETRY, () -> session.ask(user(), UserEntity.GetRooms::new, UserEntity.Rooms.class, list -> {
      followListed(list);
      then.accept(list);
    }, failure -> retryRoomList(then)));
  }

  /**
   * SSE and long-poll sessions start at once: from the client's cursor, or from the read
   * markers for rooms it does not name. (Their routes refused a cursor naming a room the
   * user is not in before the stream started; a room left since is simply not followed.)
   */
  void startFrom(ResumeCursor cursor) {
    resumed = true;
    holdingFetches = true;
    if (cursor != null && cursor.checkpoint() != null) {
      checkpoint = cursor.checkpoint();
      checkpointSeqs = seqs(cursor.base());
    }
    Map<String, ResumeCursor.Position> given = cursor == null ? Map.of() : cursor.positions();
    session.ask(user(), UserEntity.GetRooms::new, UserEntity.Rooms.class, list -> {
      Map<String, ResumeCursor.Position> start = new TreeMap<>();
      for (UserEntity.RoomMarker marker : list.rooms()) {
        ResumeCursor.Position p = given.get(marker.room());
        start.put(marker.room(), p == null ? new ResumeCursor.Position(marker.readSeq(), 0) : p);
      }
      if (!pastCheckpointBound(encode(delta(start), session.jobsPosition()))) {
        followFrom(start);
        return;
      }
      // Too many rooms differ from the cursor's checkpoint (or it has none) to name them all:
      // save where this connection starts first, so its cursors name the new checkpoint from
      // the first event.
      savingCheckpoint = true;
      session.whenDone(saved(start), id -> {
        savingCheckpoint = false;
        if (id != null) {
          checkpoint = id;
          checkpointSeqs = seqs(start);
        }
        followFrom(start);
      });
    }, failure -> {
      // The user's entity did not answer (its node is failing over): start the rooms the
      // cursor names now, and add the others when the list comes.
      followFrom(given);
      retryRoomList(list -> session.send(Codec.push(new Push.ResumeComplete(positions()))));
    });
  }

  private void followFrom(Map<String, ResumeCursor.Position> start) {
    start.forEach((room, p) -> {
      if (!rooms.containsKey(room)) {
        awaitingFirstPage.add(room);
        follow(room, p.seq(), p.epoch());
      }
    });
    session.roomsPlaced();
    reportStartedOnceCaughtUp();
  }

  /**
   * Tells the transport the starting cursor once every room's first page has been read, so a
   * short poll answers with what was already there rather than with nothing.
   */
  private void reportStartedOnceCaughtUp() {
    if (awaitingFirstPage.isEmpty() && !startReported) {
      startReported = true;
      session.roomsStarted();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Delivery of rooms

  private void follow(String room, long deliveredUpTo, long expectedEpoch) {
    RoomStream stream = new RoomStream(deliveredUpTo, expectedEpoch, session.handlers().settings().pageSize() * 4);
    rooms.put(room, stream);
    session.handlers().hub().tell(new NodeHub.Follow(room, pushes));
    fetch(room, stream);
  }

  private void unfollow(String room) {
    if (rooms.remove(room) != null) {
      session.handlers().hub().tell(new NodeHub.Unfollow(room, pushes));
    }
  }

  void onRoomPush(RoomPush push) {
    RoomStream stream = rooms.get(push.room());
    if (stream == null) {
      return;
    }
    if (!stream.admitted) {
      // Nothing is delivered before the room admits the user (a fetch, which checks
      // membership); what a push says of the head is kept, so that fetch goes that far.
      if (push instanceof RoomPush.Published published) {
        published.events().forEach(e -> stream.order.knowHead(e.seq()));
      } else if (push instanceof RoomPush.Head head) {
        stream.order.knowHead(head.lastSeq());
      }
      fetchIfNeeded(push.room(), stream);
      return;
    }
    if (push instanceof RoomPush.Published published) {
      boolean gap = false;
      for (TimelineEvent e : published.events()) {
        gap = stream.order.offer(e, this::deliver) || gap;
      }
      if (gap || stream.order.needsFetch()) {
        fetchIfNeeded(push.room(), stream);
      }
    } else if (push instanceof RoomPush.Head head) {
      stream.order.knowHead(head.lastSeq());
      fetchIfNeeded(push.room(), stream);
    } else if (push instanceof RoomPush.Ephemeral ephemeral) {
      session.send(Codec.push(ChatPushes.ephemeral(ephemeral)));
    }
  }

  private void fetchIfNeeded(String room, RoomStream stream) {
    if (stream.order.needsFetch() && session.open()) {
      fetch(room, stream);
    }
  }

  /** Reads the next page after what was delivered, from the room's memory or the journal. */
  private void fetch(String room, RoomStream stream) {
    if (holdingFetches) {
      return;
    }
    stream.order.startFetch();
    long from = stream.order.delivered() + 1;
    session.ask(room(room), (ActorRef<RoomEntity.EventsReply> r) -> new RoomEntity.GetEvents(userId, from, Long.MAX_VALUE, session.handlers().settings().pageSize(), r), RoomEntity.EventsReply.class, reply -> {
      if (rooms.get(room) != stream) {
        return;
      }
      if (reply instanceof RoomEntity.Rejected rejected) {
        stream.order.fetchFailed();
        if (!ErrorCode.UNAVAILABLE.wire().equals(rejected.code())) {
          unfollow(room);
        }
        firstPageRead(room);
        return;
      }
      RoomEntity.Events events = (RoomEntity.Events) reply;
      stream.admitted = true;
      stream.epoch = events.epoch();
      if (stream.expectedEpoch != 0 && stream.expectedEpoch != events.epoch()) {
        stream.order.fetchFailed();
        reload(room, stream, ErrorCode.CURSOR_STALE, "the cursor predates this room's history (the store was reset); reload the room");
        return;
      }
      stream.expectedEpoch = 0;
      if (events.lastSeq() < stream.order.delivered()) {
        stream.order.fetchFailed();
        reload(room, stream, ErrorCode.CURSOR_AHEAD, "the cursor is ahead of room " + room + " (last seq " + events.lastSeq() + "); reload the room");
        return;
      }
      if (!session.open()) {
        stream.order.fetchFailed();
        return;
      }
      if (stream.order.fetched(events.events(), events.lastSeq(), this::deliver) && session.open()) {
        fetch(room, stream);
      } else if (events.events().isEmpty()) {
        // Pushes dropped before the room admitted the user may lie past this answer.
        fetchIfNeeded(room, stream);
      }
      firstPageRead(room);
    }, failure -> {
      // The room did not answer (moving, or storage slow): the next push or lease renewal
      // of the room (its Head) starts the fetch again.
      if (rooms.get(room) == stream) {
        stream.order.fetchFailed();
      }
    });
  }

  private void firstPageRead(String room) {
    if (awaitingFirstPage.remove(room)) {
      reportStartedOnceCaughtUp();
    }
  }

  /** Hands one event to the client; false (and the session lags) if its buffer is full. */
  private boolean deliver(TimelineEvent e) {
    if (!session.offerEvent(Frames.eventFrame(e), () -> position(e.room(), e.seq()))) {
      return false;
    }
    if (Ids.isDirectRoom(e.room()) && e.isMessage() && !userId.equals(e.user())) {
      acknowledgeDelivery(e);
    }
    if ((TimelineEvent.LEFT.equals(e.kind()) || TimelineEvent.REMOVED.equals(e.kind()))
        && userId.equals(e.user())) {
      unfollow(e.room());
    }
    return true;
  }

  /** The recipient's client has the direct message: its sender hears "delivered", once. */
  private void acknowledgeDelivery(TimelineEvent e) {
    session.ask(user(), (ActorRef<UserEntity.DeliveryReply> r) -> new UserEntity.MarkDelivered(e.room(), e.seq(), r), UserEntity.DeliveryReply.class, reply -> {
      if (reply instanceof UserEntity.MarkedDelivered marked && marked.advanced()) {
        room(e.room()).tell(new RoomEntity.Relay(new RoomPush.Ephemeral(e.room(), "receipt", userId, e.seq(), "delivered", System.currentTimeMillis())));
      }
    }, failure -> {});
  }

  /** The client's position for {@code room} was unusable: say so, and start the room over. */
  private void reload(String room, RoomStream stream, ErrorCode code, String message) {
    session.send(Codec.push(new Push.Reload(room, code.wire(), message)));
    stream.order.reset();
    stream.expectedEpoch = 0;
    fetch(room, stream);
  }

  /** The client's cursor after {@code seq} of {@code room}: every followed room's position. */
  private String position(String room, long seq) {
    Map<String, ResumeCursor.Position> positions = new TreeMap<>();
    rooms.forEach((r, s) -> positions.put(r, new ResumeCursor.Position(r.equals(room) ? seq : s.order.delivered(), s.epoch != 0 ? s.epoch : s.expectedEpoch)));
    return cursorAt(positions, session.jobsPosition());
  }

  /** The current cursor of this session (what it has delivered so far), with {@code jobs} as its place in the job pushes. */
  String cursor(ResumeCursor.Jobs jobs) {
    Map<String, ResumeCursor.Position> positions = new TreeMap<>();
    rooms.forEach((r, s) -> positions.put(r, new ResumeCursor.Position(s.order.delivered(), s.epoch != 0 ? s.epoch : s.expectedEpoch)));
    return cursorAt(positions, jobs);
  }

  /**
   * The cursor for {@code positions}: the checkpoint plus the rooms that moved since. Once
   * that grows past {@code checkpoint-after-chars}, these positions are saved as the next
   * checkpoint; cursors name it once it is written (until then the delta keeps growing).
   * Measured in characters, not rooms, since a room's id may be 1 or 130 characters long.
   */
  private String cursorAt(Map<String, ResumeCursor.Position> positions, ResumeCursor.Jobs jobs) {
    Map<String, ResumeCursor.Position> delta = delta(positions);
    String cursor = encode(delta, jobs);
    if (pastCheckpointBound(cursor) && !savingCheckpoint) {
      savingCheckpoint = true;
      session.whenDone(saved(positions), id -> {
        savingCheckpoint = false;
        if (id != null) {
          checkpoint = id;
          checkpointSeqs = seqs(positions);
        }
      });
    }
    return cursor;
  }

  private String encode(Map<String, ResumeCursor.Position> delta, ResumeCursor.Jobs jobs) {
    return new ResumeCursor(checkpoint, Map.of(), delta, jobs).encode();
  }

  private boolean pastCheckpointBound(String cursor) {
    return cursor.length() > checkpoints().settings().checkpointAfterChars();
  }

  /** The positions that differ from the checkpoint's. */
  private Map<String, ResumeCursor.Position> delta(Map<String, ResumeCursor.Position> positions) {
    Map<String, ResumeCursor.Position> delta = new TreeMap<>();
    positions.forEach((room, p) -> {
      Long saved = checkpointSeqs.get(room);
      if (saved == null || saved != p.seq()) {
        delta.put(room, p);
      }
    });
    return delta;
  }

  /** Saves {@code positions} as a checkpoint: its id, or null if it could not be written. */
  private CompletionStage<String> saved(Map<String, ResumeCursor.Position> positions) {
    return checkpoints().save(userId, positions).handle((id, failure) -> failure == null ? id : null);
  }

  private static Map<String, Long> seqs(Map<String, ResumeCursor.Position> positions) {
    Map<String, Long> seqs = new HashMap<>();
    positions.forEach((room, p) -> seqs.put(room, p.seq()));
    return seqs;
  }

  private CursorCheckpoints checkpoints() {
    return session.handlers().checkpoints();
  }

  private EntityRef<RoomEntity.Command> room(String room) {
    return session.sharding().entityRefFor(RoomEntity.ENTITY_KEY, room);
  }

  private EntityRef<UserEntity.Command> user() {
    return session.sharding().entityRefFor(UserEntity.ENTITY_KEY, userId);
  }
}
