package parley.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import parley.collab.ot.TextOperation;

/**
 * The answer to one request. Over the WebSocket, SSE's and long-poll's REST side alike: a
 * success is {@code {"type":"ok","id":…}} plus the record's fields (REST answers the fields
 * alone), a {@link Failure} is {@code {"type":"error","id":…,"code":…,"message":…}} (REST: the
 * code's HTTP status). Null fields are left out.
 */
public sealed interface Reply {

  /**
   * A refused request. {@code jobId} names the job a refusal is about (docs/protocol.md, Jobs);
   * null otherwise. {@code retryAfter}, when not null, is how long to wait before trying again:
   * it is the error's {@code retryAfter} (whole seconds), and REST also answers it as {@code Retry-After}.
   */
  record Failure(ErrorCode code, String message, String jobId, Duration retryAfter) implements Reply {
    public Failure(ErrorCode code, String message, String jobId) {
      this(code, message, jobId, null);
    }

    public static Failure of(ErrorCode code, String message) {
      return new Failure(code, message, null, null);
    }

    /** Refused for now: {@code message} gets "; retry after N s", N whole seconds and at least one. */
    public static Failure retryAfter(ErrorCode code, Duration wait, String message) {
      Duration seconds = Duration.ofSeconds(Math.max(1, (wait.toMillis() + 999) / 1000));
      return new Failure(code, message + "; retry after " + seconds.toSeconds() + " s", null, seconds);
    }
  }

  /** The answer to {@code ping}, typed {@code pong}. */
  record Pong() implements Reply {}

  /**
   * The answer to {@code refresh}: the connection now lives until the new token expires,
   * {@code tokenExpiresIn} milliseconds from now.
   */
  record Refreshed(long tokenExpiresIn) implements Reply {}

  /** Accepted, nothing to say: {@code typing} (no frame on the WebSocket; 204 over REST). */
  record Accepted() implements Reply {}

  /**
   * A write to a room: {@code seq} is its timeline position. {@code ts}, {@code clientMsgId}
   * and {@code duplicate} come with messages, edits and deletions.
   */
  record Written(String room, long seq, String ts, String clientMsgId, Boolean duplicate) implements Reply {}

  /** {@code send_dm}: {@code delivered} says whether the recipient had a live session. */
  record DirectWritten(String room, long seq, String ts, String clientMsgId, boolean delivered, boolean duplicate)
      implements Reply {}

  record RoomList(List<RoomEntry> rooms) implements Reply {}

  /** {@code lastSeq}, {@code unread}, {@code direct} are absent if the room did not answer. */
  record RoomEntry(String room, long readSeq, Long lastSeq, Long unread, Boolean direct, String topic) {}

  /** {@code settingsVersion}: what {@code set_topic}'s {@code ifVersion} (REST: If-Match) names. */
  record Members(String room, String visibility, String topic, long lastSeq, long settingsVersion, List<Member> members) implements Reply {}

  /**
   * {@code online} and {@code lastSeen} (null for a user never connected) are there for rooms
   * of up to {@code parley.chat.presence-list-limit} members.
   */
  record Member(String user, String role, Boolean online, String lastSeen) {}

  record History(String room, List<Push.Event> events, boolean hasMore) implements Reply {}

  /** The position each room resumes after. */
  /**
   * {@code resume}: the position each room resumes after. {@code pending} (true, else absent):
   * the user's room list could not be read in time, so only the rooms named resumed for now;
   * {@link Push.ResumeComplete} follows once the list is read.
   */
  record Resumed(Map<String, Long> rooms, Boolean pending) implements Reply {}

  record MarkedRead(String room, long readSeq, long unread) implements Reply {}

  /**
   * {@code export_room}: the export's job ({@code job}, as {@code GET /v1/jobs/{id}} shows it),
   * followed by {@code job} pushes; its result streams from {@code GET /v1/jobs/{jobId}/result}.
   */
  record ExportStarted(String room, String jobId, com.fasterxml.jackson.databind.JsonNode job) implements Reply {}

  record DocCreated(String doc, long revision, String room) implements Reply {}

  record DocOpened(
      String doc,
      String text,
      long revision,
      String owner,
      String room,
      List<String> editors,
      List<CursorEntry> cursors)
      implements Reply {}

  record CursorEntry(String user, String session, int position, int selectionEnd) {}

  record DocSubmitted(String doc, long revision, String clientOpId) implements Reply {}

  record DocOpsPage(String doc, long fromRevision, long revision, List<OpEntry> ops) implements Reply {}

  record OpEntry(long revision, TextOperation op, String author, String clientOpId) {}

  record DocEditors(String doc, String owner, List<String> editors) implements Reply {}

  /** {@code doc_cursor} and {@code doc_close}: the frame was taken. */
  record DocDone(String doc) implements Reply {}

  /**
   * A job as it now is (docs/jobs.md), with the lease for its worker; {@code duplicate} is true
   * when a {@code job_submit} repeated an earlier one's {@code idempotencyKey}.
   */
  record JobState(JsonNode job, Boolean duplicate) implements Reply {}

  /** {@code job_fetch}: the jobs leased to the worker, each with its {@code leaseId} and {@code leaseUntil}. */
  record JobsLeased(List<JsonNode> jobs) implements Reply {}
}
