package parley.transport;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import parley.protocol.Codec;

/**
 * Protocol-v1 client frames for {@link FuzzIT}, drawn from one {@link Random}: valid requests
 * of every type in {@link Codec#REQUESTS}, and the same requests broken in the ways a careless
 * or hostile client breaks them (a field of the wrong type or missing, numbers past what a
 * {@code long} holds, lone surrogates, overlong strings, deep nesting, a key twice, text after
 * the object, no JSON at all, ids of every shape, other people's rooms and documents, operations
 * with bad components). The frames depend on the seed alone, never on what the server answered,
 * so a seed gives the same frames again.
 */
final class FuzzFrames {

  /**
   * One frame: {@code text}, or {@code binary} for a binary frame; {@code kind} says how it was
   * made. {@code oversizeId} is the id a frame deliberately over the size limit carries near its
   * start (null: none).
   */
  record Frame(String text, byte[] binary, String kind, String oversizeId) {}

  /** The rooms, documents and users frames name: the test's own and other people's. */
  record World(List<String> rooms, List<String> docs, List<String> users) {}

  /** JSON text spliced in as it is: numbers no Java type holds, tokens that are not JSON. */
  private record Raw(String json) {}

  private static final List<String> TYPES = List.copyOf(Codec.REQUESTS.keySet());

  private static final List<String> NUMBERS =
      List.of(
          "0", "-0", "1", "-1", "1.5", "-2.5", "0.0", "1.0", "1e3", "1E-7", "-1e-300", "0.1e1", "5e-324",
          "2147483647", "2147483648", "-2147483649", "4294967296", "9007199254740993",
          "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
          "18446744073709551616", "123456789012345678901234567890123456789", "1e308", "1e309",
          "-1e400", "1e-400", "1" + "0".repeat(400));

  /** Numbers JSON does not allow: each makes the frame unreadable. */
  private static final List<String> NOT_NUMBERS =
      List.of("01", "+1", ".5", "1.", "NaN", "Infinity", "-Infinity", "0x10", "1_000", "--1", "1e", "-");

  private static final List<String> ODD_IDS =
      List.of(
          "", " ", "a b", "x".repeat(64), "x".repeat(65), "é", "日本", "\ud83d\ude00", "\u0000", "\ud800", "\udc00",
          "dm:", "dm:alice:bob", "dm:bob:alice", "dm:alice:alice", "dm:alice", "dm:alice:bob:carol", "dm:bob:carol",
          "dm:fz0:fz1", "DM:alice:bob", "../etc", "pub1 ", "PUB1", "pub1\n", "-", ".", "_", "..", "a/b", "a\\b",
          "%", "null", "\u202epub1", "pub1\u200b", "con", "__proto__");

  private static final List<String> ODD_TYPES =
      List.of(
          "sned", "PING", " ping", "ping ", "", "ok", "error", "event", "welcome", "doc_", "Ping", "ping\u0000",
          "\ud800", "\ud83d\ude00", "send_dm\n", "x".repeat(1000), "constructor", "__proto__", "doc_op", "close");

  private static final List<String> TEXT_PIECES =
      List.of(
          "hello", " ", "world", "\ud83d\ude00", "\ud83c\udff3\ufe0f\u200d\ud83c\udf08", "日本語", "e\u0301",
          "\u202e", "\u200b", "\u0000", "\n", "\t", "\"", "\\", "/", "<script>", "'; DROP TABLE x;--", "%s",
          "\u00ff", "\uffff", "\ufeff", "\ud834\udd1e", "{", "}", "[", "]");

  private final Random random;
  private final World world;
  private final String idPrefix;
  private final int maxFrameBytes;
  private final List<String> recentClientIds = new ArrayList<>();
  private int counter;

  FuzzFrames(Random random, World world, String idPrefix, int maxFrameBytes) {
    this.random = random;
    this.world = world;
    this.idPrefix = idPrefix;
    this.maxFrameBytes = maxFrameBytes;
  }

  /** The next frame; only a frame made to be too large is over the frame limit. */
  Frame next() {
    while (true) {
      Frame frame = draw();
      if (frame.oversizeId() != null || frame.binary() != null || !tooLarge(frame.text())) {
        return frame;
      }
    }
  }

  boolean tooLarge(String text) {
    return text.length() > maxFrameBytes || text.getBytes(StandardCharsets.UTF_8).length > maxFrameBytes;
  }

  private Frame draw() {
    double roll = random.nextDouble();
    String type = pick(TYPES);
    Map<String, Object> request = template(type);
    if (roll < 0.22) {
      return text(json(request), "valid:" + type);
    }
    if (roll < 0.80) {
      StringBuilder kind = new StringBuilder("mutated:" + type);
      int mutations = 1 + random.nextInt(3);
      for (int i = 0; i < mutations; i++) {
        kind.append(i == 0 ? ":" : "+").append(mutate(request));
      }
      return text(json(request), kind.toString());
    }
    return wholeFrame(request, type);
  }

  // ---------------------------------------------------------------------------------------
  // Valid requests

  private Map<String, Object> template(String type) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("type", type);
    m.put("id", idPrefix + "-" + counter++);
    switch (type) {
      case "ping", "pong", "list_rooms" -> {}
      case "resume" -> {
        if (random.nextBoolean()) {
          Map<String, Object> rooms = new LinkedHashMap<>();
          for (int i = random.nextInt(3); i > 0; i--) {
            rooms.put(room(), (long) seq());
          }
          m.put("rooms", rooms);
        }
      }
      case "create_room" -> {
        m.put("room", room());
        if (random.nextBoolean()) {
          m.put("visibility", random.nextBoolean() ? "public" : "private");
        }
        if (random.nextBoolean()) {
          m.put("topic", text(8));
        }
      }
      case "join", "leave", "list_members", "typing", "export_room" -> m.put("room", room());
      case "invite", "remove_member" -> {
        m.put("room", room());
        m.put("user", pick(world.users()));
      }
      case "set_topic" -> {
        m.put("room", room());
        m.put("topic", text(8));
      }
      case "send" -> {
        m.put("room", room());
        m.put("clientMsgId", clientId());
        m.put("body", text(20));
      }
      case "send_dm" -> {
        m.put("to", pick(world.users()));
        m.put("clientMsgId", clientId());
        m.put("body", text(20));
      }
      case "edit" -> {
        m.put("room", room());
        m.put("target", (long) seq());
        m.put("clientMsgId", clientId());
        m.put("body", text(20));
      }
      case "delete" -> {
        m.put("room", room());
        m.put("target", (long) seq());
        m.put("clientMsgId", clientId());
      }
      case "history" -> {
        m.put("room", room());
        if (random.nextBoolean()) {
          m.put("before", (long) seq());
        }
        if (random.nextBoolean()) {
          m.put("limit", (long) 1 + random.nextInt(200));
        }
      }
      case "mark_read" -> {
        m.put("room", room());
        m.put("seq", (long) seq());
      }
      case "doc_create" -> {
        m.put("doc", pick(world.docs()));
        if (random.nextBoolean()) {
          m.put("text", text(10));
        }
        if (random.nextBoolean()) {
          m.put("editors", List.of(pick(world.users())));
        }
        if (random.nextInt(4) == 0) {
          m.put("room", room());
        }
      }
      case "doc_open", "doc_close" -> m.put("doc", pick(world.docs()));
      case "doc_submit" -> {
        m.put("doc", pick(world.docs()));
        m.put("clientOpId", clientId());
        m.put("revision", (long) random.nextInt(random.nextBoolean() ? 3 : 40));
        m.put("op", operation());
      }
      case "doc_ops" -> {
        m.put("doc", pick(world.docs()));
        m.put("revision", (long) seq());
      }
      case "doc_cursor" -> {
        m.put("doc", pick(world.docs()));
        m.put("revision", (long) seq());
        m.put("position", (long) random.nextInt(20));
        if (random.nextBoolean()) {
          m.put("selectionEnd", (long) random.nextInt(20));
        }
      }
      case "doc_add_editor" -> {
        m.put("doc", pick(world.docs()));
        m.put("user", pick(world.users()));
      }
      case "refresh" -> {
        // Well-formed as a request; as a token it is refused (token_malformed), the connection kept.
        m.put("token", "eyJ" + Long.toHexString(random.nextLong()) + "." + Long.toHexString(random.nextLong()));
      }
      case "job_submit" -> {
        m.put("queue", pick(List.of("default", "default", "nope")));
        if (random.nextBoolean()) {
          m.put("idempotencyKey", clientId());
        }
        Map<String, Object> job = new LinkedHashMap<>();
        job.put("data", Map.of("n", (long) seq()));
        if (random.nextBoolean()) {
          job.put("priority", (long) random.nextInt(1001));
        }
        m.put("job", job);
      }
      case "job_status", "job_cancel" -> {
        m.put("job", jobId());
        if (random.nextBoolean()) {
          m.put(type.equals("job_status") ? "after" : "ifVersion", (long) random.nextInt(5));
        }
      }
      case "job_fetch" -> {
        // Held fetches are the workers' (a user's is refused first): the frame says no wait.
        m.put("queue", "default");
        m.put("max", (long) 1 + random.nextInt(3));
        m.put("waitMs", 0L);
      }
      case "job_extend", "job_progress", "job_complete", "job_fail" -> {
        m.put("job", jobId());
        m.put("leaseId", Long.toHexString(random.nextLong()));
        switch (type) {
          case "job_extend" -> m.put("lease", 30_000L);
          case "job_progress" -> m.put("progress", Map.of("pct", (long) random.nextInt(101)));
          case "job_complete" -> m.put("result", Map.of("ok", true));
          default -> m.put("error", text(3));
        }
      }
      default -> throw new IllegalStateException("no template for request type '" + type + "': teach FuzzFrames it");
    }
    return m;
  }

  private String room() {
    return pick(world.rooms());
  }

  /** A job id of the right shape (of no job, mostly), or one no queue can hold. */
  private String jobId() {
    return random.nextInt(4) == 0 ? "nope:0:x" : "default:" + random.nextInt(4) + ":" + String.format("%016x%016x", random.nextLong(), random.nextLong());
  }

  private int seq() {
    return random.nextInt(4) == 0 ? random.nextInt(5000) : random.nextInt(30);
  }

  private String clientId() {
    if (!recentClientIds.isEmpty() && random.nextInt(5) == 0) {
      return pick(recentClientIds);
    }
    String id = idPrefix + "c" + random.nextInt(1_000_000);
    if (recentClientIds.size() < 20) {
      recentClientIds.add(id);
    } else {
      recentClientIds.set(random.nextInt(20), id);
    }
    return id;
  }

  private String text(int maxPieces) {
    StringBuilder text = new StringBuilder();
    for (int i = 1 + random.nextInt(maxPieces); i > 0; i--) {
      text.append(pick(TEXT_PIECES));
    }
    return text.toString();
  }

  /** An operation of the right shape; it spans the text only by luck (or on an empty one). */
  private List<Object> operation() {
    List<Object> op = new ArrayList<>();
    switch (random.nextInt(5)) {
      case 0 -> op.add(text(4));
      case 1 -> {
        op.add((long) 1 + random.nextInt(10));
        op.add(text(3));
      }
      case 2 -> {
        op.add((long) -1 - random.nextInt(3));
        op.add((long) 1 + random.nextInt(10));
      }
      case 3 -> op.add("x".repeat(1 + random.nextInt(random.nextInt(20) == 0 ? 60_000 : 2_000)));
      default -> {
        op.add(text(2));
        op.add((long) 1 + random.nextInt(10));
        op.add((long) -1);
      }
    }
    return op;
  }

  // ---------------------------------------------------------------------------------------
  // Breaking a field

  private String mutate(Map<String, Object> m) {
    List<String> keys = new ArrayList<>(m.keySet());
    if (keys.isEmpty()) {
      m.put("type", pick(ODD_TYPES));
      return "odd_type";
    }
    String key = pick(keys);
    switch (random.nextInt(12)) {
      case 0 -> {
        m.put(key, wrongType(m.get(key)));
        return "wrong_type(" + key + ")";
      }
      case 1 -> {
        m.remove(key);
        return "missing(" + key + ")";
      }
      case 2 -> {
        m.put(key, new Raw(pick(NUMBERS)));
        return "number(" + key + ")";
      }
      case 3 -> {
        m.put(key, surrogates());
        return "surrogates(" + key + ")";
      }
      case 4 -> {
        m.put(key, overlong(key));
        return "overlong(" + key + ")";
      }
      case 5 -> {
        m.put(key, new Raw(deep()));
        return "deep(" + key + ")";
      }
      case 6 -> {
        String idField = pickPresent(m, "room", "doc", "user", "to", "clientMsgId", "clientOpId", "id");
        m.put(idField, pick(ODD_IDS));
        return "odd_id(" + idField + ")";
      }
      case 7 -> {
        m.put("type", pick(ODD_TYPES));
        return "odd_type";
      }
      case 8 -> {
        m.put("id", idShape());
        return "id_shape";
      }
      case 9 -> {
        if (m.containsKey("op") || random.nextBoolean()) {
          m.put("op", badOperation());
          return "bad_op";
        }
        m.put(pick(List.of("rooms", "editors", "before", "limit", "selectionEnd", "visibility", "text")), wrongType(null));
        return "optional_field";
      }
      case 10 -> {
        m.put(pick(List.of("zzz", "Type", "ID", "__proto__", "")), wrongType(null));
        return "unknown_field";
      }
      default -> {
        m.put(key, new Raw(pick(NOT_NUMBERS)));
        return "not_a_number(" + key + ")";
      }
    }
  }

  private String pickPresent(Map<String, Object> m, String... fields) {
    List<String> present = new ArrayList<>();
    for (String field : fields) {
      if (m.containsKey(field)) {
        present.add(field);
      }
    }
    return present.isEmpty() ? "id" : pick(present);
  }

  private Object wrongType(Object was) {
    List<Object> values =
        List.of(
            7L, -1L, 1.5, "7", "", true, false, new Raw("null"), List.of(), Map.of(), List.of("pub1"),
            Map.of("room", "pub1"), new Raw("1e400"), "x".repeat(300));
    Object value;
    do {
      value = pick(values);
    } while (was != null && value.getClass() == was.getClass());
    return value;
  }

  private Object surrogates() {
    return switch (random.nextInt(10)) {
      case 0 -> "\ud800";
      case 1 -> "\udc00";
      case 2 -> "a\ud800b";
      case 3 -> "\udc00\ud800";
      case 4 -> "text ending high \ud83d";
      case 5 -> "\ude00 low first";
      case 6 -> "\ud83d\ude00";
      case 7 -> new Raw("\"\\ud83d\\ude00 escaped pair\"");
      case 8 -> new Raw("\"\\uD800\"");
      default -> "\ud83d\ude00".repeat(1 + random.nextInt(5)) + "\ud83d";
    };
  }

  private String overlong(String key) {
    return switch (key) {
      case "body" -> pick(List.of("x".repeat(16_385), "\ud83d\ude00".repeat(4_096), "\ud83d\ude00".repeat(4_097), "é".repeat(8_193), " ".repeat(16_000)));
      case "topic" -> pick(List.of("t".repeat(1_025), "t".repeat(1_024), "€".repeat(342), "\ud83d\ude00".repeat(256)));
      case "text" -> "y".repeat(random.nextInt(10) == 0 ? 30_000 + random.nextInt(30_000) : 1 + random.nextInt(3_000));
      default -> pick(List.of("z".repeat(65), "z".repeat(64), "z".repeat(1_000 + random.nextInt(random.nextInt(10) == 0 ? 40_000 : 2_000))));
    };
  }

  private String deep() {
    int depth = pick(List.of(2, 64, 999, 1000, 1001, 3000, 10_000));
    if (random.nextBoolean()) {
      return "[".repeat(depth) + "]".repeat(depth);
    }
    depth = Math.min(depth, 5_000);
    return "{\"a\":".repeat(depth) + "1" + "}".repeat(depth);
  }

  private Object idShape() {
    List<Object> shapes =
        List.of(
            new Raw("null"), "", " ", "x".repeat(64), "x".repeat(65), "é", "\u007f", "a b", "\"", "\\", "~", "!", "1",
            1L, 1.5, -1L, true, List.of(), Map.of(), "\ud800", "\ud83d\ude00", "\u0000", "id\n", new Raw("1e400"));
    return pick(shapes);
  }

  private Object badOperation() {
    List<Object> ops =
        List.of(
            List.of(0L), List.of(""), List.of(1.5), new Raw("[-0]"), new Raw("[2147483648]"), new Raw("[9223372036854775807]"),
            new Raw("[-9223372036854775808]"), new Raw("[-9223372036854775809]"), new Raw("[1e400]"), new Raw("[1.0]"),
            List.of(List.of(1L)), List.of(Map.of("a", 1L)), new Raw("[null]"), List.of(true), List.of("\ud800"),
            List.of("a\udc00"), List.of(1L, "\ud83d"), List.of("\ud83d\ude00"), List.of(-1L), List.of(1L, -1L),
            List.of(), "abc", Map.of(), 5L, new Raw("null"), List.of("x", "y"), List.of(1L, 1L), List.of(-1L, -1L),
            List.of(-1L, "x"), List.of(1_000_000_000L), List.of(-1_000_000_000L), new Raw("[" + "1,".repeat(5_000) + "1]"),
            new Raw("[" + "\"a\",".repeat(3_000) + "\"a\"]"), List.of(Integer.MAX_VALUE, "x"), List.of("x".repeat(60_000)));
    return pick(ops);
  }

  // ---------------------------------------------------------------------------------------
  // Breaking the whole frame

  private Frame wholeFrame(Map<String, Object> request, String type) {
    String valid = json(request);
    switch (random.nextInt(14)) {
      case 0 -> {
        return text(valid + pick(List.of(" {}", "x", "}", "]", ",", " null", "\n", "  ", "{}", "//c", "/*c*/", valid, "\u0000")), "trailing:" + type);
      }
      case 1 -> {
        int end = random.nextInt(valid.length());
        // Cut between characters, not inside a surrogate pair: a frame is text, whatever else it is.
        return text(valid.substring(0, Character.isLowSurrogate(valid.charAt(end)) ? end - 1 : end), "truncated:" + type);
      }
      case 2 -> {
        String key = pick(new ArrayList<>(request.keySet().isEmpty() ? List.of("type") : request.keySet()));
        String duplicate = "\"" + key + "\":" + json(wrongType(null)) + ",";
        return text("{" + duplicate + valid.substring(1), "duplicate_key(" + key + "):" + type);
      }
      case 3 -> {
        return text(garbage(), "garbage");
      }
      case 4 -> {
        return text(pick(List.of("", " ", "\n\t", "\r\n")), "empty");
      }
      case 5 -> {
        return text(pick(List.of("[" + valid + "]", "\"ping\"", "42", "null", "true", "[]", "{}", "[{}]", "\"" + valid.replace("\"", "\\\"") + "\"")), "not_an_object");
      }
      case 6 -> {
        byte[] bytes = new byte[random.nextInt(200)];
        random.nextBytes(bytes);
        return new Frame(null, bytes, "binary", null);
      }
      case 7 -> {
        return text(pick(List.of(valid.replace('"', '\''), valid.replace("}", ",}"), valid.replaceFirst("\"type\"", "type"), "\ufeff" + valid, valid.replace(":", " : "))), "lenient_json:" + type);
      }
      case 8 -> {
        String id = idPrefix + "-big-" + counter++;
        String huge = "x".repeat(maxFrameBytes + random.nextInt(20_000));
        if (random.nextBoolean()) {
          return new Frame("{\"type\":\"send\",\"id\":\"" + id + "\",\"room\":\"pub1\",\"clientMsgId\":\"" + id + "\",\"body\":\"" + huge + "\"}", null, "oversize", id);
        }
        return new Frame("{\"body\":\"" + huge + "\",\"type\":\"send\",\"id\":\"" + id + "\"}", null, "oversize_id_late", "");
      }
      case 9 -> {
        return text(valid + valid, "two_objects:" + type);
      }
      case 10 -> {
        return text(pick(List.of("\ud83d\ude00".repeat(100 + random.nextInt(300)), "a\ud83d\ude00".repeat(80 + random.nextInt(200)), "{\"type\":" + "\ud83d\ude00".repeat(200) + "}")), "unquoted_pairs");
      }
      case 11 -> {
        return text("{\"type\":\"" + type + "\",\"id\":" + pick(NUMBERS) + "}", "numeric_id:" + type);
      }
      case 12 -> {
        return text(valid.replace("\"" + type + "\"", "\"" + type.toUpperCase() + "\""), "upper_type:" + type);
      }
      default -> {
        return text(valid.substring(0, valid.length() - 1) + ",\"type\":" + json(pick(ODD_TYPES)) + "}", "type_twice:" + type);
      }
    }
  }

  private String garbage() {
    StringBuilder text = new StringBuilder();
    for (int i = random.nextInt(200); i > 0; i--) {
      int kind = random.nextInt(6);
      if (kind == 0) {
        text.append((char) random.nextInt(32));
      } else if (kind == 1) {
        text.appendCodePoint(0x1F600 + random.nextInt(80));
      } else if (kind == 2) {
        text.append((char) (0x4E00 + random.nextInt(2000)));
      } else {
        text.append((char) (33 + random.nextInt(94)));
      }
    }
    return text.toString();
  }

  // ---------------------------------------------------------------------------------------
  // Writing JSON by hand, so that anything can be written: a key twice, a lone surrogate

  private static Frame text(String text, String kind) {
    return new Frame(text, null, kind, null);
  }

  static String json(Object value) {
    StringBuilder out = new StringBuilder();
    write(out, value);
    return out.toString();
  }

  private static void write(StringBuilder out, Object value) {
    if (value instanceof Raw raw) {
      out.append(raw.json());
    } else if (value instanceof String s) {
      quote(out, s);
    } else if (value instanceof Map<?, ?> map) {
      out.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : map.entrySet()) {
        out.append(first ? "" : ",");
        first = false;
        quote(out, (String) e.getKey());
        out.append(':');
        write(out, e.getValue());
      }
      out.append('}');
    } else if (value instanceof List<?> list) {
      out.append('[');
      for (int i = 0; i < list.size(); i++) {
        out.append(i == 0 ? "" : ",");
        write(out, list.get(i));
      }
      out.append(']');
    } else {
      out.append(value);
    }
  }

  /**
   * A JSON string. A lone surrogate is written as its escape ({@code \ud800}): JSON allows it,
   * while a WebSocket text frame (UTF-8) cannot carry it raw.
   */
  private static void quote(StringBuilder out, String s) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      boolean pair = Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1));
      if (pair) {
        out.append(c).append(s.charAt(++i));
      } else if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20 || Character.isSurrogate(c)) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    out.append('"');
  }

  private <T> T pick(List<T> values) {
    return values.get(random.nextInt(values.size()));
  }
}
