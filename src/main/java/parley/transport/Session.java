package parley.transport;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import parley.chat.ChatSettings;
import parley.chat.Ids;
import parley.chat.fanout.NodeHub;
import parley.chat.handler.ChatHandler;
import parley.chat.handler.ChatPushes;
import parley.chat.room.RoomEntity;
import parley.chat.room.RoomPush;
import parley.chat.room.TimelineEvent;
import parley.chat.user.UserEntity;
import parley.collab.document.DocumentEntity;
import parley.ops.ParleyMetrics;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.ProtocolException;
import parley.protocol.Push;
import parley.protocol.Reply;
import parley.protocol.Request;

/**
 * One client connection, whatever its transport. It owns the connection's lifecycle (welcome,
 * request rate, heartbeats, the outbound buffer, closing) and what the connection follows:
 * each room's timeline in seq order, exactly once ({@link OrderedDelivery}), and the documents
 * it opened ({@link DocumentStreams}). Requests are decoded by the {@link Codec} and answered
 * by the feature's handler; the session only acts on what a reply means for delivery.
 */
public final class Session extends AbstractBehavior<Session.Command> {

  public sealed interface Command {}

  /** One text frame from the client; {@code ackTo} asks for the next (backpressure). */
  public record Inbound(String text, ActorRef<Ack> ackTo) implements Command {}

  /**
   * The frame was over the size limit; only its beginning was kept, to find the request id
   * the error answers.
   */
  public record InboundTooLarge(String prefix, ActorRef<Ack> ackTo) implements Command {}

  public record InboundStarted(ActorRef<Ack> ackTo) implements Command {}

  public record InboundClosed() implements Command {}

  public record InboundFailed(Throwable cause) implements Command {}

  public enum Ack {
    INSTANCE
  }

  /** Node shutdown: tell the client to reconnect elsewhere, then end. */
  public record Drain() implements Command {}

  private record FromRoom(RoomPush push) implements Command {}

  private record FromUser(UserEntity.Notice notice) implements Command {}

  private record FromDocument(DocumentEntity.Push push) implements Command {}

  /**
   * Presence and document subscriptions live in entities' memory: the session renews them
   * periodically, so an entity that restarted or moved learns of it again.
   */
  private record RenewPresence() implements Command {}

  /** An answer (of an entity or a handler), handled on the session's own thread. */
  private record Continue(Runnable work) implements Command {}

  private record LagCheck() implements Command {}

  /** Time to ping the client (interactive sessions). */
  private record SendPing() implements Command {}

  /** Time to check whether the client was heard from within the heartbeat deadline. */
  private record CheckHeartbeat() implements Command {}

  /**
   * How a transport uses the session. A WebSocket client is interactive: it is welcomed, sends
   * {@code resume} itself, and must answer heartbeats. SSE and long-poll clients start from a
   * cursor (or their read markers) at once; they cannot answer pings. A poll is too
   * short-lived to count as being online.
   */
  public record Options(
      boolean welcome, boolean presence, boolean heartbeat, boolean startNow, ResumeCursor startAt) {
    public static Options interactive() {
      return new Options(true, true, true, false, null);
    }

    public static Options stream(ResumeCursor startAt) {
      return new Options(true, true, false, true, startAt);
    }

    public static Options poll(ResumeCursor startAt) {
      return new Options(false, false, false, true, startAt);
    }
  }

  /**
   * The close code of a client that stopped answering heartbeats: 4000-4999 is left to
   * applications (RFC 6455), and 408 is HTTP's Request Timeout.
   */
  private static final int HEARTBEAT_TIMEOUT_CODE = 4408;

  private static final String PING = Codec.push(new Push.Ping());

  private static final Pattern REQUEST_ID = Pattern.compile("\"id\"\\s*:\\s*\"([!-~&&[^\"]]{1,64})\"");

  public static Behavior<Command> create(String userId, Outbound out, Handlers handlers, Options options) {
    ChatSettings settings = handlers.settings();
    return Behaviors.setup(
        context ->
            Behaviors.withTimers(
                timers -> {
                  if (options.presence()) {
                    timers.startTimerWithFixedDelay(new RenewPresence(), settings.hubRenewInterval());
                  }
                  if (options.heartbeat()) {
                    timers.startTimerAtFixedRate(new SendPing(), settings.heartbeatInterval());
                    timers.startSingleTimer(
                        new CheckHeartbeat(), settings.heartbeatInterval().plus(settings.heartbeatTimeout()));
                  }
                  return new Session(context, timers, userId, out, handlers, options);
                }));
  }

  /** A followed room: its delivery, and the epoch that tells a stale cursor. */
  private static final class RoomStream {
    final OrderedDelivery<TimelineEvent> order;
    /** The room's epoch as the room reported it (0 until the first fetch answers). */
    long epoch;
    /** The epoch the client's cursor was saved against, checked at the first fetch. */
    long expectedEpoch;

    RoomStream(long delivered, long expectedEpoch, int maxWaiting) {
      this.order = OrderedDelivery.after(delivered, maxWaiting, TimelineEvent::seq);
      this.expectedEpoch = expectedEpoch;
    }
  }

  private final String userId;
  private final String sessionId = UUID.randomUUID().toString();
  private final Outbound out;
  private final Handlers handlers;
  private final ChatSettings settings;
  private final ClusterSharding sharding;
  private final ActorRef<RoomPush> pushes;
  private final ActorRef<UserEntity.Notice> notices;
  private final DocumentStreams documents;
  private final ParleyMetrics metrics;
  private final Map<String, RoomStream> rooms = new HashMap<>();
  private final TokenBucket requests;
  private final TimerScheduler<Command> timers;
  private final Options options;
  /** When the client was last heard from; null for sessions whose client cannot answer pings. */
  private final Heartbeat heartbeat;
  /** Rooms a starting SSE or poll session has not yet read a first page of. */
  private final Set<String> awaitingFirstPage = new HashSet<>();
  private int overLimit;
  private boolean closed;
  /**
   * Whether room events flow: after {@code resume} (WebSocket), at once for SSE and polls.
   * Until then the session follows no room, so nothing is sent twice when resume names a
   * position (docs/protocol.md, Catch-up).
   */
  private boolean resumed;
  /** The client reads too slowly: nothing is delivered until its buffer drains. */
  private boolean lagged;
  private boolean lagNoticePending;
  private boolean startReported;

  private Session(
      ActorContext<Command> context,
      TimerScheduler<Command> timers,
      String userId,
      Outbound out,
      Handlers handlers,
      Options options) {
    super(context);
    this.timers = timers;
    this.options = options;
    this.userId = userId;
    this.out = out;
    this.handlers = handlers;
    this.settings = handlers.settings();
    this.sharding = ClusterSharding.get(context.getSystem());
    this.pushes = context.messageAdapter(RoomPush.class, FromRoom::new);
    this.notices = context.messageAdapter(UserEntity.Notice.class, FromUser::new);
    this.documents =
        new DocumentStreams(this, context.messageAdapter(DocumentEntity.Push.class, FromDocument::new));
    this.metrics = ParleyMetrics.get(context.getSystem());
    this.requests = new TokenBucket(settings.ratePerSecond(), settings.rateBurst(), System.nanoTime());
    this.heartbeat =
        options.heartbeat()
            ? new Heartbeat(settings.heartbeatInterval(), settings.heartbeatTimeout(), System.nanoTime())
            : null;
    SessionRegistry.get(context.getSystem()).register(context.getSelf());
    if (options.welcome()) {
      send(Codec.push(new Push.Welcome(
          userId,
          sessionId,
          context.getSystem().address().toString(),
          1,
          options.heartbeat() ? settings.heartbeatInterval().toMillis() : null,
          options.heartbeat() ? settings.heartbeatTimeout().toMillis() : null)));
    }
    if (options.presence()) {
      user().tell(new UserEntity.SessionOpened(sessionId, notices, context.getSystem().ignoreRef()));
    }
    if (options.startNow()) {
      resumed = true;
      startFrom(options.startAt());
    }
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(InboundStarted.class, s -> {
          s.ackTo().tell(Ack.INSTANCE);
          return this;
        })
        .onMessage(Inbound.class, this::onInbound)
        .onMessage(InboundTooLarge.class, m -> {
          heard();
          Matcher id = REQUEST_ID.matcher(m.prefix());
          send(Codec.error(id.find() ? id.group(1) : null, ErrorCode.FRAME_TOO_LARGE, "frames are limited to " + settings.maxFrameBytes() + " bytes"));
          m.ackTo().tell(Ack.INSTANCE);
          return this;
        })
        .onMessage(InboundClosed.class, c -> Behaviors.stopped())
        .onMessage(InboundFailed.class, f -> Behaviors.stopped())
        .onMessage(FromRoom.class, m -> {
          onRoomPush(m.push());
          return this;
        })
        .onMessage(FromUser.class, m -> {
          // Another connection (or REST) joined a room: followed from its join event on.
          if (m.notice() instanceof UserEntity.RoomAdded added && resumed && !rooms.containsKey(added.room())) {
            follow(added.room(), added.seq() - 1, 0);
          }
          return this;
        })
        .onMessage(FromDocument.class, m -> {
          documents.onPush(m.push());
          return this;
        })
        .onMessage(RenewPresence.class, r -> {
          user().tell(new UserEntity.SessionOpened(sessionId, notices, getContext().getSystem().ignoreRef()));
          documents.renew();
          return this;
        })
        .onMessage(Continue.class, c -> {
          c.work().run();
          return this;
        })
        .onMessage(Drain.class, d -> {
          closeWith(1012, "service restart: reconnect and resume");
          return this;
        })
        .onMessage(LagCheck.class, c -> {
          onLagCheck();
          return this;
        })
        .onMessage(SendPing.class, p -> {
          // Past the lagged flag: a client that reads slowly is still alive, and the ping
          // (behind what it has yet to read) lets it prove so.
          if (!closed) {
            out.offer(PING);
          }
          return this;
        })
        .onMessage(CheckHeartbeat.class, c -> {
          onCheckHeartbeat();
          return this;
        })
        .onSignal(PostStop.class, s -> {
          SessionRegistry.get(getContext().getSystem()).unregister(getContext().getSelf());
          if (options.presence()) {
            user().tell(new UserEntity.SessionClosed(sessionId));
          }
          return this;
        })
        .build();
  }

  // ---------------------------------------------------------------------------------------
  // Requests

  private Behavior<Command> onInbound(Inbound inbound) {
    inbound.ackTo().tell(Ack.INSTANCE);
    heard();
    if (closed) {
      // Closing: the socket drains what was queued, then the stream ends and so do we.
      return this;
    }
    Codec.Decoded decoded;
    try {
      decoded = handlers.codec().decode(inbound.text());
    } catch (ProtocolException bad) {
      if (admit(bad.id())) {
        send(Codec.error(bad.id(), bad.code(), bad.getMessage()));
      }
      return this;
    }
    if (decoded.request() instanceof Request.Pong) {
      // The answer to our ping: its arrival was the point, and it costs less than the
      // rate_limited error it would otherwise risk, so it is not counted against the rate.
      return this;
    }
    if (admit(decoded.id())) {
      dispatch(decoded.id(), decoded.request());
    }
    return this;
  }

  private void dispatch(String id, Request request) {
    if (request instanceof Request.Connection connection) {
      connection.accept(new ConnectionRequests(id));
    } else if (request instanceof Request.Chat chat) {
      whenDone(handlers.chat().handle(userId, chat), reply -> {
        followAfter(chat, reply);
        if (!(reply instanceof Reply.Accepted)) {
          send(Codec.reply(id, reply));
        }
      });
    } else {
      documents.handle(id, (Request.Doc) request);
    }
  }

  private final class ConnectionRequests implements Request.ConnectionVisitor<Void> {
    private final String id;

    ConnectionRequests(String id) {
      this.id = id;
    }

    @Override
    public Void ping(Request.Ping request) {
      send(Codec.reply(id, new Reply.Pong()));
      return null;
    }

    @Override
    public Void pong(Request.Pong request) {
      return null;
    }

    @Override
    public Void resume(Request.Resume request) {
      Session.this.resume(id, request.rooms() == null ? Map.of() : request.rooms());
      return null;
    }
  }

  /** What a chat reply means for what this connection follows. */
  private void followAfter(Request.Chat request, Reply reply) {
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
   * sends what it missed; live pushes join seamlessly because delivery is by seq.
   */
  private void resume(String id, Map<String, Long> positions) {
    resumed = true;
    ask(user(), UserEntity.GetRooms::new, UserEntity.Rooms.class, list -> {
      Map<String, Long> from = new LinkedHashMap<>();
      for (UserEntity.RoomMarker marker : list.rooms()) {
        long after = positions.getOrDefault(marker.room(), marker.readSeq());
        from.put(marker.room(), after);
        RoomStream stream = rooms.get(marker.room());
        if (stream == null) {
          follow(marker.room(), after, 0);
        } else if (positions.containsKey(marker.room()) && after < stream.order.delivered()) {
          // The client says it lacks what this session sent: deliver again from its position.
          stream.order.restart(after);
          fetchIfNeeded(marker.room(), stream);
        }
      }
      send(Codec.reply(id, new Reply.Resumed(from)));
    }, failure -> send(Codec.reply(id, ChatHandler.failed(failure))));
  }

  /**
   * SSE and long-poll sessions start at once: from the client's cursor, or from the read
   * markers for rooms it does not name. (Their routes refused a cursor naming a room the
   * user is not in before the stream started; a room left since is simply not followed.)
   */
  private void startFrom(ResumeCursor cursor) {
    ask(user(), UserEntity.GetRooms::new, UserEntity.Rooms.class, list -> {
      for (UserEntity.RoomMarker marker : list.rooms()) {
        ResumeCursor.Position p = cursor == null ? null : cursor.rooms().get(marker.room());
        if (!rooms.containsKey(marker.room())) {
          awaitingFirstPage.add(marker.room());
          follow(marker.room(), p == null ? marker.readSeq() : p.seq(), p == null ? 0 : p.epoch());
        }
      }
      reportStartedOnceCaughtUp();
    }, failure -> reportStartedOnceCaughtUp());
  }

  /**
   * Tells the transport the starting cursor once every room's first page has been read, so a
   * short poll answers with what was already there rather than with nothing.
   */
  private void reportStartedOnceCaughtUp() {
    if (awaitingFirstPage.isEmpty() && !startReported) {
      startReported = true;
      out.started(cursor());
    }
  }

  // ---------------------------------------------------------------------------------------
  // Delivery of rooms

  private void follow(String room, long deliveredUpTo, long expectedEpoch) {
    RoomStream stream = new RoomStream(deliveredUpTo, expectedEpoch, settings.pageSize() * 4);
    rooms.put(room, stream);
    handlers.hub().tell(new NodeHub.Follow(room, pushes));
    fetch(room, stream);
  }

  private void unfollow(String room) {
    if (rooms.remove(room) != null) {
      handlers.hub().tell(new NodeHub.Unfollow(room, pushes));
    }
  }

  private void onRoomPush(RoomPush push) {
    RoomStream stream = rooms.get(push.room());
    if (stream == null) {
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
      send(Codec.push(ChatPushes.ephemeral(ephemeral)));
    }
  }

  private void fetchIfNeeded(String room, RoomStream stream) {
    if (stream.order.needsFetch() && !lagged && !closed) {
      fetch(room, stream);
    }
  }

  /** Reads the next page after what was delivered, from the room's memory or the journal. */
  private void fetch(String room, RoomStream stream) {
    stream.order.startFetch();
    long from = stream.order.delivered() + 1;
    ask(room(room), (ActorRef<RoomEntity.EventsReply> r) -> new RoomEntity.GetEvents(userId, from, Long.MAX_VALUE, settings.pageSize(), r), RoomEntity.EventsReply.class, reply -> {
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
      if (lagged) {
        stream.order.fetchFailed();
        return;
      }
      if (stream.order.fetched(events.events(), events.lastSeq(), this::deliver) && !closed) {
        fetch(room, stream);
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
    if (lagged || closed) {
      return false;
    }
    if (!out.offerEvent(Frames.eventFrame(e), () -> position(e.room(), e.seq()))) {
      enterLagged();
      return false;
    }
    metrics.delivered();
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
    ask(user(), (ActorRef<UserEntity.DeliveryReply> r) -> new UserEntity.MarkDelivered(e.room(), e.seq(), r), UserEntity.DeliveryReply.class, reply -> {
      if (reply instanceof UserEntity.MarkedDelivered marked && marked.advanced()) {
        room(e.room()).tell(new RoomEntity.Relay(new RoomPush.Ephemeral(e.room(), "receipt", userId, e.seq(), "delivered", System.currentTimeMillis())));
      }
    }, failure -> {});
  }

  /** The client's position for {@code room} was unusable: say so, and start the room over. */
  private void reload(String room, RoomStream stream, ErrorCode code, String message) {
    send(Codec.push(new Push.Reload(room, code.wire(), message)));
    stream.order.reset();
    stream.expectedEpoch = 0;
    fetch(room, stream);
  }

  /** The client's cursor after {@code seq} of {@code room}: every followed room's position. */
  private String position(String room, long seq) {
    Map<String, ResumeCursor.Position> positions = new TreeMap<>();
    rooms.forEach((r, s) -> positions.put(r, new ResumeCursor.Position(r.equals(room) ? seq : s.order.delivered(), s.epoch)));
    return new ResumeCursor(positions).encode();
  }

  /** The current cursor of this session (what it has delivered so far). */
  String cursor() {
    Map<String, ResumeCursor.Position> positions = new TreeMap<>();
    rooms.forEach((r, s) -> positions.put(r, new ResumeCursor.Position(s.order.delivered(), s.epoch != 0 ? s.epoch : s.expectedEpoch)));
    return new ResumeCursor(positions).encode();
  }

  // ---------------------------------------------------------------------------------------
  // The outbound buffer

  /** False if the frame was not queued: the session is closing, or the client lags. */
  boolean send(String frame) {
    if (closed || lagged) {
      return false;
    }
    if (!out.offer(frame)) {
      enterLagged();
      return false;
    }
    return true;
  }

  /**
   * The client's buffer is full (design rule 8): stop delivering, tell the client it lagged,
   * and once its buffer has drained continue from the journal after what was delivered.
   * Memory stays bounded by the buffer; nothing is skipped, nothing repeated.
   */
  private void enterLagged() {
    if (lagged) {
      return;
    }
    metrics.outboundOverflow();
    lagged = true;
    lagNoticePending = true;
    rooms.values().forEach(s -> s.order.dropWaiting());
    getContext().getLog().debug("Session {} of {} lagged", sessionId, userId);
    timers.startTimerWithFixedDelay(new LagCheck(), Duration.ofMillis(100));
  }

  private void onLagCheck() {
    if (closed) {
      timers.cancel(new LagCheck());
      return;
    }
    if (lagNoticePending) {
      Map<String, Long> positions = new TreeMap<>();
      rooms.forEach((room, s) -> positions.put(room, s.order.delivered()));
      lagNoticePending = !out.offer(Codec.push(new Push.Lagged(positions)));
      return;
    }
    if (out.backlog() <= settings.outboundBuffer() / 4) {
      lagged = false;
      timers.cancel(new LagCheck());
      rooms.forEach((room, s) -> {
        if (!s.order.fetching()) {
          fetch(room, s);
        }
      });
      documents.resumeAfterLag();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Heartbeats, limits, closing

  private void heard() {
    if (heartbeat != null) {
      heartbeat.heard(System.nanoTime());
    }
  }

  /**
   * The deadline timer is set once for the whole allowed silence and, when it fires, again for
   * what is left since the client was last heard: no timer work per inbound frame.
   */
  private void onCheckHeartbeat() {
    if (closed) {
      return;
    }
    long now = System.nanoTime();
    if (heartbeat.expired(now)) {
      getContext().getLog().info(
          "Session {} of {} closed: nothing heard for {} ms (heartbeat interval + timeout)",
          sessionId, userId, settings.heartbeatInterval().plus(settings.heartbeatTimeout()).toMillis());
      metrics.heartbeatTimeout();
      closeWith(HEARTBEAT_TIMEOUT_CODE, "heartbeat_timeout");
    } else {
      timers.startSingleTimer(new CheckHeartbeat(), heartbeat.remaining(now));
    }
  }

  private void closeWith(int code, String reason) {
    if (!closed) {
      closed = true;
      out.close(code, reason);
    }
  }

  /**
   * One request against the connection's rate; a refusal is answered {@code rate_limited},
   * and past the flood limit the connection is closed.
   */
  private boolean admit(String id) {
    boolean admitted = requests.take(System.nanoTime()).isZero();
    if (requests.wasFull()) {
      // Quiet long enough to refill the whole burst: earlier flooding is forgiven.
      overLimit = 0;
    }
    if (!admitted) {
      overLimit++;
      send(Codec.error(id, ErrorCode.RATE_LIMITED, "too many requests; slow down"));
      if (overLimit > settings.floodDisconnectAfter()) {
        closeWith(1008, "rate limit exceeded");
      }
    }
    return admitted;
  }

  // ---------------------------------------------------------------------------------------
  // Plumbing shared with DocumentStreams

  String userId() {
    return userId;
  }

  String sessionId() {
    return sessionId;
  }

  Handlers handlers() {
    return handlers;
  }

  ClusterSharding sharding() {
    return sharding;
  }

  /** Runs {@code then} on the session's own thread once {@code stage} completes. */
  <T> void whenDone(CompletionStage<T> stage, Consumer<T> then) {
    getContext().pipeToSelf(stage, (value, failure) -> new Continue(() -> {
      if (failure == null) {
        then.accept(value);
      }
    }));
  }

  /** Asks an entity; the answer (or the failure: no answer in time) is handled on the session's thread. */
  <Q, R> void ask(
      RecipientRef<Q> target,
      Function<ActorRef<R>, Q> command,
      Class<R> replyClass,
      Consumer<R> onReply,
      Consumer<Throwable> onFailure) {
    getContext().ask(
        replyClass,
        target,
        settings.askTimeout(),
        command::apply,
        (reply, failure) -> new Continue(() -> {
          if (failure != null) {
            onFailure.accept(failure);
          } else {
            onReply.accept(reply);
          }
        }));
  }

  private EntityRef<RoomEntity.Command> room(String room) {
    return sharding.entityRefFor(RoomEntity.ENTITY_KEY, room);
  }

  private EntityRef<UserEntity.Command> user() {
    return sharding.entityRefFor(UserEntity.ENTITY_KEY, userId);
  }
}
