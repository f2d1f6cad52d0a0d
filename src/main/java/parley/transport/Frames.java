package parley.transport;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import parley.chat.room.RoomPush;
import parley.chat.room.TimelineEvent;

/** Builds the JSON frames of protocol v1 (docs/protocol.md); the one place that knows them. */
public final class Frames {

  public static final ObjectMapper JSON = new ObjectMapper();

  /**
   * Rendered event frames. A room's event goes to every member connected to the node, and its
   * frame is the same for all of them (it names no recipient), so it is rendered once, not once
   * per socket: at 100 members that was a sixth of the node's CPU in the fan-out profile. Keyed
   * by value, since rendering is a pure function of the event; bounded, since only the newest
   * events are in flight to most sockets at once.
   */
  private static final Cache<TimelineEvent, String> EVENT_FRAMES =
      Caffeine.newBuilder().maximumSize(4096).build();

  private Frames() {}

  public static ObjectNode ok(String id) {
    ObjectNode node = JSON.createObjectNode();
    node.put("type", "ok");
    node.put("id", id);
    return node;
  }

  public static String error(String id, String code, String message) {
    ObjectNode node = JSON.createObjectNode();
    node.put("type", "error");
    if (id != null) {
      node.put("id", id);
    }
    node.put("code", code);
    node.put("message", message);
    return write(node);
  }

  /** {@link #event} as text, rendered once per event for all the node's sockets. */
  public static String eventFrame(TimelineEvent e) {
    return EVENT_FRAMES.get(e, event -> write(event(event)));
  }

  public static ObjectNode event(TimelineEvent e) {
    ObjectNode node = JSON.createObjectNode();
    node.put("type", "event");
    node.put("room", e.room());
    node.put("seq", e.seq());
    node.put("ts", Instant.ofEpochMilli(e.ts()).toString());
    node.put("kind", e.kind());
    putIfPresent(node, "user", e.user());
    putIfPresent(node, "by", e.by());
    putIfPresent(node, "clientMsgId", e.clientMsgId());
    putIfPresent(node, "body", e.body());
    if (e.target() != null) {
      node.put("target", e.target());
    }
    putIfPresent(node, "topic", e.topic());
    putIfPresent(node, "visibility", e.visibility());
    if (e.edited()) {
      node.put("edited", true);
    }
    if (e.deleted()) {
      node.put("deleted", true);
    }
    return node;
  }

  public static String ephemeral(RoomPush.Ephemeral push) {
    ObjectNode node = JSON.createObjectNode();
    node.put("type", push.kind());
    switch (push.kind()) {
      case "presence" -> {
        node.put("user", push.user());
        node.put("status", push.status());
        node.put("lastSeen", Instant.ofEpochMilli(push.at()).toString());
      }
      case "receipt" -> {
        node.put("room", push.room());
        node.put("seq", push.seq());
        node.put("user", push.user());
        node.put("status", push.status());
      }
      case "read" -> {
        node.put("room", push.room());
        node.put("user", push.user());
        node.put("seq", push.seq());
      }
      default -> {
        node.put("room", push.room());
        node.put("user", push.user());
      }
    }
    return write(node);
  }

  /** The {@code type} of a frame built here (every frame starts with it). */
  public static String typeOf(String frame) {
    String prefix = "{\"type\":\"";
    if (!frame.startsWith(prefix)) {
      return "message";
    }
    int end = frame.indexOf('"', prefix.length());
    return end < 0 ? "message" : frame.substring(prefix.length(), end);
  }

  /** Parses a frame this server wrote. */
  public static JsonNode read(String frame) {
    try {
      return JSON.readTree(frame);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  public static String write(ObjectNode node) {
    try {
      return JSON.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void putIfPresent(ObjectNode node, String field, String value) {
    if (value != null) {
      node.put(field, value);
    }
  }
}
