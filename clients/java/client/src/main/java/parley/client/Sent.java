package parley.client;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;

/**
 * The {@code ok} reply to a write: {@code send}, {@code send_dm}, {@code edit} or {@code delete}.
 *
 * @param room the room written to; for a direct message, the {@code dm:a:b} room
 * @param seq the event's position in the room timeline
 * @param ts when the event was stored, or null if the reply had no {@code ts}
 * @param clientMsgId the write's idempotency key
 * @param duplicate true if the server had already stored this {@code clientMsgId} and wrote
 *     nothing this time
 * @param delivered for {@code send_dm}, whether the recipient had a live session when the message
 *     was stored; always false for the other writes
 */
public record Sent(
    String room, long seq, Instant ts, String clientMsgId, boolean duplicate, boolean delivered) {

  static Sent fromReply(JsonNode reply, String clientMsgId) {
    JsonNode ts = reply.get("ts");
    return new Sent(
        reply.path("room").asText(),
        reply.path("seq").asLong(),
        ts == null || !ts.isTextual() ? null : Instant.parse(ts.asText()),
        reply.path("clientMsgId").asText(clientMsgId),
        reply.path("duplicate").asBoolean(false),
        reply.path("delivered").asBoolean(false));
  }
}
