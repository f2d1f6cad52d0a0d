package parley.protocol;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The one place frames become records and records become frames. Decoding is strict: a frame
 * is one JSON object and nothing after it, with no key twice; every way a request can be bad
 * ends in one {@link ProtocolException} with its code.
 */
public final class Codec {

  /** Reads what clients send: strict JSON. */
  static final ObjectMapper STRICT =
      JsonMapper.builder()
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  /** Writes frames; null fields are left out. Also reads server frames back (tests, specs). */
  public static final ObjectMapper JSON =
      JsonMapper.builder()
          .serializationInclusion(JsonInclude.Include.NON_NULL)
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  /** Request {@code type} → record, in the order docs/protocol.md lists them. */
  public static final Map<String, Class<? extends Request>> REQUESTS;

  /** Push {@code type} → record. */
  public static final Map<String, Class<? extends Push>> PUSHES;

  static {
    Map<String, Class<? extends Request>> requests = new LinkedHashMap<>();
    requests.put("ping", Request.Ping.class);
    requests.put("pong", Request.Pong.class);
    requests.put("resume", Request.Resume.class);
    requests.put("refresh", Request.Refresh.class);
    requests.put("create_room", Request.CreateRoom.class);
    requests.put("join", Request.Join.class);
    requests.put("leave", Request.Leave.class);
    requests.put("invite", Request.Invite.class);
    requests.put("remove_member", Request.RemoveMember.class);
    requests.put("set_topic", Request.SetTopic.class);
    requests.put("list_rooms", Request.ListRooms.class);
    requests.put("list_members", Request.ListMembers.class);
    requests.put("send", Request.Send.class);
    requests.put("send_dm", Request.SendDm.class);
    requests.put("edit", Request.Edit.class);
    requests.put("delete", Request.Delete.class);
    requests.put("history", Request.History.class);
    requests.put("mark_read", Request.MarkRead.class);
    requests.put("typing", Request.Typing.class);
    requests.put("export_room", Request.ExportRoom.class);
    requests.put("doc_create", Request.DocCreate.class);
    requests.put("doc_open", Request.DocOpen.class);
    requests.put("doc_submit", Request.DocSubmit.class);
    requests.put("doc_ops", Request.DocOps.class);
    requests.put("doc_cursor", Request.DocCursor.class);
    requests.put("doc_add_editor", Request.DocAddEditor.class);
    requests.put("doc_close", Request.DocClose.class);
    requests.put("job_submit", Request.JobSubmit.class);
    requests.put("job_status", Request.JobStatus.class);
    requests.put("job_cancel", Request.JobCancel.class);
    requests.put("job_fetch", Request.JobFetch.class);
    requests.put("job_extend", Request.JobExtend.class);
    requests.put("job_progress", Request.JobProgress.class);
    requests.put("job_complete", Request.JobComplete.class);
    requests.put("job_fail", Request.JobFail.class);
    REQUESTS = Collections.unmodifiableMap(requests);

    Map<String, Class<? extends Push>> pushes = new LinkedHashMap<>();
    pushes.put("welcome", Push.Welcome.class);
    pushes.put("ping", Push.Ping.class);
    pushes.put("event", Push.Event.class);
    pushes.put("typing", Push.Typing.class);
    pushes.put("read", Push.Read.class);
    pushes.put("receipt", Push.Receipt.class);
    pushes.put("presence", Push.Presence.class);
    pushes.put("lagged", Push.Lagged.class);
    pushes.put("reload", Push.Reload.class);
    pushes.put("resume_complete", Push.ResumeComplete.class);
    pushes.put("close", Push.Close.class);
    pushes.put("doc_op", Push.DocOp.class);
    pushes.put("doc_cursor", Push.DocCursor.class);
    pushes.put("doc_cursor_removed", Push.DocCursorRemoved.class);
    pushes.put("doc_editors", Push.DocEditors.class);
    pushes.put("doc_resync", Push.DocResync.class);
    pushes.put("job", Push.JobChanged.class);
    pushes.put("jobs_reset", Push.JobsReset.class);
    PUSHES = Collections.unmodifiableMap(pushes);
  }

  private static final Map<Class<?>, String> PUSH_TYPES = new LinkedHashMap<>();

  static {
    PUSHES.forEach((type, record) -> PUSH_TYPES.put(record, type));
  }

  /** A decoded request; {@code id} is null when the client sent none. */
  public record Decoded(String id, Request request) {}

  private final Limits limits;

  /** What the node's settings bound. */
  public record Limits(int maxBodyBytes, int maxTopicBytes) {}

  public Codec(Limits limits) {
    this.limits = limits;
  }

  // ---------------------------------------------------------------------------------------
  // Client → server

  /** One client frame; throws {@link ProtocolException} (with the id, if readable) when bad. */
  public Decoded decode(String frame) {
    JsonNode node;
    try {
      node = STRICT.readTree(frame);
    } catch (JsonProcessingException e) {
      throw new ProtocolException(ErrorCode.BAD_FRAME, "the frame is not one valid JSON object: " + reason(e)).withId(idIn(frame));
    }
    if (node == null || !node.isObject()) {
      throw new ProtocolException(ErrorCode.BAD_FRAME, "a frame must be a JSON object");
    }
    Fields fields = new Fields((ObjectNode) node, limits);
    String id = fields.requestId();
    try {
      return new Decoded(id, request(fields.text("type"), fields));
    } catch (ProtocolException e) {
      throw e.withId(id);
    }
  }

  /** A REST body: one strict JSON object (an empty body is an empty object). */
  public static ObjectNode parseObject(String text) {
    if (text == null || text.isBlank()) {
      return JSON.createObjectNode();
    }
    JsonNode node;
    try {
      node = STRICT.readTree(text);
    } catch (JsonProcessingException e) {
      throw new ProtocolException(ErrorCode.BAD_FRAME, "the body is not one valid JSON object: " + reason(e));
    }
    if (node == null || !node.isObject()) {
      throw new ProtocolException(ErrorCode.BAD_FRAME, "the body must be a JSON object");
    }
    return (ObjectNode) node;
  }

  /** The fields of a request given as an object (REST bodies and paths), {@code type} apart. */
  public Request decode(String type, ObjectNode fields) {
    return request(type, new Fields(fields, limits));
  }

  private static Request request(String type, Fields f) {
    return switch (type) {
      case "ping" -> new Request.Ping();
      case "pong" -> new Request.Pong();
      case "resume" -> new Request.Resume(f.positions("rooms"));
      case "refresh" -> new Request.Refresh(f.token());
      case "create_room" -> new Request.CreateRoom(f.room(), f.visibility(), f.topic(false));
      case "join" -> new Request.Join(f.room());
      case "leave" -> new Request.Leave(f.room());
      case "invite" -> new Request.Invite(f.room(), f.user("user"));
      case "remove_member" -> new Request.RemoveMember(f.room(), f.user("user"));
      case "set_topic" -> new Request.SetTopic(f.room(), f.topic(true), f.optionalNumber("ifVersion"));
      case "list_rooms" -> new Request.ListRooms();
      case "list_members" -> new Request.ListMembers(f.room());
      case "send" -> new Request.Send(f.room(), f.clientId("clientMsgId"), f.body());
      case "send_dm" -> new Request.SendDm(f.user("to"), f.clientId("clientMsgId"), f.body());
      case "edit" -> new Request.Edit(f.room(), f.seq("target"), f.clientId("clientMsgId"), f.body());
      case "delete" -> new Request.Delete(f.room(), f.seq("target"), f.clientId("clientMsgId"));
      case "history" -> new Request.History(f.room(), f.optionalSeq("before"), f.limit("limit", 1, 200, 50));
      case "mark_read" -> new Request.MarkRead(f.room(), f.seq("seq"));
      case "typing" -> new Request.Typing(f.room());
      case "export_room" -> new Request.ExportRoom(f.room());
      case "doc_create" -> new Request.DocCreate(f.doc(), f.documentText(), f.editors(), f.optionalRoom());
      case "doc_open" -> new Request.DocOpen(f.doc());
      case "doc_submit" -> new Request.DocSubmit(f.doc(), f.clientId("clientOpId"), f.revision("revision"), f.operation());
      case "doc_ops" -> new Request.DocOps(f.doc(), f.revision("revision"));
      case "doc_cursor" -> {
        String doc = f.doc();
        long revision = f.revision("revision");
        int position = f.index("position");
        yield new Request.DocCursor(doc, revision, position, f.has("selectionEnd") ? f.index("selectionEnd") : position);
      }
      case "doc_add_editor" -> new Request.DocAddEditor(f.doc(), f.user("user"));
      case "doc_close" -> new Request.DocClose(f.doc());
      case "job_submit" -> new Request.JobSubmit(f.queue(), f.optionalText("idempotencyKey"), f.object("job"));
      case "job_status" -> new Request.JobStatus(f.jobId(), f.optionalNumber("after"), f.optionalNumber("waitMs"));
      case "job_cancel" -> new Request.JobCancel(f.jobId(), f.optionalNumber("ifVersion"));
      case "job_fetch" -> new Request.JobFetch(
          f.queue(), f.optionalNumber("max"), f.optionalNumber("waitMs"), f.optionalNumber("lease"), f.optionalText("worker"));
      case "job_extend" -> new Request.JobExtend(f.jobId(), f.text("leaseId"), f.optionalNumber("lease"));
      case "job_progress" -> new Request.JobProgress(f.jobId(), f.text("leaseId"), f.value("progress"));
      case "job_complete" -> new Request.JobComplete(f.jobId(), f.text("leaseId"), f.value("result"));
      case "job_fail" -> new Request.JobFail(f.jobId(), f.text("leaseId"), f.text("error"));
      default -> throw new ProtocolException(ErrorCode.UNKNOWN_TYPE, "unknown request type '" + type + "'");
    };
  }

  private static String reason(JsonProcessingException e) {
    String message = e.getOriginalMessage();
    String line = message == null ? "unreadable" : message.lines().findFirst().orElse("unreadable");
    int detail = line.indexOf(" (");
    return detail > 0 ? line.substring(0, detail) : line;
  }

  private static final Pattern REQUEST_ID = Pattern.compile("\"id\"\\s*:\\s*\"([!-~&&[^\"]]{1,64})\"");

  /**
   * The request id in the text of a frame that could not be read whole (too large, or not
   * strict JSON), so its error still answers the request: the first {@code "id":"…"} found.
   */
  public static String idIn(String text) {
    Matcher id = REQUEST_ID.matcher(text);
    return id.find() ? id.group(1) : null;
  }

  // ---------------------------------------------------------------------------------------
  // Server → client

  /**
   * The most one reply may weigh as a frame or a REST body, in UTF-8 bytes. Pushes stay far
   * below it by construction (a message body, an operation and a frame a client sends are
   * bounded); replies that gather many things (history, doc_open, list_rooms) are bounded by
   * their own limits too, and this is the backstop: a reply over it is answered
   * {@code frame_too_large} instead, and the client asks for less (docs/protocol.md).
   */
  public static final int MAX_REPLY_BYTES = 4 << 20;

  /** The refusal that takes the place of a reply whose encoding is {@code text}, if over {@link #MAX_REPLY_BYTES}. */
  public static Optional<Reply.Failure> oversized(String text) {
    // Three UTF-8 bytes a char at most: most texts are known to fit without counting.
    if ((long) text.length() * 3 <= MAX_REPLY_BYTES) {
      return Optional.empty();
    }
    int bytes = text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
    return bytes <= MAX_REPLY_BYTES
        ? Optional.empty()
        : Optional.of(Reply.Failure.of(
            ErrorCode.FRAME_TOO_LARGE,
            "the answer would be " + bytes + " bytes, over the " + MAX_REPLY_BYTES + "-byte limit of a reply; ask for less"));
  }

  /** The frame of a reply to request {@code id} (null: the client gave none, and none is echoed). */
  public static String reply(String id, Reply reply) {
    ObjectNode node = JSON.createObjectNode();
    if (reply instanceof Reply.Failure failure) {
      node.put("type", "error");
      putId(node, id);
      node.put("code", failure.code().wire());
      node.put("message", failure.message());
      if (failure.jobId() != null) {
        node.put("jobId", failure.jobId());
      }
      if (failure.retryAfter() != null) {
        node.put("retryAfter", failure.retryAfter().toSeconds());
      }
      return write(node);
    }
    String head = reply instanceof Reply.Pong ? "{\"type\":\"pong\"" : "{\"type\":\"ok\"";
    String frame = withFieldsOf(id == null ? head : head + ",\"id\":" + writeValue(id), reply);
    return oversized(frame).map(refusal -> reply(id, refusal)).orElse(frame);
  }

  /** A REST answer: the reply's fields alone, or the error without an id. */
  public static String restBody(Reply reply) {
    if (reply instanceof Reply.Failure) {
      return reply(null, reply);
    }
    return write(JSON.valueToTree(reply));
  }

  public static String error(String id, ErrorCode code, String message) {
    return reply(id, Reply.Failure.of(code, message));
  }

  /** The push as one JSON object, {@code type} first. */
  public static String push(Push push) {
    return withFieldsOf("{\"type\":\"" + typeOf(push) + "\"", push);
  }

  /**
   * {@code head}, the start of a JSON object (its first fields, no closing brace), then the
   * fields of {@code record}: the record's own JSON with the head spliced in at its start, in
   * one pass. Building a tree of the head's fields and copying the record's into it took three,
   * on every acknowledgement, each session's welcome and {@code resume_complete}, and every
   * typing notice once per session that gets it. No reply or push record has a field named
   * {@code type} or {@code id}.
   */
  private static String withFieldsOf(String head, Object record) {
    String fields = writeValue(record);
    return fields.length() == 2 ? head + "}" : head + "," + fields.substring(1);
  }

  private static String writeValue(Object value) {
    try {
      return JSON.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  public static String typeOf(Push push) {
    return PUSH_TYPES.get(push.getClass());
  }

  /** Reads a push this server wrote (tests, the spec check). */
  public static Push readPush(String frame) {
    try {
      ObjectNode node = (ObjectNode) JSON.readTree(frame);
      Class<? extends Push> type = PUSHES.get(node.path("type").asText());
      if (type == null) {
        throw new IllegalArgumentException("not a push: " + frame);
      }
      node.remove("type");
      return JSON.treeToValue(node, type);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(e);
    }
  }

  private static void putId(ObjectNode node, String id) {
    if (id != null) {
      node.put("id", id);
    }
  }

  static String write(JsonNode node) {
    try {
      return JSON.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
