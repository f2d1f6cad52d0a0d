package parley.transport.websocket;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.extractRequest;
import static org.apache.pekko.http.javadsl.server.Directives.extractWebSocketUpgrade;
import static org.apache.pekko.http.javadsl.server.Directives.path;

import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import java.util.stream.StreamSupport;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.http.javadsl.model.AttributeKeys;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.ws.Message;
import org.apache.pekko.http.javadsl.model.ws.TextMessage;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.stream.javadsl.Flow;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.typed.javadsl.ActorSink;
import parley.auth.AuthResult;
import parley.auth.AuthRoutes;
import parley.auth.TokenService;
import parley.chat.ChatSettings;
import parley.ops.ParleyMetrics;
import parley.protocol.Codec;
import parley.protocol.Push;
import parley.transport.Handlers;
import parley.transport.HttpAnswers;
import parley.transport.Outbound;
import parley.transport.Session;
import parley.transport.SessionStarts;

/**
 * {@code GET /v1/ws}: authenticates the upgrade, then joins the socket to a new {@link
 * Session}. Inbound frames are read one at a time with backpressure (a client cannot flood
 * the session's mailbox); outbound frames go through a bounded queue (a slow reader cannot
 * grow the node's memory).
 */
public final class WebSocketRoute {

  public static final String SUBPROTOCOL = "parley.v1";

  /** What the session reads for a binary frame: no text frame can be it, and it is refused as bad_frame. */
  static final String BINARY = "\u0000binary";

  private WebSocketRoute() {}

  public static Route create(ActorSystem<?> system, Handlers handlers, TokenService tokens) {
    return path(
        "ws",
        () ->
            extractRequest(request -> {
              Admission admission = admit(request, handlers, tokens, 0);
              if (!(admission instanceof Admission.Admitted admitted)) {
                return complete(((Admission.Refused) admission).answer());
              }
              if (request.getAttribute(AttributeKeys.webSocketUpgrade).isEmpty()) {
                admitted.abandon(); // not an upgrade: answered 400 below, and no session is made
              }
              return upgraded(system, handlers, admitted.session());
            }));
  }

  /** Whether an upgrade may open a session, and as whom: one rule for every WebSocket edge. */
  public sealed interface Admission {
    /**
     * The session to start, given the socket's side of it, and its place among the node's
     * starting sessions (null for a worker's).
     */
    record Admitted(Function<Outbound, Behavior<Session.Command>> session, SessionStarts.Start start)
        implements Admission {
      /** No session will be made (not an upgrade after all, or the client left first). */
      public void abandon() {
        if (start != null) {
          start.done();
        }
      }
    }

    /** The HTTP answer instead of the upgrade (403 origin_not_allowed, 401 token_..., 503 unavailable). */
    record Refused(HttpResponse answer) implements Admission {}
  }

  /**
   * The page's origin is checked first, then the credential: the worker key, else a user's
   * token (found as {@link AuthRoutes} says); then whether the node may start one more session
   * of that user ({@link SessionStarts}). {@code clientPort}: on the WebSocket port, the
   * client port, whose pages are the node's own (0 on the client port itself).
   */
  public static Admission admit(HttpRequest request, Handlers handlers, TokenService tokens, int clientPort) {
    Optional<HttpResponse> refusal = handlers.origins().refusal(request, clientPort);
    if (refusal.isPresent()) {
      return new Admission.Refused(refusal.get());
    }
    if (isWorker(handlers, request)) {
      return new Admission.Admitted(out -> Session.createWorker(out, handlers), null);
    }
    AuthResult result = AuthRoutes.authenticate(tokens, request);
    if (!(result instanceof AuthResult.Authenticated user)) {
      return new Admission.Refused(AuthRoutes.unauthorized((AuthResult.AuthFailure) result));
    }
    SessionStarts.Start start = handlers.starts().tryStart(user.userId());
    return start == null
        ? new Admission.Refused(HttpAnswers.busyStarting())
        : new Admission.Admitted(out -> Session.create(user, out, handlers, Session.Options.interactive(start)), start);
  }

  /**
   * A worker connects with the worker key where a user puts a token (docs/jobs.md): it is
   * compared first, so it never reaches the token check, and a token can never pass for it.
   */
  private static boolean isWorker(Handlers handlers, HttpRequest request) {
    return handlers.workers().enabled()
        && AuthRoutes.presentedToken(request).map(key -> handlers.workers().accepts("Bearer " + key)).orElse(false);
  }

  private static Route upgraded(
      ActorSystem<?> system, Handlers handlers, Function<Outbound, Behavior<Session.Command>> session) {
    return extractWebSocketUpgrade(
        upgrade -> {
          Flow<Message, Message, NotUsed> flow = sessionFlow(system, handlers, session);
          boolean offered =
              StreamSupport.stream(upgrade.getRequestedProtocols().spliterator(), false)
                  .anyMatch(SUBPROTOCOL::equals);
          return complete(
              offered
                  ? upgrade.handleMessagesWith(flow, SUBPROTOCOL)
                  : upgrade.handleMessagesWith(flow));
        });
  }

  static Flow<Message, Message, NotUsed> sessionFlow(
      ActorSystem<?> system, Handlers handlers, Function<Outbound, Behavior<Session.Command>> newSession) {
    ChatSettings settings = handlers.settings();
    Materializer materializer = Materializer.matFromSystem(system);
    // The outbound queue is materialized inside the connection's own stream, and the session
    // starts once it exists: a queue materialized ahead as a stream of its own would cost every
    // socket a second stream actor and every outgoing frame an extra asynchronous hop.
    CompletableFuture<ActorRef<Session.Command>> session = new CompletableFuture<>();
    Source<Message, NotUsed> outbound =
        Source.<Message>queue(settings.outboundBuffer())
            .mapMaterializedValue(
                queue -> {
                  session.complete(
                      system.systemActorOf(
                          newSession.apply(new QueueOutbound(queue)),
                          "session-" + Session.newId(),
                          Props.empty()));
                  return NotUsed.notUsed();
                });
    Sink<Message, NotUsed> inbound =
        Flow.<Message>create()
            .mapAsync(1, message -> strictText(message, settings.maxFrameBytes(), materializer))
            .to(
                Sink.<Frame, NotUsed>completionStageSink(
                        session.thenApply(
                            ref ->
                                ActorSink.<Frame, Session.Command, Session.Ack>actorRefWithBackpressure(
                                    ref,
                                    (ackTo, frame) ->
                                        frame.tooLarge()
                                            ? new Session.InboundTooLarge(frame.text(), () -> ackTo.tell(Session.Ack.INSTANCE))
                                            : new Session.Inbound(frame.text(), () -> ackTo.tell(Session.Ack.INSTANCE)),
                                    Session.InboundStarted::new,
                                    Session.Ack.INSTANCE,
                                    new Session.InboundClosed(),
                                    Session.InboundFailed::new)))
                    .mapMaterializedValue(ignored -> NotUsed.notUsed()));
    // The session also learns of the end from the stream itself: the inbound sink above starts
    // only with the first frame, so a socket closed before it ever spoke would leave its
    // session (and its user online) until the heartbeat deadline.
    Flow<Message, Message, NotUsed> connection =
        Flow.fromSinkAndSourceCoupled(inbound, outbound)
            .watchTermination(
                (notUsed, done) -> {
                  done.whenComplete((d, e) -> session.thenAccept(ref -> ref.tell(new Session.InboundClosed())));
                  return notUsed;
                });
    return ParleyMetrics.get(system).countConnection(ParleyMetrics.WEBSOCKET, connection);
  }

  /**
   * The frame's text, or empty when it is over the limit. A frame that arrives in parts is
   * read to its end either way, but no more than the limit is kept.
   */
  /** A frame's text, or for a frame over the limit the first part of it. */
  private record Frame(String text, boolean tooLarge) {}

  private static CompletionStage<Frame> strictText(
      Message message, int maxBytes, Materializer materializer) {
    if (!message.isText()) {
      message.asBinaryMessage().getStreamedData().runWith(Sink.ignore(), materializer);
      return CompletableFuture.completedFuture(new Frame(BINARY, false));
    }
    TextMessage text = message.asTextMessage();
    if (text.isStrict()) {
      return CompletableFuture.completedFuture(withinLimit(text.getStrictText(), maxBytes));
    }
    return text.getStreamedText()
        .runFold(
            new StringBuilder(),
            (acc, part) -> acc.length() > maxBytes ? acc : acc.append(part),
            materializer)
        .thenApply(acc -> withinLimit(acc.toString(), maxBytes));
  }

  private static Frame withinLimit(String text, int maxBytes) {
    boolean tooLarge =
        text.length() > maxBytes || text.getBytes(StandardCharsets.UTF_8).length > maxBytes;
    return tooLarge ? new Frame(text.substring(0, Math.min(text.length(), maxBytes)), true) : new Frame(text, false);
  }

  /** The session's side of the socket: a bounded queue of frames. */
  private record QueueOutbound(BoundedSourceQueue<Message> queue) implements Outbound {
    @Override
    public boolean offer(String frame) {
      return queue.offer(TextMessage.create(frame)) == QueueOfferResult.enqueued();
    }

    @Override
    public int backlog() {
      return queue.size();
    }

    /**
     * Pekko HTTP closes a server socket with 1000 only, so the code and reason travel in a
     * last {@code close} frame before it.
     */
    @Override
    public void close(int code, String reason) {
      queue.offer(TextMessage.create(Codec.push(new Push.Close(code, reason))));
      try {
        queue.complete();
      } catch (IllegalStateException alreadyEnded) {
        // The client closed first: the stream, and with it the queue, has ended already.
      }
    }
  }
}
