package parley.transport.rest;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.onComplete;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.http.javadsl.server.Route;
import parley.auth.UserIds;
import parley.chat.handler.ChatHandler;
import parley.chat.room.RoomEntity;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.ProtocolException;
import parley.protocol.Reply;
import parley.protocol.Request;
import parley.transport.Handlers;
import parley.transport.HttpAnswers;

/**
 * {@code POST /v1/rooms/{room}/messages} with the server key: application backends publish
 * into a room, with the durability and idempotency of a client send: the answer comes
 * after the journal write, and the {@code Idempotency-Key} header is the clientMsgId. The
 * room, key and body pass the rules of a client's {@code send}.
 */
public final class PublishRoute {

  private PublishRoute() {}

  static Route publish(ActorSystem<?> system, Handlers handlers, String room, String key, String text) {
    Request.Send send;
    String user;
    try {
      ObjectNode json = Codec.parseObject(text);
      user = json.path("user").isTextual() ? json.get("user").asText() : null;
      if (user == null) {
        throw new ProtocolException(ErrorCode.MISSING_FIELD, "the body must be {\"user\": \"…\", \"body\": \"…\"}");
      }
      if (!UserIds.isValid(user)) {
        throw new ProtocolException(ErrorCode.BAD_USER_ID, "user ids are " + UserIds.RULE);
      }
      if (key == null) {
        throw new ProtocolException(ErrorCode.MISSING_FIELD, "an Idempotency-Key header (the clientMsgId) is required");
      }
      ObjectNode fields = Codec.JSON.createObjectNode().put("room", room).put("clientMsgId", key);
      fields.set("body", json.get("body"));
      send = (Request.Send) handlers.codec().decode("send", fields);
    } catch (ProtocolException bad) {
      return complete(HttpAnswers.response(bad.toFailure()));
    }
    String from = user;
    return onComplete(
        ClusterSharding.get(system)
            .entityRefFor(RoomEntity.ENTITY_KEY, send.room())
            .<RoomEntity.WriteReply>ask(
                replyTo -> new RoomEntity.Post(from, send.clientMsgId(), send.body(), true, replyTo),
                handlers.settings().askTimeout()),
        result -> {
          Reply reply;
          if (result.isFailure()) {
            reply = ChatHandler.failed(result.failed().get());
          } else if (result.get() instanceof RoomEntity.Rejected rejected) {
            reply = Reply.Failure.of(ErrorCode.ofEntity(rejected.code()), rejected.message());
          } else {
            RoomEntity.Written w = (RoomEntity.Written) result.get();
            reply = new Reply.Written(w.room(), w.seq(), Instant.ofEpochMilli(w.ts()).toString(), w.clientMsgId(), w.duplicate());
          }
          return complete(HttpAnswers.response(reply));
        });
  }
}
