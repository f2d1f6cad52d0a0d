package parley.transport;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
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
import parley.auth.UserIds;
import parley.chat.ChatSettings;
import parley.chat.Ids;
import parley.chat.fanout.NodeHub;
import parley.chat.room.RoomEntity;
import parley.chat.room.RoomPush;
import parley.chat.room.TimelineEvent;
import parley.chat.user.UserEntity;
import parley.collab.document.DocumentEntity;
import parley.ops.ParleyMetrics;

/**
 * One client connection, whatever its transport: the only actor that speaks protocol v1. It
 * authenticates nothing itself (the route did), turns requests into entity commands, and
 * delivers each followed room's timeline in seq order, exactly once: a push that skips ahead
 * makes it fetch the missing range first (design rule 6), and a resume is the same fetch from
 * the client's last seq.
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

  private record FromRoom(RoomPush push) implements Command {}

  private record FromUser(UserEntity.Notice notice) implements Command {}

  private record FromDocument(DocumentEntity.Push push) implements Command {}

  /**
   * Presence and document subscriptions live in entities' memory: the session renews them
   * periodically, so an entity that restarted or moved learns of it again.
   */
  private record RenewPresence() implements Command {}

  /** The answer of an entity, handled on the session's own thread. */
  private record Continue(Runnable work) implements Command {}

  /**
   * How a transport uses the session. A WebSocket client is interactive: it is welcomed, sends
   * {@code resume} itself, and must answer heartbeats. SSE and long-poll clients start from a
   * cursor (or their read markers) at once; they cannot answer pings. A poll or a REST call is
   * too short-lived to count as being online.
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

    public static Options oneShot() {
      return new Options(false, false, false, false, null);
    }
  }

  /** Node shutdown: tell the client to reconnect elsewhere, then end. */
  public record Drain() implements Command {}

  private record LagCheck() implements Command {}

  /** Time to ping the client (interactive sessions). */
  private record SendPing() implements Command {}

  /** Time to check whether the client was heard from within the heartbeat deadline. */
  private record CheckHeartbeat() implements Command {}

  /**
   * The close code of a client that stopped answering heartbeats: 4000-4999 is left to
   * applications (RFC 6455), and 408 is HTTP's Request Timeout.
   */
  private static final int HEARTBEAT_TIMEOUT_CODE = 4408;

  private static final String PING = "{\"type\":\"ping\"}";

  public static Behavior<Command> create(
      String userId,
      Outbound out,
      ChatSettings settings,
      ActorRef<NodeHub.Command> hub,
      Options options) {
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
                  return new Session(context, timers, userId, out, settings, hub, options);
                }));
  }

  /** Where a followed room's delivery stands. */
  private static final class Cursor {
    long delivered;
    long head;
    boolean fetching;
    /** The room's epoch as the room reported it (0 until the first fetch answers). */
    long epoch;
    /** The epoch the client's cursor was saved against, checked at the first fetch. */
    long expectedEpoch;
    final TreeMap<Long, TimelineEvent> waiting = new TreeMap<>();

    Cursor(long delivered, long expectedEpoch) {
      this.delivered = delivered;
      this.head = delivered;
      this.expectedEpoch = expectedEpoch;
    }
  }

  /** A request the client got wrong; becomes an error frame, the connection stays. */
  static final class BadRequest extends RuntimeException {
    final String code;

    BadRequest(String code, String message) {
      super(message, null, false, false);
      this.code = code;
    }
  }

  private static final Pattern REQUEST_ID = Pattern.compile("\"id\"\\s*:\\s*\"([!-~&&[^\"]]{1,64})\"");

  private final String userId;
  private final String sessionId = UUID.randomUUID().toString();
  private final Outbound out;
  private final ChatSettings settings;
  private final ActorRef<NodeHub.Command> hub;
  private final ClusterSharding sharding;
  private final ActorRef<RoomPush> pushes;
  private final ActorRef<UserEntity.Notice> notices;
  private final ActorRef<DocumentEntity.Push> documentPushes;
  private final DocumentRequests documents;
  private final ParleyMetrics metrics;
  private final Map<String, Cursor> rooms = new HashMap<>();
  private final Map<String, Long> typingSentAt = new HashMap<>();
  private final TokenBucket requests;
  private int overLimit;
  private boolean closed;
  /** The client reads too slowly: live events are dropped until its buffer drains. */
  private boolean lagged;
  private boolean lagNoticePending;
  private final TimerScheduler<Command> timers;
  private final Options options;
  /** Rooms a starting SSE or poll session has not yet read a first page of. */
  private final java.util.Set<String> awaitingFirstPage = new java.util.HashSet<>();
  private boolean startReported;
  /** When the client was last heard from; null for sessions whose client cannot answer pings. */
  private final Heartbeat heartbeat;

  private Session(
      ActorContext<Command> context,
      TimerScheduler<Command> timers,
      String userId,
      Outbound out,
      ChatSettings settings,
      ActorRef<NodeHub.Command> hub,
      Options options) {
    super(context);
    this.timers = timers;
    this.options = options;
    this.userId = userId;
    this.out = out;
    this.settings = settings;
    this.hub = hub;
    this.sharding = ClusterSharding.get(context.getSystem());
    this.pushes = context.messageAdapter(RoomPush.class, FromRoom::new);
    this.notices = context.messageAdapter(UserEntity.Notice.class, FromUser::new);
    this.documentPushes = context.messageAdapter(DocumentEntity.Push.class, FromDocument::new);
    this.documents = new DocumentRequests(this);
    this.metrics = ParleyMetrics.get(context.getSystem());
    this.requests = new TokenBucket(settings.ratePerSecond(), settings.rateBurst(), System.nanoTime());
    this.heartbeat =
        options.heartbeat()
            ? new Heartbeat(settings.heartbeatInterval(), settings.heartbeatTimeout(), System.nanoTime())
            : null;
    SessionRegistry.get(context.getSystem()).register(context.getSelf());
    if (options.welcome()) {
      ObjectNode welcome = Frames.JSON.createObjectNode();
      welcome.put("type", "welcome");
      welcome.put("user", userId);
      welcome.put("session", sessionId);
      welcome.put("node", context.getSystem().address().toString());
      welcome.put("protocol", 1);
      if (options.heartbeat()) {
        welcome.put("pingInterval", settings.heartbeatInterval().toMillis());
        welcome.put("pingTimeout", settings.heartbeatTimeout().toMillis());
      }
      send(Frames.write(welcome));
    }
    if (options.presence()) {
      user().tell(new UserEntity.SessionOpened(sessionId, notices, context.getSystem().ignoreRef()));
    }
    if (options.startNow()) {
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
          send(Frames.error(id.find() ? id.group(1) : null, "frame_too_large", "frames are limited to " + settings.maxFrameBytes() + " bytes"));
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
          if (m.notice() instanceof UserEntity.RoomAdded added && !rooms.containsKey(added.room())) {
            follow(added.room(), added.seq());
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
    String id = null;
    try {
      JsonNode frame = parse(inbound.text());
      if ("pong".equals(frame.path("type").textValue())) {
        // The answer to our ping: its arrival was the point, and it costs less than the
        // rate_limited error it would otherwise risk, so it is not counted against the rate.
        return this;
      }
      id = optionalText(frame, "id");
      if (id != null && !Ids.isClientId(id)) {
        throw new BadRequest("bad_field", "id must be 1-64 printable characters");
      }
      if (!admit()) {
        send(Frames.error(id, "rate_limited", "too many requests; slow down"));
        if (overLimit > settings.floodDisconnectAfter()) {
          closeWith(1008, "rate limit exceeded");
        }
        return this;
      }
      handle(text(frame, "type"), id, frame);
    } catch (BadRequest bad) {
      send(Frames.error(id, bad.code, bad.getMessage()));
    }
    return this;
  }

  private void handle(String type, String id, JsonNode f) {
    switch (type) {
      case "ping" -> {
        ObjectNode pong = Frames.JSON.createObjectNode();
        pong.put("type", "pong");
        if (id != null) {
          pong.put("id", id);
        }
        send(Frames.write(pong));
      }
      case "create_room" -> {
        String room = roomId(f);
        write(id, room(room), r -> new RoomEntity.Create(userId, optionalText(f, "visibility"), optionalText(f, "topic"), r), w -> joined(room, w));
      }
      case "join" -> {
        String room = roomId(f);
        write(id, room(room), r -> new RoomEntity.Join(userId, r), w -> joined(room, w));
      }
      case "leave" -> {
        String room = roomId(f);
        write(id, room(room), r -> new RoomEntity.Leave(userId, r), w -> {
          user().tell(new UserEntity.RoomLeft(room, getContext().getSystem().ignoreRef()));
          unfollow(room);
        });
      }
      case "invite" -> write(id, room(roomId(f)), r -> new RoomEntity.Invite(userId, userField(f, "user"), r), w -> {});
      case "remove_member" -> write(id, room(roomId(f)), r -> new RoomEntity.RemoveMember(userId, userField(f, "user"), r), w -> {});
      case "set_topic" -> write(id, room(roomId(f)), r -> new RoomEntity.SetTopic(userId, text(f, "topic"), r), w -> {});
      case "send" -> {
        String room = roomId(f);
        String clientMsgId = clientMsgId(f);
        String body = body(f);
        write(id, room(room), r -> new RoomEntity.Post(userId, clientMsgId, body, false, r), w -> {});
      }
      case "send_dm" -> sendDirect(id, f);
      case "edit" -> {
        String room = roomId(f);
        long target = longField(f, "target");
        String clientMsgId = clientMsgId(f);
        String body = body(f);
        write(id, room(room), r -> new RoomEntity.Edit(userId, target, clientMsgId, body, r), w -> {});
      }
      case "delete" -> {
        String room = roomId(f);
        long target = longField(f, "target");
        String clientMsgId = clientMsgId(f);
        write(id, room(room), r -> new RoomEntity.Delete(userId, target, clientMsgId, r), w -> {});
      }
      case "history" -> history(id, f);
      case "list_members" -> listMembers(id, roomId(f));
      case "list_rooms" -> listRooms(id);
      case "resume" -> resume(id, f);
      case "mark_read" -> markRead(id, roomId(f), longField(f, "seq"));
      case "typing" -> typing(roomId(f));
      default -> {
        if (type.startsWith("doc_")) {
          documents.handle(type, id, f);
        } else {
          throw new BadRequest("unknown_type", "unknown request type '" + type + "'");
        }
      }
    }
  }

  /** Sends a write to a room and answers the client from the room's reply. */
  private void write(
      String id,
      EntityRef<RoomEntity.Command> room,
      Function<ActorRef<RoomEntity.WriteReply>, RoomEntity.Command> command,
      Consumer<RoomEntity.Written> then) {
    ask(room, command, RoomEntity.WriteReply.class, id, reply -> {
      if (reply instanceof RoomEntity.Written written) {
        then.accept(written);
        send(Frames.write(written(id, written)));
      } else if (reply instanceof RoomEntity.Rejected rejected) {
        send(Frames.error(id, rejected.code(), rejected.message()));
      }
    });
  }

  private static ObjectNode written(String id, RoomEntity.Written written) {
    ObjectNode ok = Frames.ok(id);
    ok.put("room", written.room());
    ok.put("seq", written.seq());
    if (written.ts() > 0) {
      ok.put("ts", Instant.ofEpochMilli(written.ts()).toString());
    }
    if (written.clientMsgId() != null) {
      ok.put("clientMsgId", written.clientMsgId());
      ok.put("duplicate", written.duplicate());
    }
    return ok;
  }

  /** After a create or join: the user's room list knows it, and this session follows it. */
  private void joined(String room, RoomEntity.Written written) {
    user().tell(new UserEntity.RoomJoined(room, written.seq(), getContext().getSystem().ignoreRef()));
    if (!rooms.containsKey(room)) {
      follow(room, written.seq() - 1);
    }
  }

  private void sendDirect(String id, JsonNode f) {
    String to = userField(f, "to");
    if (to.equals(userId)) {
      throw new BadRequest("bad_field", "a direct message needs another user");
    }
    String clientMsgId = clientMsgId(f);
    String body = body(f);
    String room = Ids.directRoom(userId, to);
    ask(room(room), r -> new RoomEntity.PostDirect(userId, to, clientMsgId, body, r), RoomEntity.WriteReply.class, id, reply -> {
      if (reply instanceof RoomEntity.Rejected rejected) {
        send(Frames.error(id, rejected.code(), rejected.message()));
        return;
      }
      RoomEntity.Written written = (RoomEntity.Written) reply;
      // Both users' room lists learn of the room; the join position keeps the message unread.
      user().tell(new UserEntity.RoomJoined(room, written.seq() - 1, getContext().getSystem().ignoreRef()));
      sharding.entityRefFor(UserEntity.ENTITY_KEY, to).tell(new UserEntity.RoomJoined(room, written.seq() - 1, getContext().getSystem().ignoreRef()));
      if (!rooms.containsKey(room)) {
        follow(room, 0);
      }
      ask(sharding.entityRefFor(UserEntity.ENTITY_KEY, to), UserEntity.GetPresence::new, UserEntity.Presence.class, id, presence -> {
        ObjectNode ok = written(id, written);
        ok.put("delivered", presence.online());
        send(Frames.write(ok));
      });
    });
  }

  private void history(String id, JsonNode f) {
    String room = roomId(f);
    long before = f.hasNonNull("before") ? longField(f, "before") : Long.MAX_VALUE;
    int limit = f.hasNonNull("limit") ? (int) longField(f, "limit") : 50;
    if (limit < 1 || limit > 200) {
      throw new BadRequest("bad_field", "limit must be between 1 and 200");
    }
    long to = before == Long.MAX_VALUE ? Long.MAX_VALUE : before - 1;
    ask(room(room), r -> new RoomEntity.GetEvents(userId, 0, to, limit, r), RoomEntity.EventsReply.class, id, reply -> {
      if (reply instanceof RoomEntity.Rejected rejected) {
        send(Frames.error(id, rejected.code(), rejected.message()));
        return;
      }
      RoomEntity.Events events = (RoomEntity.Events) reply;
      ObjectNode ok = Frames.ok(id);
      ok.put("room", room);
      var array = ok.putArray("events");
      events.events().forEach(e -> array.add(Frames.event(e)));
      ok.put("hasMore", !events.events().isEmpty() && events.events().get(0).seq() > 1);
      send(Frames.write(ok));
    });
  }

  private void listMembers(String id, String room) {
    ask(room(room), r -> new RoomEntity.GetInfo(userId, r), RoomEntity.InfoReply.class, id, reply -> {
      if (reply instanceof RoomEntity.Rejected rejected) {
        send(Frames.error(id, rejected.code(), rejected.message()));
        return;
      }
      RoomEntity.Info info = (RoomEntity.Info) reply;
      ObjectNode ok = Frames.ok(id);
      ok.put("room", room);
      ok.put("visibility", info.visibility());
      if (info.topic() != null) {
        ok.put("topic", info.topic());
      }
      ok.put("lastSeq", info.lastSeq());
      var members = ok.putArray("members");
      info.members().entrySet().stream()
          .sorted(Map.Entry.comparingByKey())
          .forEach(m -> members.addObject().put("user", m.getKey()).put("role", m.getValue()));
      send(Frames.write(ok));
    });
  }

  /** The user's rooms with unread counts: a read marker and each room's newest seq. */
  private void listRooms(String id) {
    ask(user(), UserEntity.GetRooms::new, UserEntity.Rooms.class, id, list -> {
      ObjectNode ok = Frames.ok(id);
      var array = ok.putArray("rooms");
      if (list.rooms().isEmpty()) {
        send(Frames.write(ok));
        return;
      }
      int[] remaining = {list.rooms().size()};
      Map<String, ObjectNode> entries = new TreeMap<>();
      for (UserEntity.RoomMarker marker : list.rooms()) {
        ask(room(marker.room()), r -> new RoomEntity.GetInfo(userId, r), RoomEntity.InfoReply.class, id, reply -> {
          ObjectNode entry = Frames.JSON.createObjectNode();
          entry.put("room", marker.room());
          entry.put("readSeq", marker.readSeq());
          if (reply instanceof RoomEntity.Info info) {
            entry.put("lastSeq", info.lastSeq());
            entry.put("unread", Math.max(0, info.lastSeq() - marker.readSeq()));
            entry.put("direct", info.direct());
            if (info.topic() != null) {
              entry.put("topic", info.topic());
            }
          }
          entries.put(marker.room(), entry);
          if (--remaining[0] == 0) {
            entries.values().forEach(array::add);
            send(Frames.write(ok));
          }
        });
      }
    });
  }

  /**
   * Follows every room of the user from the client's positions (or its read markers) and
   * sends what it missed; live pushes join seamlessly because delivery is by seq.
   */
  private void resume(String id, JsonNode f) {
    Map<String, Long> positions = new HashMap<>();
    JsonNode given = f.get("rooms");
    if (given != null && !given.isNull()) {
      if (!given.isObject()) {
        throw new BadRequest("bad_field", "rooms must be an object of room → last seq");
      }
      Iterator<Map.Entry<String, JsonNode>> fields = given.fields();
      while (fields.hasNext()) {
        Map.Entry<String, JsonNode> entry = fields.next();
        if (!entry.getValue().canConvertToLong() || entry.getValue().asLong() < 0) {
          throw new BadRequest("bad_field", "the position of room " + entry.getKey() + " must be a seq ≥ 0");
        }
        positions.put(entry.getKey(), entry.getValue().asLong());
      }
    }
    ask(user(), UserEntity.GetRooms::new, UserEntity.Rooms.class, id, list -> {
      ObjectNode ok = Frames.ok(id);
      ObjectNode from = ok.putObject("rooms");
      for (UserEntity.RoomMarker marker : list.rooms()) {
        long after = positions.getOrDefault(marker.room(), marker.readSeq());
        from.put(marker.room(), after);
        Cursor cursor = rooms.get(marker.room());
        if (cursor == null) {
          follow(marker.room(), after);
        } else if (positions.containsKey(marker.room()) && after < cursor.delivered) {
          // The client says it lacks what this session sent: deliver again from its position.
          cursor.delivered = after;
          cursor.waiting.clear();
          fetch(marker.room(), cursor);
        }
      }
      send(Frames.write(ok));
    });
  }

  /**
   * SSE and long-poll sessions start at once: from the client's cursor, or from the read
   * markers for rooms it does not name. A cursor naming a room the user is not in is refused.
   */
  private void startFrom(ResumeCursor cursor) {
    ask(user(), UserEntity.GetRooms::new, UserEntity.Rooms.class, null, list -> {
      java.util.Set<String> mine = new java.util.HashSet<>();
      list.rooms().forEach(marker -> mine.add(marker.room()));
      if (cursor != null) {
        for (String room : cursor.rooms().keySet()) {
          if (!mine.contains(room)) {
            send(Frames.error(null, "not_a_member", "the cursor names room " + room + ", which " + userId + " is not in"));
            closeWith(1008, "bad cursor");
            return;
          }
        }
      }
      for (UserEntity.RoomMarker marker : list.rooms()) {
        ResumeCursor.Position p = cursor == null ? null : cursor.rooms().get(marker.room());
        if (!rooms.containsKey(marker.room())) {
          awaitingFirstPage.add(marker.room());
          follow(marker.room(), p == null ? marker.readSeq() : p.seq(), p == null ? 0 : p.epoch());
        }
      }
      reportStartedOnceCaughtUp();
    });
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

  private void markRead(String id, String room, long seq) {
    ask(user(), r -> new UserEntity.MarkRead(room, seq, r), UserEntity.ReadReply.class, id, reply -> {
      if (reply instanceof UserEntity.Rejected rejected) {
        send(Frames.error(id, rejected.code(), rejected.message()));
        return;
      }
      UserEntity.MarkedRead marked = (UserEntity.MarkedRead) reply;
      Cursor cursor = rooms.get(room);
      ObjectNode ok = Frames.ok(id);
      ok.put("room", room);
      ok.put("readSeq", marked.readSeq());
      if (cursor != null) {
        ok.put("unread", Math.max(0, cursor.head - marked.readSeq()));
      }
      send(Frames.write(ok));
      long now = System.currentTimeMillis();
      room(room).tell(new RoomEntity.Relay(new RoomPush.Ephemeral(room, "read", userId, marked.readSeq(), null, now)));
      if (Ids.isDirectRoom(room)) {
        room(room).tell(new RoomEntity.Relay(new RoomPush.Ephemeral(room, "receipt", userId, marked.readSeq(), "read", now)));
      }
    });
  }

  /** Typing is ephemeral and cheap: at most one notice per room per interval, no reply. */
  private void typing(String room) {
    long now = System.nanoTime();
    Long last = typingSentAt.get(room);
    if (last != null && now - last < settings.typingInterval().toNanos()) {
      return;
    }
    typingSentAt.put(room, now);
    room(room).tell(new RoomEntity.Typing(userId));
  }

  // ---------------------------------------------------------------------------------------
  // Delivery

  private void follow(String room, long deliveredUpTo) {
    follow(room, deliveredUpTo, 0);
  }

  private void follow(String room, long deliveredUpTo, long expectedEpoch) {
    Cursor cursor = new Cursor(Math.max(0, deliveredUpTo), expectedEpoch);
    rooms.put(room, cursor);
    hub.tell(new NodeHub.Follow(room, pushes));
    fetch(room, cursor);
  }

  private void unfollow(String room) {
    if (rooms.remove(room) != null) {
      hub.tell(new NodeHub.Unfollow(room, pushes));
    }
  }

  private void onRoomPush(RoomPush push) {
    Cursor cursor = rooms.get(push.room());
    if (cursor == null) {
      return;
    }
    if (push instanceof RoomPush.Published published) {
      for (TimelineEvent e : published.events()) {
        cursor.head = Math.max(cursor.head, e.seq());
        if (e.seq() <= cursor.delivered) {
          continue;
        }
        if (e.seq() == cursor.delivered + 1 && !cursor.fetching) {
          deliver(cursor, e);
        } else if (cursor.waiting.size() < settings.pageSize() * 4) {
          cursor.waiting.put(e.seq(), e);
        }
      }
      if (cursor.delivered < cursor.head && !cursor.fetching) {
        fetch(push.room(), cursor);
      }
    } else if (push instanceof RoomPush.Head head) {
      cursor.head = Math.max(cursor.head, head.lastSeq());
      if (cursor.delivered < cursor.head && !cursor.fetching) {
        fetch(push.room(), cursor);
      }
    } else if (push instanceof RoomPush.Ephemeral ephemeral) {
      send(Frames.ephemeral(ephemeral));
    }
  }

  /** Reads the next page after what was delivered, from the room's memory or the journal. */
  private void fetch(String room, Cursor cursor) {
    cursor.fetching = true;
    long from = cursor.delivered + 1;
    ask(room(room), r -> new RoomEntity.GetEvents(userId, from, Long.MAX_VALUE, settings.pageSize(), r), RoomEntity.EventsReply.class, null, reply -> {
      if (rooms.get(room) != cursor) {
        return;
      }
      cursor.fetching = false;
      if (reply instanceof RoomEntity.Rejected rejected) {
        if (!"unavailable".equals(rejected.code())) {
          unfollow(room);
        }
        if (awaitingFirstPage.remove(room)) {
          reportStartedOnceCaughtUp();
        }
        return;
      }
      RoomEntity.Events events = (RoomEntity.Events) reply;
      cursor.epoch = events.epoch();
      if (cursor.expectedEpoch != 0 && cursor.expectedEpoch != events.epoch()) {
        restartRoom(room, cursor, "cursor_stale", "the cursor predates this room's history (the store was reset); reload the room");
        return;
      }
      cursor.expectedEpoch = 0;
      if (events.lastSeq() < cursor.delivered) {
        restartRoom(room, cursor, "cursor_ahead", "the cursor is ahead of room " + room + " (last seq " + events.lastSeq() + "); reload the room");
        return;
      }
      if (lagged) {
        return;
      }
      cursor.head = Math.max(cursor.head, events.lastSeq());
      for (TimelineEvent e : events.events()) {
        if (e.seq() == cursor.delivered + 1) {
          deliver(cursor, e);
        }
      }
      while (!cursor.waiting.isEmpty() && cursor.waiting.firstKey() <= cursor.delivered + 1) {
        TimelineEvent next = cursor.waiting.pollFirstEntry().getValue();
        if (next.seq() == cursor.delivered + 1) {
          deliver(cursor, next);
        }
      }
      if (cursor.delivered < cursor.head && !events.events().isEmpty() && !closed) {
        fetch(room, cursor);
      }
      if (awaitingFirstPage.remove(room)) {
        reportStartedOnceCaughtUp();
      }
    }, () -> {
      // The room did not answer (moving, or storage slow): the next push or lease renewal
      // of the room (its Head) starts the fetch again.
      if (rooms.get(room) == cursor) {
        cursor.fetching = false;
      }
    });
  }

  private void deliver(Cursor cursor, TimelineEvent e) {
    if (lagged || closed) {
      return;
    }
    if (!out.offerEvent(Frames.eventFrame(e), () -> position(e.room(), e.seq()))) {
      enterLagged();
      return;
    }
    cursor.delivered = e.seq();
    metrics.delivered();
    if (Ids.isDirectRoom(e.room()) && e.isMessage() && !userId.equals(e.user())) {
      acknowledgeDelivery(e);
    }
    if ((TimelineEvent.LEFT.equals(e.kind()) || TimelineEvent.REMOVED.equals(e.kind()))
        && userId.equals(e.user())) {
      unfollow(e.room());
    }
  }

  /** The recipient's client has the direct message: its sender hears "delivered", once. */
  private void acknowledgeDelivery(TimelineEvent e) {
    ask(user(), r -> new UserEntity.MarkDelivered(e.room(), e.seq(), r), UserEntity.DeliveryReply.class, null, reply -> {
      if (reply instanceof UserEntity.MarkedDelivered marked && marked.advanced()) {
        room(e.room()).tell(new RoomEntity.Relay(new RoomPush.Ephemeral(e.room(), "receipt", userId, e.seq(), "delivered", System.currentTimeMillis())));
      }
    });
  }

  // ---------------------------------------------------------------------------------------
  // Plumbing (package-private parts are what DocumentRequests uses)

  String userId() {
    return userId;
  }

  String sessionId() {
    return sessionId;
  }

  ActorRef<DocumentEntity.Push> documentPushes() {
    return documentPushes;
  }

  ClusterSharding sharding() {
    return sharding;
  }

  <T> ActorRef<T> ignoreRef() {
    return getContext().getSystem().ignoreRef();
  }

  <Q, R> void ask(
      RecipientRef<Q> target,
      Function<ActorRef<R>, Q> command,
      Class<R> replyClass,
      String id,
      Consumer<R> onReply) {
    ask(target, command, replyClass, id, onReply, () -> {});
  }

  <Q, R> void ask(
      RecipientRef<Q> target,
      Function<ActorRef<R>, Q> command,
      Class<R> replyClass,
      String id,
      Consumer<R> onReply,
      Runnable onTimeout) {
    getContext()
        .ask(
            replyClass,
            target,
            settings.askTimeout(),
            command::apply,
            (reply, failure) ->
                new Continue(
                    () -> {
                      if (failure != null) {
                        onTimeout.run();
                        if (id != null) {
                          send(Frames.error(id, "timeout", "no answer in time; retry (with the same clientMsgId for writes)"));
                        }
                      } else {
                        onReply.accept(reply);
                      }
                    }));
  }

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
    rooms.values().forEach(c -> c.waiting.clear());
    getContext().getLog().debug("Session {} of {} lagged", sessionId, userId);
    timers.startTimerWithFixedDelay(new LagCheck(), java.time.Duration.ofMillis(100));
  }

  private void onLagCheck() {
    if (closed) {
      timers.cancel(new LagCheck());
      return;
    }
    if (lagNoticePending) {
      ObjectNode notice = Frames.JSON.createObjectNode();
      notice.put("type", "lagged");
      ObjectNode positions = notice.putObject("rooms");
      rooms.forEach((room, c) -> positions.put(room, c.delivered));
      lagNoticePending = !out.offer(Frames.write(notice));
      return;
    }
    if (out.backlog() <= settings.outboundBuffer() / 4) {
      lagged = false;
      timers.cancel(new LagCheck());
      rooms.forEach((room, c) -> {
        if (!c.fetching) {
          fetch(room, c);
        }
      });
      documents.resumeAfterLag();
    }
  }

  /** The client's position for {@code room} was unusable: say so, and start the room over. */
  private void restartRoom(String room, Cursor cursor, String code, String message) {
    ObjectNode reload = Frames.JSON.createObjectNode();
    reload.put("type", "reload");
    reload.put("room", room);
    reload.put("code", code);
    reload.put("message", message);
    send(Frames.write(reload));
    cursor.delivered = 0;
    cursor.head = 0;
    cursor.expectedEpoch = 0;
    cursor.waiting.clear();
    fetch(room, cursor);
  }

  /** The client's cursor after {@code seq} of {@code room}: every followed room's position. */
  private String position(String room, long seq) {
    java.util.Map<String, ResumeCursor.Position> positions = new java.util.TreeMap<>();
    rooms.forEach((r, c) -> positions.put(r, new ResumeCursor.Position(r.equals(room) ? seq : c.delivered, c.epoch)));
    return new ResumeCursor(positions).encode();
  }

  /** The current cursor of this session (what it has delivered so far). */
  String cursor() {
    java.util.Map<String, ResumeCursor.Position> positions = new java.util.TreeMap<>();
    rooms.forEach((r, c) -> positions.put(r, new ResumeCursor.Position(c.delivered, c.epoch != 0 ? c.epoch : c.expectedEpoch)));
    return new ResumeCursor(positions).encode();
  }

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

  /** One request against the connection's rate; refusals count towards the flood rule. */
  private boolean admit() {
    boolean admitted = requests.take(System.nanoTime()).isZero();
    if (requests.wasFull()) {
      // Quiet long enough to refill the whole burst: earlier flooding is forgiven.
      overLimit = 0;
    }
    if (!admitted) {
      overLimit++;
    }
    return admitted;
  }

  private EntityRef<RoomEntity.Command> room(String room) {
    return sharding.entityRefFor(RoomEntity.ENTITY_KEY, room);
  }

  private EntityRef<UserEntity.Command> user() {
    return sharding.entityRefFor(UserEntity.ENTITY_KEY, userId);
  }

  private static JsonNode parse(String text) {
    JsonNode node;
    try {
      node = Frames.JSON.readTree(text);
    } catch (Exception e) {
      throw new BadRequest("bad_frame", "the frame is not valid JSON");
    }
    if (node == null || !node.isObject()) {
      throw new BadRequest("bad_frame", "a frame must be a JSON object");
    }
    return node;
  }

  static String text(JsonNode f, String field) {
    JsonNode value = f.get(field);
    if (value == null || value.isNull()) {
      throw new BadRequest("missing_field", "missing field '" + field + "'");
    }
    if (!value.isTextual()) {
      throw new BadRequest("bad_field", "field '" + field + "' must be a string");
    }
    return value.asText();
  }

  static String optionalText(JsonNode f, String field) {
    JsonNode value = f.get(field);
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isTextual()) {
      throw new BadRequest("bad_field", "field '" + field + "' must be a string");
    }
    return value.asText();
  }

  static long longField(JsonNode f, String field) {
    JsonNode value = f.get(field);
    if (value == null || value.isNull()) {
      throw new BadRequest("missing_field", "missing field '" + field + "'");
    }
    if (!value.isIntegralNumber() || !value.canConvertToLong()) {
      throw new BadRequest("bad_field", "field '" + field + "' must be an integer");
    }
    return value.asLong();
  }

  static String roomId(JsonNode f) {
    String room = text(f, "room");
    if (!Ids.isRoomId(room)) {
      throw new BadRequest("bad_room_id", "room ids are 1 to 64 characters of A-Z a-z 0-9 _ . -");
    }
    return room;
  }

  private static String userField(JsonNode f, String field) {
    String user = text(f, field);
    if (!UserIds.isValid(user)) {
      throw new BadRequest("bad_user_id", "user ids are " + UserIds.RULE);
    }
    return user;
  }

  private static String clientMsgId(JsonNode f) {
    String id = text(f, "clientMsgId");
    if (!Ids.isClientId(id)) {
      throw new BadRequest("bad_field", "clientMsgId must be 1-64 printable characters");
    }
    return id;
  }

  private String body(JsonNode f) {
    String body = text(f, "body");
    if (body.length() > settings.maxBodyBytes()
        || body.getBytes(StandardCharsets.UTF_8).length > settings.maxBodyBytes()) {
      throw new BadRequest("body_too_large", "message bodies are limited to " + settings.maxBodyBytes() + " bytes");
    }
    if (body.isBlank()) {
      throw new BadRequest("bad_field", "body must not be empty");
    }
    return body;
  }

  static List<String> requestTypes() {
    return List.of("ping", "create_room", "join", "leave", "invite", "remove_member", "set_topic", "send", "send_dm", "edit", "delete", "history", "list_members", "list_rooms", "resume", "mark_read", "typing");
  }
}
