package parley.protocol;

import java.util.List;
import java.util.Map;
import parley.collab.ot.TextOperation;

/**
 * Every frame the server sends of its own accord: timeline events, ephemeral pushes,
 * document pushes and connection notices. The wire {@code type} of each is in {@link Codec}.
 * Null fields are left out.
 */
public sealed interface Push {

  /**
   * The first frame of a connection; the heartbeat fields only where the client must answer.
   * {@code tokenExpiresIn}: milliseconds until the connection's token expires (refresh before).
   */
  record Welcome(
      String user, String session, String node, int protocol, Long pingInterval, Long pingTimeout, Long tokenExpiresIn)
      implements Push {}

  /** The server's heartbeat: answer {@code {"type":"pong"}}. */
  record Ping() implements Push {}

  /** One timeline event of a room ({@code kind} says which; docs/protocol.md, Pushes). */
  record Event(
      String room,
      long seq,
      String ts,
      String kind,
      String user,
      String by,
      String clientMsgId,
      String body,
      Long target,
      String topic,
      String visibility,
      Boolean edited,
      Boolean deleted)
      implements Push {}

  record Typing(String room, String user) implements Push {}

  record Read(String room, String user, long seq) implements Push {}

  record Receipt(String room, long seq, String user, String status) implements Push {}

  record Presence(String user, String status, String lastSeen) implements Push {}

  /** The client read too slowly; delivery continues by itself after these positions. */
  record Lagged(Map<String, Long> rooms) implements Push {}

  /** After a {@code pending} resume: the user's room list was read; every room followed now. */
  record ResumeComplete(Map<String, Long> rooms) implements Push {}

  /** The client's position in {@code room} was unusable; the room is sent again from seq 1. */
  record Reload(String room, String code, String message) implements Push {}

  /** The last frame of a connection the server ends (1012, 1008, 4401, 4408, 4429). */
  record Close(int code, String reason) implements Push {}

  record DocOp(String doc, long revision, TextOperation op, String author, String clientOpId) implements Push {}

  record DocCursor(String doc, String user, String session, long revision, int position, int selectionEnd)
      implements Push {}

  record DocCursorRemoved(String doc, String user, String session) implements Push {}

  record DocEditors(String doc, String owner, List<String> editors) implements Push {}

  record DocResync(String doc, String code, String message) implements Push {}

  /** One of the user's jobs changed: the job as it became (docs/jobs.md), in version order. */
  record JobChanged(com.fasterxml.jackson.databind.JsonNode job) implements Push {}

  /**
   * SSE and long-poll: the job pushes after the client's cursor are not all known any more (the
   * user's entity restarted, or more jobs changed than it keeps); re-read the jobs you follow.
   */
  record JobsReset(String code, String message) implements Push {}
}
