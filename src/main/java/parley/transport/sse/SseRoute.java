package parley.transport.sse;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.mapResponse;
import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;
import static org.apache.pekko.http.javadsl.server.Directives.parameterOptional;
import static org.apache.pekko.http.javadsl.server.Directives.path;

import java.util.function.Function;
import java.util.function.Supplier;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;
import parley.auth.AuthResult;
import parley.auth.AuthRoutes;
import parley.auth.TokenService;
import parley.ops.ParleyMetrics;
import parley.protocol.Codec;
import parley.protocol.Push;
import parley.transport.Frames;
import parley.transport.Handlers;
import parley.transport.HttpAnswers;
import parley.transport.Outbound;
import parley.transport.ResumeCursor;
import parley.transport.Session;
import parley.transport.SessionStarts;

/**
 * {@code GET /v1/events}: the same server-to-client frames as the WebSocket, as Server-Sent
 * Events. Each event's {@code event:} is the frame type and a timeline event's {@code id:} is
 * the resume cursor just after it, so a browser's EventSource reconnecting with
 * {@code Last-Event-ID} resumes exactly there. Client actions go over REST.
 *
 * <p>Everything that can be refused is refused before the stream starts, with an HTTP status
 * (a bad cursor, one naming a room the user is not in): an EventSource treats a 200 as a
 * connection to keep, and would reconnect to the same refusal forever.
 */
public final class SseRoute {

  /** A comment line: keeps proxies from cutting an idle stream, and no client sees an event. */
  private static final ByteString KEEP_ALIVE = ByteString.fromString(":\n\n");

  private SseRoute() {}

  public static Route create(ActorSystem<?> system, Handlers handlers, TokenService tokens) {
    Materializer materializer = Materializer.matFromSystem(system);
    return path(
        "events",
        () ->
            get(
                () ->
                    handlers.origins().check(() ->
                    AuthRoutes.authenticated(
                        tokens,
                        user ->
                            starting(
                                handlers,
                                user,
                                start ->
                                    optionalHeaderValueByName(
                                        "Last-Event-ID",
                                        lastEventId ->
                                            parameterOptional(
                                                "cursor",
                                                cursorParameter ->
                                                    handlers.checkpoints().startingFrom(
                                                        handlers,
                                                        user.userId(),
                                                        lastEventId.filter(id -> !id.isBlank()).or(() -> cursorParameter),
                                                        cursor -> stream(system, materializer, handlers, user, cursor, start)))))))));
  }

  /**
   * Takes the stream's place among the node's starting sessions before anything is read for it
   * (the cursor's checkpoint, the user's rooms), or answers 503; an answer other than the
   * stream (a refused cursor) gives the place back.
   */
  private static Route starting(
      Handlers handlers, AuthResult.Authenticated user, Function<SessionStarts.Start, Route> inner) {
    SessionStarts.Start start = handlers.starts().tryStart(user.userId());
    if (start == null) {
      return complete(HttpAnswers.busyStarting());
    }
    return mapResponse(
        response -> {
          if (response.status().intValue() != 200) {
            start.done();
          }
          return response;
        },
        () -> inner.apply(start));
  }

  private static Route stream(
      ActorSystem<?> system,
      Materializer materializer,
      Handlers handlers,
      AuthResult.Authenticated user,
      ResumeCursor cursor,
      SessionStarts.Start start) {
    Pair<BoundedSourceQueue<ByteString>, Source<ByteString, NotUsed>> queue =
        Source.<ByteString>queue(handlers.settings().outboundBuffer()).preMaterialize(materializer);
    ActorRef<Session.Command> session =
        system.systemActorOf(
            Session.create(user, new SseOutbound(queue.first(), handlers.checkpoints().settings().cursorChars()), handlers, Session.Options.stream(cursor, start)),
            "sse-" + Session.newId(),
            Props.empty());
    Source<ByteString, NotUsed> events =
        queue
            .second()
            // An SSE client cannot answer: the comment line only keeps proxies from cutting an
            // idle stream (docs/transports.md).
            .keepAlive(handlers.settings().heartbeatInterval(), () -> KEEP_ALIVE)
            .watchTermination(
                (notUsed, done) -> {
                  done.whenComplete((d, e) -> session.tell(new Session.InboundClosed()));
                  return notUsed;
                });
    return complete(
        HttpResponse.create()
            .withEntity(
                HttpEntities.createChunked(
                    MediaTypes.TEXT_EVENT_STREAM.toContentType(),
                    ParleyMetrics.get(system).countConnection(ParleyMetrics.SSE, events))));
  }

  /** One SSE event: {@code event:} the frame's type, {@code id:} a cursor, {@code data:} the frame. */
  static ByteString event(String type, String id, String frame) {
    StringBuilder text = new StringBuilder(frame.length() + 64).append("event: ").append(type).append('\n');
    if (id != null) {
      text.append("id: ").append(id).append('\n');
    }
    // Frames are compact JSON, one line: data needs no splitting.
    return ByteString.fromString(text.append("data: ").append(frame).append("\n\n").toString());
  }

  private record SseOutbound(BoundedSourceQueue<ByteString> queue, int maxCursorChars) implements Outbound {
    @Override
    public boolean offer(String frame) {
      return queue.offer(event(Frames.typeOf(frame), null, frame)) == QueueOfferResult.enqueued();
    }

    @Override
    public boolean offerEvent(String frame, Supplier<String> cursor) {
      String id = cursor.get();
      // A burst across many rooms while the session saves a checkpoint would make the id long
      // (Last-Event-ID must fit a header): the event waits, as for a client that lags, and is
      // sent again from the journal with a short id once the checkpoint is written.
      if (id.length() > maxCursorChars) {
        return false;
      }
      return queue.offer(event(Frames.typeOf(frame), id, frame)) == QueueOfferResult.enqueued();
    }

    @Override
    public int backlog() {
      return queue.size();
    }

    @Override
    public void close(int code, String reason) {
      queue.offer(event("close", null, Codec.push(new Push.Close(code, reason))));
      queue.complete();
    }
  }
}
