package parley.transport.sse;

import static org.apache.pekko.http.javadsl.server.Directives.completeOK;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;
import static org.apache.pekko.http.javadsl.server.Directives.parameterOptional;
import static org.apache.pekko.http.javadsl.server.Directives.path;

import java.util.UUID;
import java.util.function.Supplier;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.http.javadsl.marshalling.sse.EventStreamMarshalling;
import org.apache.pekko.http.javadsl.model.sse.ServerSentEvent;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.stream.javadsl.Source;
import parley.auth.AuthRoutes;
import parley.auth.TokenService;
import parley.chat.ChatSettings;
import parley.chat.fanout.NodeHub;
import parley.ops.ParleyMetrics;
import parley.transport.Frames;
import parley.transport.Outbound;
import parley.transport.ResumeCursor;
import parley.transport.Session;
import parley.transport.rest.RestRoutes;

/**
 * {@code GET /v1/events}: the same server-to-client frames as the WebSocket, as Server-Sent
 * Events. Each event's {@code event:} is the frame type and a timeline event's {@code id:} is
 * the resume cursor just after it, so a browser's EventSource reconnecting with
 * {@code Last-Event-ID} resumes exactly there. Client actions go over REST.
 */
public final class SseRoute {

  private SseRoute() {}

  public static Route create(
      ActorSystem<?> system,
      ChatSettings settings,
      TokenService tokens,
      ActorRef<NodeHub.Command> hub) {
    Materializer materializer = Materializer.matFromSystem(system);
    return path(
        "events",
        () ->
            get(
                () ->
                    AuthRoutes.authenticated(
                        tokens,
                        user ->
                            optionalHeaderValueByName(
                                "Last-Event-ID",
                                lastEventId ->
                                    parameterOptional(
                                        "cursor",
                                        cursorParameter -> {
                                          ResumeCursor cursor;
                                          try {
                                            String given = lastEventId.or(() -> cursorParameter).orElse(null);
                                            cursor = given == null || given.isBlank() ? null : ResumeCursor.decode(given);
                                          } catch (ResumeCursor.Invalid e) {
                                            return RestRoutes.error(e.code, e.getMessage());
                                          }
                                          Pair<BoundedSourceQueue<ServerSentEvent>, Source<ServerSentEvent, NotUsed>> queue =
                                              Source.<ServerSentEvent>queue(settings.outboundBuffer()).preMaterialize(materializer);
                                          ActorRef<Session.Command> session =
                                              system.systemActorOf(
                                                  Session.create(user.userId(), new SseOutbound(queue.first()), settings, hub, Session.Options.stream(cursor)),
                                                  "sse-" + UUID.randomUUID(),
                                                  Props.empty());
                                          Source<ServerSentEvent, NotUsed> events =
                                              queue
                                                  .second()
                                                  // An SSE client cannot answer: the comment line only keeps
                                                  // proxies from cutting an idle stream (docs/transports.md).
                                                  .keepAlive(settings.heartbeatInterval(), ServerSentEvent::heartbeat)
                                                  .watchTermination(
                                                      (notUsed, done) -> {
                                                        done.whenComplete((d, e) -> session.tell(new Session.InboundClosed()));
                                                        return notUsed;
                                                      });
                                          return completeOK(
                                              ParleyMetrics.get(system).countConnection("sse", events),
                                              EventStreamMarshalling.toEventStream());
                                        })))));
  }

  private record SseOutbound(BoundedSourceQueue<ServerSentEvent> queue) implements Outbound {
    @Override
    public boolean offer(String frame) {
      return queue.offer(ServerSentEvent.create(frame, Frames.typeOf(frame))) == QueueOfferResult.enqueued();
    }

    @Override
    public boolean offerEvent(String frame, Supplier<String> cursor) {
      return queue.offer(ServerSentEvent.create(frame, "event", cursor.get())) == QueueOfferResult.enqueued();
    }

    @Override
    public int backlog() {
      return queue.size();
    }

    @Override
    public void close(int code, String reason) {
      var close = Frames.JSON.createObjectNode();
      close.put("type", "close");
      close.put("code", code);
      close.put("reason", reason);
      queue.offer(ServerSentEvent.create(Frames.write(close), "close"));
      queue.complete();
    }
  }
}
