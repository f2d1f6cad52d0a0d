package parley.transport;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;
import parley.chat.Ids;
import parley.protocol.Codec;

/**
 * A client's position across all of its rooms: for each room the last seq it has and the
 * room's epoch (its creation time). Clients treat it as opaque. It names journal positions,
 * not server memory, so it stays valid across a restart of a node or of the whole cluster;
 * the epoch exposes a cursor from a store that was wiped since, so the client is told to
 * reload instead of being silently short-changed.
 */
public record ResumeCursor(Map<String, Position> rooms) {

  public record Position(long seq, long epoch) {}

  /** A cursor the client got wrong: {@code code} is the stable error code. */
  public static final class Invalid extends RuntimeException {
    public final String code;

    Invalid(String message) {
      super(message, null, false, false);
      this.code = "bad_cursor";
    }
  }

  private static final int VERSION = 1;

  public String encode() {
    ObjectNode node = Codec.JSON.createObjectNode();
    node.put("v", VERSION);
    ObjectNode positions = node.putObject("r");
    new TreeMap<>(rooms).forEach((room, p) -> positions.putArray(room).add(p.seq()).add(p.epoch()));
    return Base64.getUrlEncoder().withoutPadding().encodeToString(node.toString().getBytes(StandardCharsets.UTF_8));
  }

  public static ResumeCursor decode(String text) {
    JsonNode node;
    try {
      node = Codec.JSON.readTree(new String(Base64.getUrlDecoder().decode(text), StandardCharsets.UTF_8));
    } catch (Exception e) {
      throw new Invalid("the cursor is not one this server issued");
    }
    if (node == null || node.path("v").asInt() != VERSION || !node.path("r").isObject()) {
      throw new Invalid("the cursor is not one this server issued");
    }
    Map<String, Position> rooms = new TreeMap<>();
    Iterator<Map.Entry<String, JsonNode>> fields = node.get("r").fields();
    while (fields.hasNext()) {
      Map.Entry<String, JsonNode> entry = fields.next();
      JsonNode p = entry.getValue();
      if (!Ids.isRoomId(entry.getKey())
          || !p.isArray()
          || p.size() != 2
          || !p.get(0).canConvertToLong()
          || !p.get(1).canConvertToLong()
          || p.get(0).asLong() < 0) {
        throw new Invalid("the cursor is not one this server issued");
      }
      rooms.put(entry.getKey(), new Position(p.get(0).asLong(), p.get(1).asLong()));
    }
    return new ResumeCursor(rooms);
  }
}
