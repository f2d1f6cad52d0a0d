package parley.protocol;

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

  record SetTopic(String room, String topic) implements Chat {
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
}
