package parley.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parley.auth.UserIds;
import parley.chat.Ids;
import parley.collab.ot.InvalidOperationException;
import parley.collab.ot.TextOperation;
import parley.serialization.Text;

/** Reads and checks the fields of one request; each rule is written once, here. */
public final class Fields {

  private static final String ROOM_RULE = "room ids are 1 to 64 characters of A-Z a-z 0-9 _ . -";

  private final ObjectNode node;
  private final Codec.Limits limits;

  public Fields(ObjectNode node, Codec.Limits limits) {
    this.node = node;
    this.limits = limits;
  }

  public boolean has(String field) {
    JsonNode value = node.get(field);
    return value != null && !value.isNull();
  }

  /** The request id: optional, but when given a string of 1–64 printable characters. */
  String requestId() {
    JsonNode value = node.get("id");
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isTextual() || !Ids.isClientId(value.asText())) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "id must be a string of 1-64 printable characters");
    }
    return value.asText();
  }

  public String text(String field) {
    String value = optionalText(field);
    if (value == null) {
      throw new ProtocolException(ErrorCode.MISSING_FIELD, "missing field '" + field + "'");
    }
    return value;
  }

  public String optionalText(String field) {
    JsonNode value = node.get(field);
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isTextual()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "field '" + field + "' must be a string");
    }
    return value.asText();
  }

  String room() {
    return roomId(text("room"));
  }

  String optionalRoom() {
    String room = optionalText("room");
    return room == null ? null : roomId(room);
  }

  private static String roomId(String room) {
    if (!Ids.isRoomId(room)) {
      throw new ProtocolException(ErrorCode.BAD_ROOM_ID, ROOM_RULE);
    }
    return room;
  }

  String doc() {
    String doc = text("doc");
    if (!Ids.isRoomId(doc) || Ids.isDirectRoom(doc)) {
      throw new ProtocolException(ErrorCode.BAD_DOC_ID, "document ids are 1 to 64 characters of A-Z a-z 0-9 _ . -");
    }
    return doc;
  }

  String user(String field) {
    String user = text(field);
    if (!UserIds.isValid(user)) {
      throw new ProtocolException(ErrorCode.BAD_USER_ID, "user ids are " + UserIds.RULE);
    }
    return user;
  }

  String clientId(String field) {
    String id = text(field);
    if (!Ids.isClientId(id)) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, field + " must be 1-64 printable characters");
    }
    return id;
  }

  String visibility() {
    String visibility = optionalText("visibility");
    if (visibility == null) {
      return "public";
    }
    if (!visibility.equals("public") && !visibility.equals("private")) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "visibility is 'public' or 'private'");
    }
    return visibility;
  }

  /** A message body: not blank, well-formed, at most the configured UTF-8 bytes. */
  String body() {
    String body = wellFormed("body", text("body"));
    if (body.length() > limits.maxBodyBytes() || Text.utf8Length(body) > limits.maxBodyBytes()) {
      throw new ProtocolException(ErrorCode.BODY_TOO_LARGE, "message bodies are limited to " + limits.maxBodyBytes() + " bytes");
    }
    if (body.isBlank()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "body must not be empty");
    }
    return body;
  }

  /** A token to refresh with: a non-empty string; whether it is a good token is auth's to say. */
  String token() {
    String token = text("token");
    if (token.isBlank()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "token must not be empty");
    }
    return token;
  }

  String topic(boolean required) {
    String topic = required ? text("topic") : optionalText("topic");
    if (topic == null) {
      return null;
    }
    wellFormed("topic", topic);
    if (Text.utf8Length(topic) > limits.maxTopicBytes()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "topics are limited to " + limits.maxTopicBytes() + " bytes");
    }
    return topic;
  }

  String documentText() {
    String text = optionalText("text");
    return text == null ? "" : wellFormed("text", text);
  }

  private static String wellFormed(String field, String text) {
    if (!Text.isWellFormed(text)) {
      throw new ProtocolException(ErrorCode.BAD_TEXT, "field '" + field + "' holds a lone surrogate (not a Unicode string)");
    }
    return text;
  }

  public long number(String field) {
    JsonNode value = node.get(field);
    if (value == null || value.isNull()) {
      throw new ProtocolException(ErrorCode.MISSING_FIELD, "missing field '" + field + "'");
    }
    if (!value.isIntegralNumber() || !value.canConvertToLong()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "field '" + field + "' must be an integer");
    }
    return value.asLong();
  }

  public Long optionalNumber(String field) {
    return has(field) ? number(field) : null;
  }

  /** A queue's name; whether such a queue is configured ({@code queue_not_found}) is the job handler's question. */
  String queue() {
    return text("queue");
  }

  /** A job's id as the server gave it; whether it names a job is its partition's question. */
  String jobId() {
    String job = text("job");
    if (job.isEmpty() || job.length() > 128) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "job must be a job id as the server gave it");
    }
    return job;
  }

  /** An object field; an empty object when absent. */
  ObjectNode object(String field) {
    JsonNode value = node.get(field);
    if (value == null || value.isNull()) {
      return Codec.JSON.createObjectNode();
    }
    if (!value.isObject()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "field '" + field + "' must be an object");
    }
    return (ObjectNode) value;
  }

  /** Any JSON value; null when absent or null. */
  JsonNode value(String field) {
    JsonNode value = node.get(field);
    return value == null || value.isNull() ? null : value;
  }

  /** A timeline position: an integer ≥ 0. */
  long seq(String field) {
    long seq = number(field);
    if (seq < 0) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "field '" + field + "' must be a seq >= 0");
    }
    return seq;
  }

  Long optionalSeq(String field) {
    return has(field) ? seq(field) : null;
  }

  /** Checked as the number it is, before it is narrowed to an int. */
  public int limit(String field, int min, int max, int fallback) {
    if (!has(field)) {
      return fallback;
    }
    long value = number(field);
    if (value < min || value > max) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, field + " must be between " + min + " and " + max);
    }
    return (int) value;
  }

  long revision(String field) {
    long revision = number(field);
    if (revision < 0) {
      throw new ProtocolException(ErrorCode.BAD_REVISION, "field '" + field + "' must be a revision >= 0");
    }
    return revision;
  }

  int index(String field) {
    long index = number(field);
    if (index < 0 || index > Integer.MAX_VALUE) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "field '" + field + "' must be a position in the text, >= 0");
    }
    return (int) index;
  }

  /** {@code resume}'s positions: room id → last seq seen; null when not given. */
  Map<String, Long> positions(String field) {
    JsonNode given = node.get(field);
    if (given == null || given.isNull()) {
      return null;
    }
    if (!given.isObject()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, field + " must be an object of room -> last seq");
    }
    Map<String, Long> positions = new LinkedHashMap<>();
    Iterator<Map.Entry<String, JsonNode>> entries = given.fields();
    while (entries.hasNext()) {
      Map.Entry<String, JsonNode> entry = entries.next();
      roomId(entry.getKey());
      JsonNode seq = entry.getValue();
      if (!seq.isIntegralNumber() || !seq.canConvertToLong() || seq.asLong() < 0) {
        throw new ProtocolException(ErrorCode.BAD_FIELD, "the position of room " + entry.getKey() + " must be a seq >= 0");
      }
      positions.put(entry.getKey(), seq.asLong());
    }
    return positions;
  }

  List<String> editors() {
    JsonNode given = node.get("editors");
    if (given == null || given.isNull()) {
      return List.of();
    }
    if (!given.isArray()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "editors must be an array of user ids");
    }
    List<String> editors = new ArrayList<>();
    for (JsonNode editor : given) {
      if (!editor.isTextual() || !UserIds.isValid(editor.asText())) {
        throw new ProtocolException(ErrorCode.BAD_USER_ID, "editors are user ids: " + UserIds.RULE);
      }
      editors.add(editor.asText());
    }
    return List.copyOf(editors);
  }

  TextOperation operation() {
    JsonNode op = node.get("op");
    if (op == null || op.isNull()) {
      throw new ProtocolException(ErrorCode.MISSING_FIELD, "missing field 'op'");
    }
    if (!op.isArray()) {
      throw new ProtocolException(ErrorCode.BAD_OPERATION, "op must be an array such as [3, \"hi\", -2]");
    }
    for (JsonNode component : op) {
      // An insert is text like any other field: a lone surrogate is bad_text, not a bad operation.
      if (component.isTextual() && !Text.isWellFormed(component.textValue())) {
        throw new ProtocolException(ErrorCode.BAD_TEXT, "an insert in 'op' holds a lone surrogate (not a Unicode string)");
      }
    }
    try {
      return Codec.JSON.treeToValue(op, TextOperation.class);
    } catch (Exception e) {
      if (e.getCause() instanceof InvalidOperationException invalid) {
        throw new ProtocolException(ErrorCode.ofEntity(invalid.code()), invalid.getMessage());
      }
      throw new ProtocolException(ErrorCode.BAD_OPERATION, "op is not a valid operation");
    }
  }
}
