package parley.transport.rest;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.delete;
import static org.apache.pekko.http.javadsl.server.Directives.entity;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.onSuccess;
import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;
import static org.apache.pekko.http.javadsl.server.Directives.parameterOptional;
import static org.apache.pekko.http.javadsl.server.Directives.patch;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathEnd;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.Directives.post;
import static org.apache.pekko.http.javadsl.server.Directives.put;
import static org.apache.pekko.http.javadsl.server.PathMatchers.longSegment;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import parley.auth.AuthRoutes;
import parley.auth.ServerCredential;
import parley.auth.TokenService;
import parley.chat.ChatSettings;
import parley.chat.fanout.NodeHub;
import parley.transport.Frames;
import parley.transport.Outbound;
import parley.transport.Session;

/**
 * REST for everything a client can do over the socket, for clients that receive over SSE or
 * long-polling. Each call is one request of protocol v1 run through a short-lived {@link
 * Session}, so the rules, error codes and idempotency are the WebSocket's own; the
 * {@code Idempotency-Key} header is the clientMsgId.
 */
public final class RestRoutes {

  private static final String REQUEST_ID = "rest";

  private RestRoutes() {}

  public static Route create(
      ActorSystem<?> system,
      ChatSettings settings,
      TokenService tokens,
      ActorRef<NodeHub.Command> hub,
      ServerCredential credential) {
    Calls calls =
        new Calls(system, settings, hub, new UserRateLimit(settings.ratePerSecond(), settings.rateBurst(), System::nanoTime));
    ClusterSharding sharding = ClusterSharding.get(system);
    return concat(
        pathPrefix(
            "rooms",
            () ->
                concat(
                    pathEnd(
                        () ->
                            AuthRoutes.authenticated(
                                tokens,
                                user ->
                                    concat(
                                        get(() -> calls.run(user.userId(), "list_rooms", Map.of())),
                                        post(() -> body(json -> calls.run(user.userId(), "create_room", fields(json))))))),
                    pathPrefix(
                        segment(),
                        room ->
                            concat(
                                path(
                                    "messages",
                                    () ->
                                        post(
                                            () ->
                                                optionalHeaderValueByName(
                                                    "Authorization",
                                                    authorization ->
                                                        credential.enabled() && credential.accepts(authorization.orElse(null))
                                                            ? optionalHeaderValueByName(
                                                                "Idempotency-Key",
                                                                key ->
                                                                    entity(
                                                                        Unmarshaller.entityToString(),
                                                                        text -> PublishRoute.publish(sharding, settings, room, key.orElse(null), text)))
                                                            : userRoomRoutes(tokens, calls, room)))),
                                userRoomRoutes(tokens, calls, room))))),
        path(
            segment("dm").slash(segment()),
            to ->
                post(
                    () ->
                        AuthRoutes.authenticated(
                            tokens,
                            user ->
                                idempotent(
                                    key ->
                                        body(
                                            json ->
                                                calls.run(
                                                    user.userId(),
                                                    "send_dm",
                                                    with(fields(json), "to", to, "clientMsgId", key))))))),
        pathPrefix(
            "docs",
            () ->
                AuthRoutes.authenticated(
                    tokens,
                    user ->
                        concat(
                            pathEnd(() -> post(() -> body(json -> calls.run(user.userId(), "doc_create", fields(json))))),
                            pathPrefix(
                                segment(),
                                doc ->
                                    concat(
                                        pathEnd(() -> get(() -> calls.run(user.userId(), "doc_open", Map.of("doc", doc)))),
                                        path(
                                            "ops",
                                            () ->
                                                post(
                                                    () ->
                                                        body(
                                                            json ->
                                                                calls.run(
                                                                    user.userId(),
                                                                    "doc_submit",
                                                                    with(fields(json), "doc", doc)))))))))));
  }

  /** The room routes a user calls with their token. */
  private static Route userRoomRoutes(TokenService tokens, Calls calls, String room) {
    return AuthRoutes.authenticated(
        tokens,
        user -> {
          String me = user.userId();
          return concat(
              path("join", () -> post(() -> calls.run(me, "join", Map.of("room", room)))),
              path("leave", () -> post(() -> calls.run(me, "leave", Map.of("room", room)))),
              path("invite", () -> post(() -> body(json -> calls.run(me, "invite", with(fields(json), "room", room))))),
              path("topic", () -> put(() -> body(json -> calls.run(me, "set_topic", with(fields(json), "room", room))))),
              path("read", () -> post(() -> body(json -> calls.run(me, "mark_read", with(fields(json), "room", room))))),
              path("typing", () -> post(() -> calls.fireAndForget(me, "typing", Map.of("room", room)))),
              pathPrefix(
                  "members",
                  () ->
                      concat(
                          pathEnd(() -> get(() -> calls.run(me, "list_members", Map.of("room", room)))),
                          path(segment(), member -> delete(() -> calls.run(me, "remove_member", Map.of("room", room, "user", member)))))),
              pathPrefix(
                  "messages",
                  () ->
                      concat(
                          pathEnd(
                              () ->
                                  concat(
                                      get(
                                          () ->
                                              parameterOptional(
                                                  "before",
                                                  before ->
                                                      parameterOptional(
                                                          "limit",
                                                          limit -> {
                                                            Map<String, Object> request = new java.util.HashMap<>();
                                                            request.put("room", room);
                                                            before.ifPresent(b -> request.put("before", number(b)));
                                                            limit.ifPresent(l -> request.put("limit", number(l)));
                                                            return calls.run(me, "history", request);
                                                          }))),
                                      post(() -> idempotent(key -> body(json -> calls.run(me, "send", with(fields(json), "room", room, "clientMsgId", key))))))),
                          path(
                              longSegment(),
                              seq ->
                                  concat(
                                      patch(() -> idempotent(key -> body(json -> calls.run(me, "edit", with(fields(json), "room", room, "target", seq, "clientMsgId", key))))),
                                      delete(() -> idempotent(key -> calls.run(me, "delete", Map.of("room", room, "target", seq, "clientMsgId", key)))))))));
        });
  }

  /** Runs requests through one-shot sessions. */
  private record Calls(
      ActorSystem<?> system, ChatSettings settings, ActorRef<NodeHub.Command> hub, UserRateLimit limit) {

    Route run(String userId, String type, Map<String, ?> fields) {
      Duration wait = limit.admit(userId);
      if (!wait.isZero()) {
        return rateLimited(wait);
      }
      CompletableFuture<String> reply = new CompletableFuture<>();
      ActorRef<Session.Command> session = start(userId, reply, type, fields);
      CompletionStage<HttpResponse> response =
          reply
              .completeOnTimeout(Frames.error(REQUEST_ID, "timeout", "no answer in time; retry (with the same Idempotency-Key for writes)"), settings.askTimeout().toMillis() + 1000, TimeUnit.MILLISECONDS)
              .thenApply(
                  frame -> {
                    session.tell(new Session.InboundClosed());
                    return response(frame);
                  });
      return onSuccess(response, r -> complete(r));
    }

    Route fireAndForget(String userId, String type, Map<String, ?> fields) {
      Duration wait = limit.admit(userId);
      if (!wait.isZero()) {
        return rateLimited(wait);
      }
      ActorRef<Session.Command> session = start(userId, new CompletableFuture<>(), type, fields);
      session.tell(new Session.InboundClosed());
      return complete(StatusCodes.ACCEPTED);
    }

    private ActorRef<Session.Command> start(
        String userId, CompletableFuture<String> reply, String type, Map<String, ?> fields) {
      ObjectNode frame = Frames.JSON.valueToTree(fields);
      frame.put("type", type);
      frame.put("id", REQUEST_ID);
      ActorRef<Session.Command> session =
          system.systemActorOf(
              Session.create(userId, new ReplyOutbound(reply), settings, hub, Session.Options.oneShot()),
              "rest-" + UUID.randomUUID(),
              Props.empty());
      session.tell(new Session.Inbound(Frames.write(frame), system.ignoreRef()));
      return session;
    }
  }

  /** 429 with {@code Retry-After} in whole seconds, at least one, as HTTP clients expect. */
  private static Route rateLimited(Duration wait) {
    long seconds = Math.max(1, (wait.toMillis() + 999) / 1000);
    return complete(
        HttpResponse.create()
            .withStatus(StatusCodes.TOO_MANY_REQUESTS)
            .addHeader(RawHeader.create("Retry-After", Long.toString(seconds)))
            .withEntity(
                HttpEntities.create(
                    ContentTypes.APPLICATION_JSON,
                    Frames.error(null, "rate_limited", "too many requests; retry after " + seconds + " s"))));
  }

  /** Takes the one reply a REST call waits for. */
  private record ReplyOutbound(CompletableFuture<String> reply) implements Outbound {
    @Override
    public boolean offer(String frame) {
      if (frame.contains("\"id\":\"" + REQUEST_ID + "\"")) {
        reply.complete(frame);
      }
      return true;
    }

    @Override
    public void close(int code, String reason) {
      reply.complete(Frames.error(REQUEST_ID, "rate_limited", reason));
    }
  }

  private static HttpResponse response(String frame) {
    ObjectNode node = (ObjectNode) Frames.read(frame);
    String type = node.path("type").asText();
    node.remove("id");
    if ("error".equals(type)) {
      return HttpResponse.create()
          .withStatus(status(node.path("code").asText()))
          .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, Frames.write(node)));
    }
    node.remove("type");
    return HttpResponse.create()
        .withStatus(StatusCodes.OK)
        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, Frames.write(node)));
  }

  /** HTTP status for an error code of the protocol. */
  public static StatusCode status(String code) {
    return switch (code) {
      case "room_not_found", "message_not_found", "not_found" -> StatusCodes.NOT_FOUND;
      case "not_a_member", "forbidden", "not_invited" -> StatusCodes.FORBIDDEN;
      case "room_exists", "already_exists", "cursor_stale" -> StatusCodes.CONFLICT;
      case "body_too_large", "frame_too_large", "document_too_large" -> StatusCodes.PAYLOAD_TOO_LARGE;
      case "rate_limited" -> StatusCodes.TOO_MANY_REQUESTS;
      case "unavailable" -> StatusCodes.SERVICE_UNAVAILABLE;
      case "timeout" -> StatusCodes.GATEWAY_TIMEOUT;
      default -> StatusCodes.BAD_REQUEST;
    };
  }

  /** An error answer: {@code {"type":"error","code":…,"message":…}} with the code's status. */
  public static Route error(String code, String message) {
    return complete(
        HttpResponse.create()
            .withStatus(status(code))
            .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, Frames.error(null, code, message))));
  }

  private static Route idempotent(Function<String, Route> inner) {
    return optionalHeaderValueByName(
        "Idempotency-Key",
        key ->
            key.isPresent()
                ? inner.apply(key.get())
                : error("missing_field", "an Idempotency-Key header (the clientMsgId) is required"));
  }

  private static Route body(Function<JsonNode, Route> inner) {
    return entity(
        Unmarshaller.entityToString(),
        text -> {
          JsonNode json;
          try {
            json = text.isBlank() ? Frames.JSON.createObjectNode() : Frames.JSON.readTree(text);
          } catch (Exception e) {
            return error("bad_frame", "the body is not valid JSON");
          }
          if (json == null || !json.isObject()) {
            return error("bad_frame", "the body must be a JSON object");
          }
          return inner.apply(json);
        });
  }

  private static Map<String, Object> fields(JsonNode json) {
    Map<String, Object> fields = new java.util.HashMap<>();
    Iterator<Map.Entry<String, JsonNode>> it = json.fields();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> field = it.next();
      if (!"type".equals(field.getKey()) && !"id".equals(field.getKey())) {
        fields.put(field.getKey(), field.getValue());
      }
    }
    return fields;
  }

  private static Map<String, Object> with(Map<String, Object> fields, Object... pairs) {
    for (int i = 0; i < pairs.length; i += 2) {
      fields.put((String) pairs[i], pairs[i + 1]);
    }
    return fields;
  }

  /** Query numbers pass through as numbers, so a bad one gets the protocol's bad_field. */
  private static Object number(String value) {
    try {
      return Long.parseLong(value);
    } catch (NumberFormatException e) {
      return value;
    }
  }
}
