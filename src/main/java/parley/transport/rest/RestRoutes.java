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

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import parley.auth.AuthRoutes;
import parley.auth.ServerCredential;
import parley.auth.TokenService;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.ProtocolException;
import parley.protocol.Reply;
import parley.protocol.Request;
import parley.transport.Handlers;
import parley.transport.HttpAnswers;
import parley.transport.IfMatch;

/**
 * REST for everything a client can do over the socket, for clients that receive over SSE or
 * long-polling. A call's path and body are decoded into the same request record a WebSocket
 * frame becomes, by the same {@link Codec}, and answered by the same handler, so the rules,
 * error codes and idempotency are the WebSocket's own; the {@code Idempotency-Key} header is
 * the clientMsgId. The answer is the reply's fields, or the error with its code's status.
 */
public final class RestRoutes {

  private RestRoutes() {}

  public static Route create(
      ActorSystem<?> system, Handlers handlers, TokenService tokens, ServerCredential credential) {
    Calls calls = new Calls(handlers);
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
                                        get(() -> calls.run(user.userId(), "list_rooms", fields())),
                                        post(() -> body(json -> calls.run(user.userId(), "create_room", json)))))),
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
                                                                        text -> PublishRoute.publish(system, handlers, room, key.orElse(null), text)))
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
                                                    with(json, "to", to).put("clientMsgId", key))))))),
        pathPrefix(
            "docs",
            () ->
                AuthRoutes.authenticated(
                    tokens,
                    user ->
                        concat(
                            pathEnd(() -> post(() -> body(json -> calls.run(user.userId(), "doc_create", json)))),
                            pathPrefix(
                                segment(),
                                doc ->
                                    concat(
                                        pathEnd(() -> get(() -> calls.run(user.userId(), "doc_open", fields("doc", doc)))),
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
                                                                    with(json, "doc", doc)))))))))));
  }

  /** The room routes a user calls with their token. */
  private static Route userRoomRoutes(TokenService tokens, Calls calls, String room) {
    return AuthRoutes.authenticated(
        tokens,
        user -> {
          String me = user.userId();
          return concat(
              path("join", () -> post(() -> calls.run(me, "join", fields("room", room)))),
              path("leave", () -> post(() -> calls.run(me, "leave", fields("room", room)))),
              path("invite", () -> post(() -> body(json -> calls.run(me, "invite", with(json, "room", room))))),
              path("topic", () -> put(() -> optionalHeaderValueByName("If-Match", ifMatch -> body(json -> {
                try {
                  ifMatch.ifPresent(v -> json.put("ifVersion", IfMatch.version(v)));
                } catch (ProtocolException bad) {
                  return complete(HttpAnswers.response(bad.toFailure()));
                }
                return calls.run(me, "set_topic", with(json, "room", room));
              })))),
              path("read", () -> post(() -> body(json -> calls.run(me, "mark_read", with(json, "room", room))))),
              path("typing", () -> post(() -> calls.run(me, "typing", fields("room", room)))),
              path("export", () -> post(() -> calls.run(me, "export_room", fields("room", room)))),
              pathPrefix(
                  "members",
                  () ->
                      concat(
                          pathEnd(() -> get(() -> calls.run(me, "list_members", fields("room", room)))),
                          path(segment(), member -> delete(() -> calls.run(me, "remove_member", fields("room", room).put("user", member)))))),
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
                                                            ObjectNode request = fields("room", room);
                                                            number(request, "before", before);
                                                            number(request, "limit", limit);
                                                            return calls.run(me, "history", request);
                                                          }))),
                                      post(() -> idempotent(key -> body(json -> calls.run(me, "send", with(json, "room", room).put("clientMsgId", key))))))),
                          path(
                              longSegment(),
                              seq ->
                                  concat(
                                      patch(() -> idempotent(key -> body(json -> calls.run(me, "edit", with(json, "room", room).put("target", seq).put("clientMsgId", key))))),
                                      delete(() -> idempotent(key -> calls.run(me, "delete", fields("room", room).put("target", seq).put("clientMsgId", key)))))))));
        });
  }

  /** Decodes a call into its request and runs it through the feature's handler. */
  private record Calls(Handlers handlers) {

    Route run(String userId, String type, ObjectNode fields) {
      // The user's one rate on this node, shared with their WebSocket connections.
      return handlers.limits().admitCall(userId, () -> {
        Request request;
        try {
          request = handlers.codec().decode(type, fields);
        } catch (ProtocolException bad) {
          return complete(HttpAnswers.response(bad.toFailure()));
        }
        CompletionStage<Reply> reply =
            request instanceof Request.Chat chat
                ? handlers.chat().handle(userId, chat)
                : handlers.documents().handle(userId, null, (Request.Doc) request);
        return onSuccess(reply, r -> complete(HttpAnswers.response(r)));
      });
    }
  }

  private static Route idempotent(Function<String, Route> inner) {
    return optionalHeaderValueByName(
        "Idempotency-Key",
        key ->
            key.isPresent()
                ? inner.apply(key.get())
                : HttpAnswers.error(ErrorCode.MISSING_FIELD, "an Idempotency-Key header (the clientMsgId) is required"));
  }

  private static Route body(Function<ObjectNode, Route> inner) {
    return entity(
        Unmarshaller.entityToString(),
        text -> {
          ObjectNode json;
          try {
            json = Codec.parseObject(text);
          } catch (ProtocolException bad) {
            return complete(HttpAnswers.response(bad.toFailure()));
          }
          json.remove("type");
          json.remove("id");
          return inner.apply(json);
        });
  }

  private static ObjectNode fields() {
    return Codec.JSON.createObjectNode();
  }

  private static ObjectNode fields(String name, String value) {
    return fields().put(name, value);
  }

  /** The path names the room (or document): it wins over the body. */
  private static ObjectNode with(ObjectNode body, String name, String value) {
    return body.put(name, value);
  }

  /** Query numbers pass through as numbers, so a bad one gets the protocol's bad_field. */
  public static void number(ObjectNode fields, String name, Optional<String> value) {
    value.ifPresent(v -> {
      try {
        fields.put(name, Long.parseLong(v));
      } catch (NumberFormatException e) {
        fields.put(name, v);
      }
    });
  }
}
