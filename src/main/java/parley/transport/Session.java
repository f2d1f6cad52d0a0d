package parley.transport;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.ExtensibleBehavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.Signal;
import org.apache.pekko.actor.typed.TypedActorContext;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import parley.auth.AuthResult;
import parley.chat.ChatSettings;
import parley.chat.room.RoomPush;
import parley.chat.user.UserEntity;
import parley.jobs.handler.JobHandler;
import parley.collab.document.DocumentEntity;
import parley.limits.TokenBucket;
import parley.ops.ParleyMetrics;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.ProtocolException;
import parley.protocol.Push;
import parley.protocol.Reply;
import parley.protocol.Request;

/**
 * One client connection, whatever its transport. It owns the connection's lifecycle (welcome,
 * request rate, heartbeats, its token's expiry and refresh, the outbound buffer, lagging,
 * closing); what the connection
 * follows is delivered by {@link RoomStreams} and {@link DocumentStreams}, each position once
 * and in order ({@link OrderedDelivery}), and, on connections that resume by cursor, the user's
 * job pushes by {@link JobStreams}. Requests are decoded by the {@link Codec} and answered
 * by the feature's handler; the session only acts on what a reply means for delivery.
 */
public final class Session extends ExtensibleBehavior<Session.Command> {

  public sealed interface Command {}

  /**
   * One text frame from the client; running {@code next} asks the transport for the next one
   * (backpressure: a client cannot flood the mailbox, whichever transport reads its socket).
   */
  public record Inbound(String text, Runnable next) implements Command {}

  /**
   * The frame was over the size limit; only its beginning was kept, to find the request id
   * the error answers.
   */
  public record InboundTooLarge(String prefix, Runnable next) implements Command {}

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

  /** The entity of a document this session follows has stopped (DocumentStreams). */
  private record DocumentStopped(String doc, ActorRef<DocumentEntity.Command> entity) implements Command {}

  /**
   * The session's beat on the node's {@link Pulse}: something periodic is due (a ping, the
   * heartbeat deadline, a presence renewal, the token's expiry). Presence and document
   * subscriptions live in entities' memory: the session renews them periodically, so an
   * entity that restarted or moved learns of it again.
   */
  private record Beat() implements Command {}

  private static final Beat BEAT = new Beat();

  /** An answer (of an entity or a handler), handled on the session's own thread. */
  private record Continue(Runnable work) implements Command {}

  private record LagCheck() implements Command {}

  /**
   * How a transport uses the session. A WebSocket client is interactive: it is welcomed, sends
   * {@code resume} itself, and must answer heartbeats. SSE and long-poll clients start from a
   * cursor (or their read markers) at once; they cannot answer pings. A poll is too
   * short-lived to count as being online. {@code start}: the session's place among those
   * starting on the node, given back once the user's entity has registered it (null: none).
   */
  public record Options(
      boolean welcome,
      boolean presence,
      boolean heartbeat,
      boolean startNow,
      ResumeCursor startAt,
      SessionStarts.Start start) {
    public static Options interactive(SessionStarts.Start start) {
      return new Options(true, true, true, false, null, start);
    }

    public static Options stream(ResumeCursor startAt, SessionStarts.Start start) {
      return new Options(true, true, false, true, startAt, start);
    }

    public static Options poll(ResumeCursor startAt) {
      return new Options(false, false, false, true, startAt, null);
    }
  }

  /**
   * The close code of a client that stopped answering heartbeats: 4000-4999 is left to
   * applications (RFC 6455), and 408 is HTTP's Request Timeout.
   */
  private static final int HEARTBEAT_TIMEOUT_CODE = 4408;

  /** The close code of a connection over the user's limit: 4000 + HTTP's 429 Too Many Requests. */
  private static final int TOO_MANY_CONNECTIONS_CODE = 4429;

  /** The close code of a connection whose token expired: 4000 + HTTP's 401 Unauthorized. */
  private static final int TOKEN_EXPIRED_CODE = 4401;

  private static final String PING = Codec.push(new Push.Ping());

  /**
   * A session for the user of a verified token; it ends with a {@code 4401 token_expired} close
   * when that token expires, unless the client sends {@code refresh} with a newer one first.
   */
  public static Behavior<Command> create(
      AuthResult.Authenticated user, Outbound out, Handlers handlers, Options options) {
    return create(user.userId(), user.expiresAt(), out, handlers, options);
  }

  /** The name a worker connection goes by in its welcome and the node's logs. */
  public static final String WORKER = "worker";

  /**
   * A worker's connection, opened with the worker key (docs/jobs.md): it fetches and reports
   * jobs and nothing else. The key does not expire, and a worker is no user: it is not online,
   * follows no room, and its requests are not held to a user's rate (like the worker's REST
   * calls); it answers heartbeats like any WebSocket client.
   */
  public static Behavior<Command> createWorker(Outbound out, Handlers handlers) {
    return create(null, null, out, handlers, new Options(true, false, true, false, null, null));
  }

  private static Behavior<Command> create(
      String userId, java.time.Instant expiresAt, Outbound out, Handlers handlers, Options options) {
    return Behaviors.setup(
        context ->
            Behaviors.withTimers(timers -> new Session(context, timers, userId, expiresAt, out, handlers, options)));
  }

  /**
   * A new random (version 4) UUID, for a session's id and its actor's name. Not {@link
   * UUID#randomUUID}: its SecureRandom took 3% of the node's CPU samples while connections
   * opened, and neither use needs secrecy, only uniqueness (a session id grants nothing, and
   * other users see it in {@code doc_cursor}).
   */
  public static String newId() {
    ThreadLocalRandom random = ThreadLocalRandom.current();
    long high = (random.nextLong() & ~0xF000L) | 0x4000L; // version 4
    long low = (random.nextLong() & ~(0x3L << 62)) | (0x2L << 62); // the IETF variant
    return new UUID(high, low).toString();
  }

  private final ActorContext<Command> context;
  /** The connection's user; null for a worker's connection. */
  private final String userId;
  /** How job requests are asked: as the user, or as a worker. */
  private final JobHandler.Caller jobCaller;
  private final String sessionId = newId();
  private final Outbound out;
  private final Handlers handlers;
  private final ChatSettings settings;
  private final ClusterSharding sharding;
  private final ActorRef<UserEntity.Notice> notices;
  private final DocumentStreams documents;
  private final ParleyMetrics metrics;
  private final RoomStreams rooms;
  /** The job pushes of an SSE or poll session; null on a WebSocket, which is pushed them as they come. */
  private final JobStreams jobs;
  /** Whether the rooms, and the job pushes, have placed themselves (see {@link #reportStarted}). */
  private boolean roomsStarted;
  private boolean jobsStarted;
  private boolean startReported;
  private final TokenBucket requests;
  private final TimerScheduler<Command> timers;
  private final Options options;
  /** When the client was last heard from; null for sessions whose client cannot answer pings. */
  private final Heartbeat heartbeat;
  private final Pulse pulse;
  /** This session's entry on the pulse; replaced each time it is set. */
  private Pulse.Beat beat;
  /** System.nanoTime() readings: the next ping, the next presence renewal, the token's close (MAX: none). */
  private long nextPingAt = Long.MAX_VALUE;
  private long nextRenewalAt = Long.MAX_VALUE;
  private long tokenCloseAt = Long.MAX_VALUE;
  private int overLimit;
  private boolean closed;
  /** Closed because the node shuts down (1012): the user counts as online a while longer. */
  private boolean restarting;
  /** The client reads too slowly: nothing is delivered until its buffer drains. */
  private boolean lagged;
  private boolean lagNoticePending;
  /**
   * Replies that found the client's buffer full, in order. Unlike events they cannot be read
   * again from the journal, so they wait here; their number is bounded by the requests the
   * client sends without reading (see {@link #reply}).
   */
  private final ArrayDeque<String> unsentReplies = new ArrayDeque<>();
  /** Counted against the user's connection limit (WebSocket and SSE sessions that got in). */
  private final boolean counted;

  private Session(
      ActorContext<Command> context,
      TimerScheduler<Command> timers,
      String userId,
      java.time.Instant expiresAt,
      Outbound out,
      Handlers handlers,
      Options options) {
    this.context = context;
    this.timers = timers;
    this.options = options;
    this.userId = userId;
    this.jobCaller = userId == null ? new JobHandler.Caller.Worker() : new JobHandler.Caller.User(userId);
    this.out = out;
    this.handlers = handlers;
    this.settings = handlers.settings();
    this.sharding = ClusterSharding.get(context.getSystem());
    this.rooms = new RoomStreams(this, context.messageAdapter(RoomPush.class, FromRoom::new));
    this.notices = context.messageAdapter(UserEntity.Notice.class, FromUser::new);
    this.jobs =
        options.startNow() && userId != null
            ? new JobStreams(this, notices, options.startAt() == null ? null : options.startAt().jobs())
            : null;
    this.documents =
        new DocumentStreams(this, context.messageAdapter(DocumentEntity.Push.class, FromDocument::new));
    this.metrics = ParleyMetrics.get(context.getSystem());
    this.requests = new TokenBucket(settings.ratePerSecond(), settings.rateBurst(), System.nanoTime());
    this.heartbeat =
        options.heartbeat()
            ? new Heartbeat(settings.heartbeatInterval(), settings.heartbeatTimeout(), System.nanoTime())
            : null;
    this.pulse = Pulse.get(context.getSystem());
    long now = System.nanoTime();
    if (options.heartbeat()) {
      nextPingAt = now + settings.heartbeatInterval().toNanos();
    }
    if (options.presence()) {
      nextRenewalAt = now + settings.sessionRenewInterval().toNanos();
    }
    if (expiresAt != null) {
      tokenCloseAt = now + handlers.tokens().untilClose(expiresAt).toNanos();
    }
    nextBeat(now);
    SessionRegistry.get(context.getSystem()).register(context.getSelf());
    this.counted = options.presence() && handlers.limits().openConnection(userId);
    if (options.presence() && !counted) {
      context.getLog().info("Session of {} refused: {} connections already open", userId, settings.maxConnectionsPerUser());
      closeWith(TOO_MANY_CONNECTIONS_CODE, "too_many_connections");
      return;
    }
    if (options.welcome()) {
      send(Codec.push(new Push.Welcome(
          userId == null ? WORKER : userId,
          sessionId,
          context.getSystem().address().toString(),
          1,
          options.heartbeat() ? settings.heartbeatInterval().toMillis() : null,
          options.heartbeat() ? settings.heartbeatTimeout().toMillis() : null,
          expiresAt == null ? null : handlers.tokens().untilExpiry(expiresAt).toMillis())));
    }
    if (options.presence()) {
      // Asked, not told: the answer ends the session's start (SessionStarts).
      ask(user(), replyTo -> new UserEntity.SessionOpened(sessionId, notices, false, replyTo), UserEntity.Presence.class,
          registered -> started(), noAnswer -> started());
    }
    if (options.startNow()) {
      rooms.startFrom(options.startAt());
      jobs.start();
    }
  }

  /**
   * Messages are dispatched by one method rather than a receive built with {@code
   * newReceiveBuilder()}: the builder makes some twenty objects per session, 0.4 KB of each idle
   * connection's heap (docs/benchmarks.md, "What a connection costs").
   */
  @Override
  public Behavior<Command> receive(TypedActorContext<Command> ignored, Command message) {
    if (message instanceof Inbound inbound) {
      return onInbound(inbound);
    } else if (message instanceof Beat) {
      onBeat();
    } else if (message instanceof FromRoom m) {
      rooms.onRoomPush(m.push());
    } else if (message instanceof FromUser m) {
      onNotice(m.notice());
    } else if (message instanceof FromDocument m) {
      documents.onPush(m.push());
    } else if (message instanceof DocumentStopped m) {
      documents.onEntityStopped(m.doc(), m.entity());
    } else if (message instanceof Continue c) {
      c.work().run();
    } else if (message instanceof LagCheck) {
      onLagCheck();
    } else if (message instanceof InboundTooLarge m) {
      heard();
      String id = Codec.idIn(m.prefix());
      // Counted like any other frame, so a stream of oversized ones meets the flood rule too.
      if (!closed && admitted(id)) {
        reply(Codec.error(id, ErrorCode.FRAME_TOO_LARGE, "frames are limited to " + settings.maxFrameBytes() + " bytes"));
      }
      m.next().run();
    } else if (message instanceof InboundStarted started) {
      started.ackTo().tell(Ack.INSTANCE);
    } else if (message instanceof Drain) {
      restarting = true;
      closeWith(1012, "service restart: reconnect and resume");
    } else if (message instanceof InboundClosed || message instanceof InboundFailed) {
      return Behaviors.stopped();
    }
    return this;
  }

  @Override
  public Behavior<Command> receiveSignal(TypedActorContext<Command> ignored, Signal signal) {
    if (!(signal instanceof PostStop)) {
      return Behaviors.unhandled();
    }
    if (beat != null) {
      beat.cancel();
    }
    SessionRegistry.get(context.getSystem()).unregister(context.getSelf());
    started();
    if (counted) {
      handlers.limits().closeConnection(userId);
      user().tell(new UserEntity.SessionClosed(sessionId, restarting));
    }
    return this;
  }

  private void onNotice(UserEntity.Notice notice) {
    if (notice instanceof UserEntity.RoomAdded added) {
      rooms.onRoomAdded(added.room(), added.seq());
    } else if (notice instanceof UserEntity.Relayed relayed) {
      if (jobs != null) {
        jobs.onRelayed(relayed);
      } else {
        // A job's change on a WebSocket (which has no cursor to catch up from): never
        // dropped for a lagging client, like a reply.
        reply(relayed.frame());
      }
    } else if (notice instanceof UserEntity.JobsFrom from && jobs != null) {
      jobs.onJobsFrom(from);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Requests

  private Behavior<Command> onInbound(Inbound inbound) {
    inbound.next().run();
    heard();
    if (closed) {
      // Closing: the socket drains what was queued, then the stream ends and so do we.
      return this;
    }
    Codec.Decoded decoded;
    try {
      decoded = handlers.codec().decode(inbound.text());
    } catch (ProtocolException bad) {
      if (admitted(bad.id())) {
        reply(Codec.error(bad.id(), bad.code(), bad.getMessage()));
      }
      return this;
    }
    if (decoded.request() instanceof Request.Pong) {
      // The answer to our ping: its arrival was the point, and it costs less than the
      // rate_limited error it would otherwise risk, so it is not counted against the rate.
      return this;
    }
    if (admitted(decoded.id())) {
      dispatch(decoded.id(), decoded.request());
    }
    return this;
  }

  private void dispatch(String id, Request request) {
    if (request instanceof Request.Jobs job) {
      // Answered whenever the partitions answer: a held job_fetch holds up nothing else.
      whenDone(handlers.jobs().handle(jobCaller, job), reply -> reply(Codec.reply(id, reply)));
    } else if (userId == null && !(request instanceof Request.Ping)) {
      reply(Codec.error(id, ErrorCode.FORBIDDEN, "a worker connection only fetches and reports jobs (and pings)"));
    } else if (request instanceof Request.Connection connection) {
      connection.accept(new ConnectionRequests(id));
    } else if (request instanceof Request.Chat chat) {
      whenDone(handlers.chat().handle(userId, chat), reply -> {
        rooms.followAfter(chat, reply);
        if (!(reply instanceof Reply.Accepted)) {
          reply(Codec.reply(id, reply));
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
      reply(Codec.reply(id, new Reply.Pong()));
      return null;
    }

    @Override
    public Void pong(Request.Pong request) {
      return null;
    }

    @Override
    public Void resume(Request.Resume request) {
      rooms.resume(id, request.rooms() == null ? Map.of() : request.rooms());
      return null;
    }

    /**
     * A refused token leaves the connection as it was: open, until the token it has expires.
     * With an identity provider, a token naming an unknown key may wait on a key set fetch
     * (bounded by the JWKS timeout and rate limit).
     */
    @Override
    public Void refresh(Request.Refresh request) {
      AuthResult result = handlers.tokens().verify(request.token());
      if (result instanceof AuthResult.AuthFailure failure) {
        reply(Codec.error(id, ErrorCode.fromWire(failure.code()).orElse(ErrorCode.TOKEN_INVALID), failure.message()));
      } else {
        AuthResult.Authenticated user = (AuthResult.Authenticated) result;
        if (!user.userId().equals(userId)) {
          reply(Codec.error(id, ErrorCode.TOKEN_USER_MISMATCH,
              "the token is for " + user.userId() + ", this connection is " + userId + "'s: connect anew to change user"));
        } else {
          long now = System.nanoTime();
          tokenCloseAt = now + handlers.tokens().untilClose(user.expiresAt()).toNanos();
          nextBeat(now);
          reply(Codec.reply(id, new Reply.Refreshed(handlers.tokens().untilExpiry(user.expiresAt()).toMillis())));
        }
      }
      return null;
    }
  }

  // ---------------------------------------------------------------------------------------
  // The outbound buffer

  /** Whether frames can go out now: neither closing nor waiting for a lagging client. */
  boolean open() {
    return !closed && !lagged;
  }

  /** Queues a timeline event (with the cursor after it); false if the client lags or the session closes. */
  boolean offerEvent(String frame, Supplier<String> cursor) {
    if (!open()) {
      return false;
    }
    if (!out.offerEvent(frame, cursor)) {
      enterLagged();
      return false;
    }
    metrics.delivered();
    return true;
  }

  /** Every followed room's first page is read (SSE, polls). */
  void roomsStarted() {
    roomsStarted = true;
    reportStarted();
  }

  /*
   * An SSE or poll session asks for its room list and its job catch-up at once, but delivers in
   * three steps, because every cursor it hands out names both its rooms' positions and its place
   * in the job pushes: once the room list is in (the rooms' positions), the job pushes after the
   * cursor, then the rooms' events. A job push delivered before the room list would carry a
   * cursor naming no room, and a room event delivered before the job catch-up one without the
   * job place, so the next poll would miss what came in between. The user's entity answers the
   * list and the catch-up by different paths, so their order is not left to it. One exception:
   * an entity that does not answer the catch-up within the ask timeout (its node is failing
   * over) does not hold the rooms up; their events then carry the job place the cursor gave,
   * or none if it gave none.
   */

  /** The rooms know where they start (SSE, polls): the job pushes after the cursor come next. */
  void roomsPlaced() {
    jobs.roomsPlaced();
  }

  /** The job pushes after the cursor are delivered (or the user's entity did not answer in time): room events may flow. */
  void jobsStarted() {
    jobsStarted = true;
    rooms.release();
    reportStarted();
  }

  /** Tells the transport the starting cursor once rooms and job pushes have both placed themselves. */
  private void reportStarted() {
    if (roomsStarted && (jobs == null || jobsStarted) && !startReported) {
      startReported = true;
      out.started(rooms.cursor(jobsPosition()));
    }
  }

  /** The client's place in its job pushes, for the cursors handed out; null without one. */
  ResumeCursor.Jobs jobsPosition() {
    return jobs == null ? null : jobs.position();
  }

  /** Queues a job push with the cursor after it ({@code after} its place); false if the client lags or the session closes. */
  boolean offerJobPush(String frame, ResumeCursor.Jobs after) {
    return offerEvent(frame, () -> rooms.cursor(after));
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
   * Queues the answer to a request. A reply is never dropped: while the client lags it waits
   * behind the replies before it and goes out as soon as the buffer has room, ahead of the
   * events fetched again from the journal. A client that keeps sending requests while it
   * reads nothing, past one buffer's worth of unread replies, is closed (1008).
   */
  void reply(String frame) {
    if (closed) {
      return;
    }
    if (unsentReplies.isEmpty() && out.offer(frame)) {
      return;
    }
    unsentReplies.add(frame);
    enterLagged();
    if (unsentReplies.size() > settings.outboundBuffer()) {
      context.getLog().info("Session {} of {} closed: {} replies unread", sessionId, userId, unsentReplies.size());
      unsentReplies.clear();
      closeWith(1008, "replies_unread");
    }
  }

  /** Hands waiting replies to the client in order; true once none wait. */
  private boolean flushReplies() {
    while (!unsentReplies.isEmpty() && out.offer(unsentReplies.peek())) {
      unsentReplies.poll();
    }
    return unsentReplies.isEmpty();
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
    rooms.dropWaiting();
    context.getLog().debug("Session {} of {} lagged", sessionId, userId);
    timers.startTimerWithFixedDelay(new LagCheck(), Duration.ofMillis(100));
  }

  private void onLagCheck() {
    if (closed) {
      timers.cancel(new LagCheck());
      return;
    }
    if (!flushReplies()) {
      return;
    }
    if (lagNoticePending) {
      lagNoticePending = !out.offer(Codec.push(new Push.Lagged(rooms.positions())));
      return;
    }
    if (out.backlog() <= settings.outboundBuffer() / 4) {
      lagged = false;
      timers.cancel(new LagCheck());
      rooms.resumeAfterLag();
      documents.resumeAfterLag();
      if (jobs != null) {
        jobs.resumeAfterLag();
      }
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
   * Whatever is due now: the token's close, the heartbeat deadline (checked here, not on each
   * frame: a frame only records when it came), a ping, a presence renewal. Then the next beat.
   */
  private void onBeat() {
    long now = System.nanoTime();
    if (!closed && tokenCloseAt <= now) {
      context.getLog().info("Session {} of {} closed: its token expired", sessionId, userId);
      closeWith(TOKEN_EXPIRED_CODE, "token_expired");
    }
    if (heartbeat != null && !closed) {
      if (heartbeat.expired(now)) {
        context.getLog().info(
            "Session {} of {} closed: nothing heard for {} ms (heartbeat interval + timeout)",
            sessionId, userId, settings.heartbeatInterval().plus(settings.heartbeatTimeout()).toMillis());
        metrics.heartbeatTimeout();
        closeWith(HEARTBEAT_TIMEOUT_CODE, "heartbeat_timeout");
      } else if (nextPingAt <= now) {
        // Past the lagged flag: a client that reads slowly is still alive, and the ping
        // (behind what it has yet to read) lets it prove so.
        out.offer(PING);
        nextPingAt = now + settings.heartbeatInterval().toNanos();
      }
    }
    if (nextRenewalAt <= now) {
      if (counted) {
        user().tell(new UserEntity.SessionOpened(sessionId, notices, true, context.getSystem().ignoreRef()));
      }
      documents.renew();
      nextRenewalAt = now + settings.sessionRenewInterval().toNanos();
    }
    nextBeat(now);
  }

  /** The user's entity has registered the session (or did not answer in time), or it ended. */
  private void started() {
    if (options.start() != null) {
      options.start().done(); // a second time, at the session's end, changes nothing
    }
  }

  /** Sets the session's beat at the first of its due moments. */
  private void nextBeat(long now) {
    long due = Math.min(Math.min(nextPingAt, nextRenewalAt), tokenCloseAt);
    if (heartbeat != null) {
      due = Math.min(due, now + heartbeat.remaining(now).toNanos());
    }
    if (beat != null) {
      beat.cancel();
    }
    if (due != Long.MAX_VALUE) {
      beat = pulse.schedule(context.getSelf(), BEAT, due - now);
    }
  }

  private void closeWith(int code, String reason) {
    if (!closed) {
      closed = true;
      out.close(code, reason);
    }
  }

  /** A worker's requests are held to no rate, like its REST calls: the worker key is trusted. */
  private boolean admitted(String id) {
    return userId == null || admit(id);
  }

  /**
   * One request against the connection's rate and its user's (all their connections and REST
   * calls on this node); a refusal is answered {@code rate_limited}, and past the flood limit
   * the connection is closed.
   */
  private boolean admit(String id) {
    boolean admitted =
        requests.take(System.nanoTime()).isZero() && handlers.limits().admitRequest(userId).isZero();
    if (requests.wasFull()) {
      // Quiet long enough to refill the whole burst: earlier flooding is forgiven.
      overLimit = 0;
    }
    if (!admitted) {
      overLimit++;
      reply(Codec.error(id, ErrorCode.RATE_LIMITED, "too many requests; slow down"));
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

  /** Tells {@link DocumentStreams#onEntityStopped} when {@code entity}, the document's, ends. */
  void watchDocument(ActorRef<DocumentEntity.Command> entity, String doc) {
    context.watchWith(entity, new DocumentStopped(doc, entity));
  }

  void unwatch(ActorRef<?> entity) {
    context.unwatch(entity);
  }

  /** Runs {@code work} on the session's own thread after {@code delay} (once per key: a later call replaces it). */
  void later(Duration delay, Runnable work) {
    timers.startSingleTimer(work.getClass(), new Continue(work), delay);
  }

  /** Runs {@code then} on the session's own thread once {@code stage} completes. */
  <T> void whenDone(CompletionStage<T> stage, Consumer<T> then) {
    context.pipeToSelf(stage, (value, failure) -> new Continue(() -> {
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
    ask(target, command, replyClass, settings.askTimeout(), onReply, onFailure);
  }

  /** {@link #ask} with a timeout of its own. */
  <Q, R> void ask(
      RecipientRef<Q> target,
      Function<ActorRef<R>, Q> command,
      Class<R> replyClass,
      Duration timeout,
      Consumer<R> onReply,
      Consumer<Throwable> onFailure) {
    context.ask(
        replyClass,
        target,
        timeout,
        command::apply,
        (reply, failure) -> new Continue(() -> {
          if (failure != null) {
            onFailure.accept(failure);
          } else {
            onReply.accept(reply);
          }
        }));
  }

  void tellUser(UserEntity.Command command) {
    user().tell(command);
  }

  private EntityRef<UserEntity.Command> user() {
    return sharding.entityRefFor(UserEntity.ENTITY_KEY, userId);
  }
}
