package parley.transport.rest;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.entity;
import static org.apache.pekko.http.javadsl.server.Directives.onComplete;
import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.Directives.post;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import parley.auth.AuthRoutes;
import parley.auth.ServerCredential;
import parley.auth.UserIds;
import parley.chat.ChatSettings;
import parley.chat.Ids;
import parley.chat.room.RoomEntity;
import parley.transport.Frames;

/**
 * {@code POST /v1/rooms/{room}/messages} with the server key: application backends publish
 * into a room, with the durability and idempotency of a client send: the answer comes
 * after the journal write, and the {@code Idempotency-Key} header is the clientMsgId.
 */
public final class PublishRoute {

  private PublishRoute() {}

  static Route publish(
      ClusterSharding sharding, ChatSettings settings, String room, String key, String text) {
    if (!Ids.isRoomId(room)) {
      return error(StatusCodes.BAD_REQUEST, "bad_room_id", "room ids are 1 to 64 characters of A-Z a-z 0-9 _ . -");
    }
    if (key == null || !Ids.isClientId(key)) {
      return error(StatusCodes.BAD_REQUEST, "missing_field", "an Idempotency-Key header of 1-64 printable characters is required");
    }
    JsonNode json;
    try {
      json = Frames.JSON.readTree(text);
    } catch (Exception e) {
      return error(StatusCodes.BAD_REQUEST, "bad_frame", "the body is not valid JSON");
    }
    if (json == null || !json.isObject() || !json.path("body").isTextual() || !json.path("user").isTextual()) {
      return error(StatusCodes.BAD_REQUEST, "missing_field", "the body must be {\"user\": \"…\", \"body\": \"…\"}");
    }
    String user = json.get("user").asText();
    String body = json.get("body").asText();
    if (!UserIds.isValid(user)) {
      return error(StatusCodes.BAD_REQUEST, "bad_user_id", "user ids are " + UserIds.RULE);
    }
    if (body.isBlank()) {
      return error(StatusCodes.BAD_REQUEST, "bad_field", "body must not be empty");
    }
    if (body.getBytes(StandardCharsets.UTF_8).length > settings.maxBodyBytes()) {
      return error(StatusCodes.PAYLOAD_TOO_LARGE, "body_too_large", "message bodies are limited to " + settings.maxBodyBytes() + " bytes");
    }
    return onComplete(
        sharding
            .entityRefFor(RoomEntity.ENTITY_KEY, room)
            .<RoomEntity.WriteReply>ask(replyTo -> new RoomEntity.Post(user, key, body, true, replyTo), settings.askTimeout()),
        result -> {
          if (result.isFailure()) {
            return error(StatusCodes.GATEWAY_TIMEOUT, "timeout", "no answer in time; retry with the same Idempotency-Key");
          }
          if (result.get() instanceof RoomEntity.Rejected rejected) {
            return error(status(rejected.code()), rejected.code(), rejected.message());
          }
          RoomEntity.Written written = (RoomEntity.Written) result.get();
          ObjectNode ok = Frames.JSON.createObjectNode();
          ok.put("room", written.room());
          ok.put("seq", written.seq());
          ok.put("ts", Instant.ofEpochMilli(written.ts()).toString());
          ok.put("clientMsgId", written.clientMsgId());
          ok.put("duplicate", written.duplicate());
          return complete(json(StatusCodes.OK, ok));
        });
  }

  private static StatusCode status(String code) {
    return RestRoutes.status(code);
  }

  static Route error(StatusCode status, String code, String message) {
    return complete(HttpResponse.create().withStatus(status).withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, Frames.error(null, code, message))));
  }

  private static HttpResponse json(StatusCode status, ObjectNode node) {
    return HttpResponse.create().withStatus(status).withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, Frames.write(node)));
  }
}
