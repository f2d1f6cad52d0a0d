package parley.transport.poll;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.onSuccess;
import static org.apache.pekko.http.javadsl.server.Directives.parameterOptional;
import static org.apache.pekko.http.javadsl.server.Directives.path;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;
import parley.auth.AuthResult;
import parley.auth.AuthRoutes;
import parley.auth.TokenService;
import parley.chat.ChatSettings;
import parley.ops.ParleyMetrics;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.Push;
import parley.transport.Frames;
import parley.transport.Handlers;
import parley.transport.HttpAnswers;
import parley.transport.Outbound;
import parley.transport.ResumeCursor;
import parley.transport.Session;

/**
 * {@code GET /v1/poll?cursor=…&timeout=25s}: long-polling. The request is held until there is
 * something after the cursor, or the timeout passes, and answers the frames and the next
 * cursor. {@code timeout=0} is a short poll. Each poll is a short-lived session started from
 * the cursor, so polling has the WebSocket's ordering and exactly-once delivery.
 *
 * <p>A poll places a session in every room of its user, which costs the node about what a
 * connection's start does: so each poll is one request of the user's shared rate, and a held
 * poll counts as one of the user's open connections while it is held.
 */
public final class PollRoute {

  /** Longer waits are clamped to this (documented), below common proxy idle timeouts. */
  public static final Duration MAX_TIMEOUT = Duration.ofSeconds(60);

  /** After the first event, gather what else arrives this long before answering. */
  private static final Duration LINGER = Duration.ofMillis(30);

  private static final Pattern TIMEOUT = Pattern.compile("(\\d+)(ms|s)?");

  private PollRoute() {}

  public static Route create(ActorSystem<?> system, Handlers handlers, TokenService tokens) {
    return path(
        "poll",
        () ->
            get(
                () ->
                    AuthRoutes.authenticated(
                        tokens,
                        user ->
                            parameterOptional(
                                "cursor",
                                cursorParameter ->
                                    parameterOptional(
                                        "timeout",
                                        timeoutParameter -> {
                                          Duration timeout;
                                          try {
                                            timeout = parseTimeout(timeoutParameter);
                                          } catch (IllegalArgumentException e) {
                                            return HttpAnswers.error(ErrorCode.BAD_TIMEOUT, e.getMessage());
                                          }
                                          return handlers.limits().admitCall(user.userId(), () -> handlers.checkpoints().startingFrom(
                                              handlers,
                                              user.userId(),
                                              cursorParameter,
                                              cursor -> poll(system, handlers, user, cursor, timeout)));
                                        })))));
  }

  static Duration parseTimeout(Optional<String> value) {
    if (value.isEmpty()) {
      return Duration.ofSeconds(25);
    }
    Matcher m = TIMEOUT.matcher(value.get().strip());
    if (!m.matches()) {
      throw new IllegalArgumentException("timeout must be a whole number of seconds (25s) or milliseconds (500ms), 0 to 60s");
    }
    String digits = m.group(1).replaceFirst("^0+(?=\\d)", "");
    if (digits.length() > 18) {
      return MAX_TIMEOUT; // more than a long holds: far over the clamp anyway
    }
    long amount = Long.parseLong(digits);
    Duration timeout = "ms".equals(m.group(2)) ? Duration.ofMillis(amount) : Duration.ofSeconds(amount);
    return timeout.compareTo(MAX_TIMEOUT) > 0 ? MAX_TIMEOUT : timeout;
  }

  private static Route poll(
      ActorSystem<?> system,
      Handlers handlers,
      AuthResult.Authenticated user,
      ResumeCursor cursor,
      Duration timeout) {
    ChatSettings settings = handlers.settings();
    if (!handlers.limits().openConnection(user.userId())) {
      return HttpAnswers.rateLimited(
          Duration.ofSeconds(1), settings.maxConnectionsPerUser() + " connections and held polls already open");
    }
    PollOutbound out =
        new PollOutbound(
            settings.pageSize(),
            handlers.checkpoints().settings().cursorChars(),
            cursor == null ? null : cursor.encode(),
            system);
    ActorRef<Session.Command> session =
        system.systemActorOf(
            Session.create(user, out, handlers, Session.Options.poll(cursor)),
            "poll-" + Session.newId(),
            Props.empty());
    system.scheduler().scheduleOnce(timeout, out::timeUp, system.executionContext());
    // At the poll's timeout a session still placing itself in its rooms gets to finish, but
    // an entity that never answers must not keep it forever (nor the request, nor its count
    // in /metrics): one ask-timeout later the poll answers with what it has, and the session
    // ends. Its cursor is then still the one given, so the next poll loses nothing.
    system.scheduler().scheduleOnce(timeout.plus(settings.askTimeout()), out::finish, system.executionContext());
    ParleyMetrics.get(system).countConnection(ParleyMetrics.LONG_POLL, out.result);
    // The session ends with the answer, whether or not the client is still there to get it.
    out.result.whenComplete(
        (answer, failure) -> {
          handlers.limits().closeConnection(user.userId());
          session.tell(new Session.InboundClosed());
        });
    return onSuccess(out.result, answer -> complete(answer));
  }

  /**
   * Collects the frames of one poll. Called from the session's thread and the scheduler's,
   * hence synchronized. Once answered it takes nothing more: what was not answered is still
   * after the returned cursor.
   */
  private static final class PollOutbound implements Outbound {
    final CompletableFuture<HttpResponse> result = new CompletableFuture<>();
    private final int maxFrames;
    private final int maxCursorChars;
    private final ActorSystem<?> system;
    private final List<String> frames = new ArrayList<>();
    private String cursor;
    private boolean lingering;
    private boolean started;
    private boolean timedOut;

    PollOutbound(int maxFrames, int maxCursorChars, String cursor, ActorSystem<?> system) {
      this.maxFrames = maxFrames;
      this.maxCursorChars = maxCursorChars;
      this.cursor = cursor;
      this.system = system;
    }

    @Override
    public synchronized boolean offer(String frame) {
      if (result.isDone() || frames.size() >= maxFrames) {
        return false;
      }
      frames.add(frame);
      if ("close".equals(Frames.typeOf(frame))) {
        finish();
      } else {
        linger();
      }
      return true;
    }

    @Override
    public synchronized boolean offerEvent(String frame, Supplier<String> next) {
      if (result.isDone() || frames.size() >= maxFrames) {
        return false;
      }
      String after = next.get();
      // A cursor that would grow past its bound (a burst in many rooms while the session
      // saves a checkpoint, or Cassandra refusing the save) answers now, without this event:
      // the next poll gets it, from a fresh checkpoint, and the URL stays short.
      if (after.length() > maxCursorChars) {
        finish();
        return false;
      }
      frames.add(frame);
      cursor = after;
      if (frames.size() >= maxFrames) {
        finish();
      } else {
        linger();
      }
      return true;
    }

    @Override
    public synchronized void started(String position) {
      started = true;
      // Without a checkpoint (its save failed) the position would spell out every room: the
      // cursor given, or none, starts the next poll at the same place instead.
      if (frames.isEmpty() && position.length() <= maxCursorChars) {
        cursor = position;
      }
      if (timedOut) {
        finish();
      }
    }

    /** The poll's time is up; a session still placing itself finishes when it is placed. */
    synchronized void timeUp() {
      timedOut = true;
      if (started || !frames.isEmpty()) {
        finish();
      }
    }

    @Override
    public synchronized int backlog() {
      return 0;
    }

    @Override
    public synchronized void close(int code, String reason) {
      frames.add(Codec.push(new Push.Close(code, reason)));
      finish();
    }

    private void linger() {
      if (!lingering) {
        lingering = true;
        system.scheduler().scheduleOnce(LINGER, this::finish, system.executionContext());
      }
    }

    synchronized void finish() {
      if (result.isDone()) {
        return;
      }
      ObjectNode body = Codec.JSON.createObjectNode();
      if (cursor != null) {
        body.put("cursor", cursor);
      }
      ArrayNode array = body.putArray("events");
      for (String frame : frames) {
        array.add(Frames.read(frame));
      }
      result.complete(
          HttpResponse.create()
              .withStatus(StatusCodes.OK)
              .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, body.toString())));
    }
  }
}
