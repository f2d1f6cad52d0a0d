package parley.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import parley.collab.ot.TextOperation;

/**
 * Every request a client sends in protocol v1 (docs/protocol.md), one record each, already
 * validated: a record exists only if every field passed the rules, so nothing that reaches an
 * entity can make its write fail.
 *
 * <p>Java 17 has no pattern matching over a sealed type in {@code switch}, so each family has
 * a visitor: a handler implements every method of its visitor, and adding a request is a
 * compile error until every handler answers it.
 */
public sealed interface Request {

  /** Requests the connection answers itself. */
  sealed interface Connection extends Request {
    <R> R accept(ConnectionVisitor<R> visitor);
  }

  interface ConnectionVisitor<R> {
    R ping(Ping request);

    R pong(Pong request);

    R resume(Resume request);

    R refresh(Refresh request);
  }

  /** A round trip; answered {@code {"type":"pong","id":…}}. */
  record Ping() implements Connection {
    public <R> R accept(ConnectionVisitor<R> v) {
      return v.ping(this);
    }
  }

  /** The answer to the server's heartbeat ping: no reply, not rate-limited. */
  record Pong() implements Connection {
    public <R> R accept(ConnectionVisitor<R> v) {
      return v.pong(this);
    }
  }

  /** {@code rooms}: the last seq the client has of each room it names; null: none named. */
  record Resume(Map<String, Long> rooms) implements Connection {
    public <R> R accept(ConnectionVisitor<R> v) {
      return v.resume(this);
    }
  }

  /**
   * A new token for the connection's user, sent before the current one expires; the
   * connection then lives until the new token's {@code exp}. The token is checked when it is
   * handled, not here.
   */
  record Refresh(String token) implements Connection {
    public <R> R accept(ConnectionVisitor<R> v) {
      return v.refresh(this);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Chat

  sealed interface Chat extends Request {
    <R> R accept(ChatVisitor<R> visitor);
  }

  interface ChatVisitor<R> {
    R createRoom(CreateRoom r);

    R join(Join r);

    R leave(Leave r);

    R invite(Invite r);

    R removeMember(RemoveMember r);

    R setTopic(SetTopic r);

    R listRooms(ListRooms r);

    R listMembers(ListMembers r);

    R send(Send r);

    R sendDm(SendDm r);

    R edit(Edit r);

    R delete(Delete r);

    R history(History r);

    R markRead(MarkRead r);

    R typing(Typing r);

    R exportRoom(ExportRoom r);
  }

  /** {@code visibility} is {@code public} or {@code private}; {@code topic} may be null. */
  record CreateRoom(String room, String visibility, String topic) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.createRoom(this);
    }
  }

  record Join(String room) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.join(this);
    }
  }

  record Leave(String room) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.leave(this);
    }
  }

  record Invite(String room, String user) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.invite(this);
    }
  }

  record RemoveMember(String room, String user) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.removeMember(this);
    }
  }

  /** {@code ifVersion}: only if the room's settings are still at that version (REST: If-Match). */
  record SetTopic(String room, String topic, Long ifVersion) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.setTopic(this);
    }
  }

  record ListRooms() implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.listRooms(this);
    }
  }

  record ListMembers(String room) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.listMembers(this);
    }
  }

  record Send(String room, String clientMsgId, String body) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.send(this);
    }
  }

  record SendDm(String to, String clientMsgId, String body) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.sendDm(this);
    }
  }

  record Edit(String room, long target, String clientMsgId, String body) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.edit(this);
    }
  }

  record Delete(String room, long target, String clientMsgId) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.delete(this);
    }
  }

  /** {@code before}: null for the newest; {@code limit}: 1–200. */
  record History(String room, Long before, int limit) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.history(this);
    }
  }

  record MarkRead(String room, long seq) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.markRead(this);
    }
  }

  record Typing(String room) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.typing(this);
    }
  }

  /** A member asks for an export of the room's history: a job (docs/jobs.md). */
  record ExportRoom(String room) implements Chat {
    public <R> R accept(ChatVisitor<R> v) {
      return v.exportRoom(this);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Collaborative documents

  sealed interface Doc extends Request {
    String doc();

    <R> R accept(DocVisitor<R> visitor);
  }

  interface DocVisitor<R> {
    R create(DocCreate r);

    R open(DocOpen r);

    R submit(DocSubmit r);

    R ops(DocOps r);

    R cursor(DocCursor r);

    R addEditor(DocAddEditor r);

    R close(DocClose r);
  }

  /** {@code text} defaults to empty, {@code editors} to none, {@code room} may be null. */
  record DocCreate(String doc, String text, List<String> editors, String room) implements Doc {
    public <R> R accept(DocVisitor<R> v) {
      return v.create(this);
    }
  }

  record DocOpen(String doc) implements Doc {
    public <R> R accept(DocVisitor<R> v) {
      return v.open(this);
    }
  }

  record DocSubmit(String doc, String clientOpId, long revision, TextOperation op) implements Doc {
    public <R> R accept(DocVisitor<R> v) {
      return v.submit(this);
    }
  }

  record DocOps(String doc, long revision) implements Doc {
    public <R> R accept(DocVisitor<R> v) {
      return v.ops(this);
    }
  }

  record DocCursor(String doc, long revision, int position, int selectionEnd) implements Doc {
    public <R> R accept(DocVisitor<R> v) {
      return v.cursor(this);
    }
  }

  record DocAddEditor(String doc, String user) implements Doc {
    public <R> R accept(DocVisitor<R> v) {
      return v.addEditor(this);
    }
  }

  record DocClose(String doc) implements Doc {
    public <R> R accept(DocVisitor<R> v) {
      return v.close(this);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Jobs (docs/jobs.md)

  /**
   * Job requests. The codec checks their shape; what depends on the node's job settings (the
   * queue exists, sizes, lease and fetch bounds) is checked by {@code parley.jobs.JobRequests}
   * in the job handler, before any partition is asked, for the WebSocket and REST alike.
   */
  sealed interface Jobs extends Request {
    <R> R accept(JobVisitor<R> visitor);
  }

  interface JobVisitor<R> {
    R submit(JobSubmit r);

    R status(JobStatus r);

    R cancel(JobCancel r);

    R fetch(JobFetch r);

    R extend(JobExtend r);

    R progress(JobProgress r);

    R complete(JobComplete r);

    R fail(JobFail r);
  }

  /**
   * {@code job}: the job's options, the body of {@code POST /v1/queues/{queue}/jobs} (empty
   * when absent); {@code idempotencyKey}: REST's {@code Idempotency-Key}, or null.
   */
  record JobSubmit(String queue, String idempotencyKey, ObjectNode job) implements Jobs {
    public <R> R accept(JobVisitor<R> v) {
      return v.submit(this);
    }
  }

  /** {@code after} (a version) and {@code waitMs}: answered once the job passes that version. */
  record JobStatus(String job, Long after, Long waitMs) implements Jobs {
    public <R> R accept(JobVisitor<R> v) {
      return v.status(this);
    }
  }

  /** {@code ifVersion}: cancel only if the job is still at that version (REST's If-Match). */
  record JobCancel(String job, Long ifVersion) implements Jobs {
    public <R> R accept(JobVisitor<R> v) {
      return v.cancel(this);
    }
  }

  /** A worker's fetch: up to {@code max} jobs, held up to {@code waitMs}, each leased for {@code lease} ms. */
  record JobFetch(String queue, Long max, Long waitMs, Long lease, String worker) implements Jobs {
    public <R> R accept(JobVisitor<R> v) {
      return v.fetch(this);
    }
  }

  record JobExtend(String job, String leaseId, Long lease) implements Jobs {
    public <R> R accept(JobVisitor<R> v) {
      return v.extend(this);
    }
  }

  record JobProgress(String job, String leaseId, JsonNode progress) implements Jobs {
    public <R> R accept(JobVisitor<R> v) {
      return v.progress(this);
    }
  }

  /** {@code result}: any JSON value, or null. */
  record JobComplete(String job, String leaseId, JsonNode result) implements Jobs {
    public <R> R accept(JobVisitor<R> v) {
      return v.complete(this);
    }
  }

  record JobFail(String job, String leaseId, String error) implements Jobs {
    public <R> R accept(JobVisitor<R> v) {
      return v.fail(this);
    }
  }
}
