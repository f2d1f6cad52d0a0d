package parley.transport;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import parley.auth.UserIds;
import parley.chat.Ids;
import parley.collab.document.DocumentEntity;
import parley.collab.ot.InvalidOperationException;
import parley.collab.ot.TextOperation;

/**
 * The collaborative-editing part of a {@link Session}: {@code doc_*} requests become
 * DocumentEntity commands, and the document's pushes become {@code doc_*} frames.
 *
 * <p>For every document open on the connection it sends each revision exactly once and in
 * order, after the {@code ok} of {@code doc_open}: someone else's operation as a
 * {@code doc_op} push, an operation submitted on this connection as the {@code ok} of its
 * {@code doc_submit}. That is the stream an OT client expects (ot.js's model). The entity's
 * replies and pushes reach the session on different paths, so an acknowledgement that comes
 * ahead of the revisions before it waits for them, and a revision that jumps (a push lost
 * while the document moved or restarted) is fetched from the document first (design rule 6).
 * While the client lags (its outbound buffer is full) nothing is delivered; afterwards delivery
 * continues from the document after what was delivered (design rule 8).
 */
final class DocumentRequests {

  /** The most pushes held for one document while its opening or a fetch is under way. */
  private static final int MAX_WAITING = 1000;

  /** Where an open document's delivery stands on this connection. */
  private static final class OpenDocument {
    /** False until the entity answered the subscription: {@link #delivered} is not yet known. */
    boolean opened;
    /** Every revision up to this one was sent to the client. */
    long delivered;
    /** The newest revision known to exist. */
    long head;
    boolean fetching;
    final TreeMap<Long, DocumentEntity.OpApplied> waiting = new TreeMap<>();
    /**
     * Submissions made on this connection whose ok has not gone out: request ids by
     * clientOpId. Their revision goes out as their ok, wherever it comes from.
     */
    final Map<String, List<String>> unanswered = new HashMap<>();
  }

  private final Session session;
  private final Map<String, OpenDocument> open = new HashMap<>();
  /** A delivery found the client lagging: deliver nothing until the session says it caught up. */
  private boolean paused;

  DocumentRequests(Session session) {
    this.session = session;
  }

  void handle(String type, String id, JsonNode f) {
    String doc = docId(f);
    switch (type) {
      case "doc_create" -> create(id, doc, f);
      case "doc_open" -> open(id, doc);
      case "doc_submit" -> submit(id, doc, f);
      case "doc_ops" -> ops(id, doc, revision(f, "revision"));
      case "doc_cursor" -> cursor(id, doc, f);
      case "doc_add_editor" -> addEditor(id, doc, userField(f, "user"));
      case "doc_close" -> {
        if (open.remove(doc) != null) {
          entity(doc).tell(new DocumentEntity.Unsubscribe(session.documentPushes()));
        }
        session.send(Frames.write(withDoc(Frames.ok(id), doc)));
      }
      default -> throw new Session.BadRequest("unknown_type", "unknown request type '" + type + "'");
    }
  }

  /** Subscriptions live in the documents' memory: renew them, so a moved document knows us. */
  void renew() {
    open.forEach((doc, state) -> {
      if (state.opened) {
        resubscribe(doc, state);
      }
    });
  }

  /** The lagging client has drained its buffer: continue after what was delivered. */
  void resumeAfterLag() {
    paused = false;
    open.forEach((doc, state) -> {
      state.waiting.clear();
      if (state.opened && state.delivered < state.head && !state.fetching) {
        fetch(doc, state);
      }
    });
  }

  // ---------------------------------------------------------------------------------------
  // Requests

  private void create(String id, String doc, JsonNode f) {
    String text = Session.optionalText(f, "text");
    List<String> editors = editors(f);
    String room = room(f);
    session.ask(entity(doc), r -> new DocumentEntity.Create(session.userId(), text, editors, room, r), DocumentEntity.CreateReply.class, id, reply -> {
      if (reply instanceof DocumentEntity.Created created) {
        ObjectNode ok = withDoc(Frames.ok(id), doc);
        ok.put("revision", created.revision());
        if (room != null) {
          ok.put("room", room);
        }
        session.send(Frames.write(ok));
      } else {
        reject(id, (DocumentEntity.Rejected) reply);
      }
    });
  }

  private void open(String id, String doc) {
    // Opening again starts delivery afresh from the revision of the new ok.
    OpenDocument state = new OpenDocument();
    open.put(doc, state);
    session.ask(entity(doc), this::subscribe, DocumentEntity.OpenReply.class, id, reply -> {
      if (reply instanceof DocumentEntity.Rejected rejected) {
        open.remove(doc, state);
        reject(id, rejected);
        return;
      }
      DocumentEntity.Opened opened = (DocumentEntity.Opened) reply;
      if (open.get(doc) != state) {
        // A later doc_open or doc_close overtook this one; its answer still goes out.
        session.send(Frames.write(opened(id, opened)));
        return;
      }
      state.opened = true;
      state.delivered = opened.revision();
      state.head = Math.max(state.head, opened.revision());
      session.send(Frames.write(opened(id, opened)));
      drain(doc, state);
    }, () -> open.remove(doc, state));
  }

  private void submit(String id, String doc, JsonNode f) {
    String clientOpId = Session.text(f, "clientOpId");
    if (!Ids.isClientId(clientOpId)) {
      throw new Session.BadRequest("bad_field", "clientOpId must be 1-64 printable characters");
    }
    long base = revision(f, "revision");
    TextOperation op = operation(f);
    OpenDocument tracked = open.get(doc);
    if (tracked != null) {
      tracked.unanswered.computeIfAbsent(clientOpId, k -> new ArrayList<>()).add(id);
    }
    session.ask(entity(doc), r -> new DocumentEntity.Submit(session.userId(), clientOpId, base, op, r), DocumentEntity.SubmitReply.class, id, reply -> {
      OpenDocument state = open.get(doc) == tracked ? tracked : null;
      if (state != null && !unanswered(state, clientOpId, id)) {
        // Its revision went out as this ok already.
        return;
      }
      if (reply instanceof DocumentEntity.Rejected rejected) {
        answered(state, clientOpId, id);
        reject(id, rejected);
        return;
      }
      long revision = ((DocumentEntity.Acked) reply).revision();
      if (state == null || !state.opened || revision <= state.delivered) {
        // Not followed here, or an earlier revision (the retry of an applied operation).
        answered(state, clientOpId, id);
        session.send(acked(id, doc, revision, clientOpId));
      } else if (revision == state.delivered + 1 && !state.fetching && !paused) {
        state.head = Math.max(state.head, revision);
        if (!sent(acked(id, doc, revision, clientOpId))) {
          // Fetched and answered in its turn once the client has caught up.
          return;
        }
        answered(state, clientOpId, id);
        state.delivered = revision;
        drain(doc, state);
      } else {
        // Revisions before this one are still on their way: the ok goes out in its turn.
        state.head = Math.max(state.head, revision);
      }
    }, () -> {
      if (open.get(doc) == tracked) {
        answered(tracked, clientOpId, id);
      }
    });
  }

  private static boolean unanswered(OpenDocument state, String clientOpId, String id) {
    List<String> ids = state.unanswered.get(clientOpId);
    return ids != null && ids.contains(id);
  }

  private static void answered(OpenDocument state, String clientOpId, String id) {
    if (state != null) {
      List<String> ids = state.unanswered.get(clientOpId);
      if (ids != null && ids.remove(id) && ids.isEmpty()) {
        state.unanswered.remove(clientOpId);
      }
    }
  }

  private static String acked(String id, String doc, long revision, String clientOpId) {
    ObjectNode ok = withDoc(Frames.ok(id), doc);
    ok.put("revision", revision);
    ok.put("clientOpId", clientOpId);
    return Frames.write(ok);
  }

  private void ops(String id, String doc, long from) {
    session.ask(entity(doc), r -> new DocumentEntity.GetOps(session.userId(), from, r), DocumentEntity.GetOpsReply.class, id, reply -> {
      if (reply instanceof DocumentEntity.Rejected rejected) {
        reject(id, rejected);
        return;
      }
      DocumentEntity.Ops ops = (DocumentEntity.Ops) reply;
      ObjectNode ok = withDoc(Frames.ok(id), doc);
      ok.put("fromRevision", ops.fromRevision());
      ok.put("revision", ops.revision());
      ArrayNode array = ok.putArray("ops");
      for (DocumentEntity.HistoryEntry entry : ops.ops()) {
        ObjectNode op = array.addObject();
        op.put("revision", entry.revision());
        op.set("op", Frames.JSON.valueToTree(entry.op()));
        op.put("author", entry.author());
        op.put("clientOpId", entry.clientOpId());
      }
      session.send(Frames.write(ok));
    });
  }

  private void cursor(String id, String doc, JsonNode f) {
    long revision = revision(f, "revision");
    int position = index(f, "position");
    int selectionEnd = f.hasNonNull("selectionEnd") ? index(f, "selectionEnd") : position;
    // Ephemeral: the document drops a cursor of a session that has not opened it, or of a
    // revision it no longer retains; the ok only says the frame was well formed.
    entity(doc).tell(new DocumentEntity.UpdateCursor(session.userId(), session.sessionId(), revision, position, selectionEnd));
    session.send(Frames.write(withDoc(Frames.ok(id), doc)));
  }

  private void addEditor(String id, String doc, String editor) {
    session.ask(entity(doc), r -> new DocumentEntity.AddEditor(session.userId(), editor, r), DocumentEntity.AddEditorReply.class, id, reply -> {
      if (reply instanceof DocumentEntity.Editors editors) {
        ObjectNode ok = withDoc(Frames.ok(id), doc);
        ok.put("owner", editors.owner());
        editors.editors().forEach(ok.putArray("editors")::add);
        session.send(Frames.write(ok));
      } else {
        reject(id, (DocumentEntity.Rejected) reply);
      }
    });
  }

  // ---------------------------------------------------------------------------------------
  // Pushes

  void onPush(DocumentEntity.Push push) {
    if (push instanceof DocumentEntity.OpApplied applied) {
      OpenDocument state = open.get(applied.docId());
      if (state != null) {
        offer(applied.docId(), state, applied);
      }
    } else if (push instanceof DocumentEntity.CursorMoved moved) {
      OpenDocument state = open.get(moved.docId());
      // A cursor is meaningful only at the revision the client has: drop it otherwise, the
      // next move comes soon enough.
      if (state != null && inStep(state) && moved.revision() == state.delivered && !isOwn(moved.sessionId())) {
        ObjectNode frame = push("doc_cursor", moved.docId());
        frame.put("user", moved.userId());
        frame.put("session", moved.sessionId());
        frame.put("revision", moved.revision());
        frame.put("position", moved.position());
        frame.put("selectionEnd", moved.selectionEnd());
        session.send(Frames.write(frame));
      }
    } else if (push instanceof DocumentEntity.CursorRemoved removed) {
      OpenDocument state = open.get(removed.docId());
      if (state != null && state.opened && !isOwn(removed.sessionId())) {
        ObjectNode frame = push("doc_cursor_removed", removed.docId());
        frame.put("user", removed.userId());
        frame.put("session", removed.sessionId());
        session.send(Frames.write(frame));
      }
    } else if (push instanceof DocumentEntity.EditorsChanged changed) {
      if (open.containsKey(changed.docId())) {
        ObjectNode frame = push("doc_editors", changed.docId());
        frame.put("owner", changed.owner());
        changed.editors().forEach(frame.putArray("editors")::add);
        session.send(Frames.write(frame));
      }
    } else if (push instanceof DocumentEntity.DocumentClosed closed) {
      OpenDocument state = open.get(closed.docId());
      if (state != null && state.opened) {
        // The entity stopped or moved: subscribe again so pushes keep coming.
        resubscribe(closed.docId(), state);
      }
    }
  }

  /** Sends {@code applied} if it is the next revision, else keeps it and heals the gap. */
  private void offer(String doc, OpenDocument state, DocumentEntity.OpApplied applied) {
    if (state.opened && applied.revision() <= state.delivered) {
      return;
    }
    state.head = Math.max(state.head, applied.revision());
    if (paused) {
      return;
    }
    if (inStep(state) && applied.revision() == state.delivered + 1) {
      deliver(state, applied);
      return;
    }
    if (state.waiting.size() < MAX_WAITING) {
      state.waiting.put(applied.revision(), applied);
    }
    if (state.opened && !state.fetching) {
      drain(doc, state);
    }
  }

  /** Sends the next revision; false (and nothing changes) if the client lags. */
  private boolean deliver(OpenDocument state, DocumentEntity.OpApplied applied) {
    List<String> ids = session.userId().equals(applied.author()) ? state.unanswered.get(applied.clientOpId()) : null;
    if (ids != null) {
      if (!sent(acked(ids.get(0), applied.docId(), applied.revision(), applied.clientOpId()))) {
        return false;
      }
      // Retries of the same operation on this connection are answered alike.
      ids.subList(1, ids.size()).forEach(id -> session.send(acked(id, applied.docId(), applied.revision(), applied.clientOpId())));
      state.unanswered.remove(applied.clientOpId());
    } else {
      ObjectNode frame = push("doc_op", applied.docId());
      frame.put("revision", applied.revision());
      frame.set("op", Frames.JSON.valueToTree(applied.op()));
      frame.put("author", applied.author());
      frame.put("clientOpId", applied.clientOpId());
      if (!sent(Frames.write(frame))) {
        return false;
      }
    }
    state.delivered = applied.revision();
    return true;
  }

  private boolean sent(String frame) {
    paused = paused || !session.send(frame);
    return !paused;
  }

  /** Delivers what waited and is now next; fetches from the document if a revision is missing. */
  private void drain(String doc, OpenDocument state) {
    while (!paused && !state.waiting.isEmpty() && state.waiting.firstKey() <= state.delivered + 1) {
      DocumentEntity.OpApplied next = state.waiting.pollFirstEntry().getValue();
      if (next.revision() == state.delivered + 1 && !deliver(state, next)) {
        return;
      }
    }
    if (!paused && state.delivered < state.head && !state.fetching) {
      fetch(doc, state);
    }
  }

  /** Reads the operations after what was delivered from the document's retained window. */
  private void fetch(String doc, OpenDocument state) {
    state.fetching = true;
    long from = state.delivered;
    session.ask(entity(doc), r -> new DocumentEntity.GetOps(session.userId(), from, r), DocumentEntity.GetOpsReply.class, null, reply -> {
      if (open.get(doc) != state) {
        return;
      }
      state.fetching = false;
      if (reply instanceof DocumentEntity.Rejected rejected) {
        if (!DocumentEntity.UNAVAILABLE.equals(rejected.code())) {
          // Too far behind (or no longer allowed): the client must open the document again.
          giveUp(doc, state, rejected);
        }
        return;
      }
      DocumentEntity.Ops ops = (DocumentEntity.Ops) reply;
      state.head = Math.max(state.head, ops.revision());
      for (DocumentEntity.HistoryEntry entry : ops.ops()) {
        if (entry.revision() == state.delivered + 1
            && !deliver(state, new DocumentEntity.OpApplied(doc, entry.revision(), entry.op(), entry.author(), entry.clientOpId()))) {
          return;
        }
      }
      if (!ops.ops().isEmpty()) {
        drain(doc, state);
      }
    }, () -> {
      // Tried again on the next push, renewal or catching up after a lag.
      if (open.get(doc) == state) {
        state.fetching = false;
      }
    });
  }

  private void resubscribe(String doc, OpenDocument state) {
    session.ask(entity(doc), this::subscribe, DocumentEntity.OpenReply.class, null, reply -> {
      if (open.get(doc) != state) {
        return;
      }
      if (reply instanceof DocumentEntity.Opened opened) {
        state.head = Math.max(state.head, opened.revision());
        if (!paused && state.delivered < state.head && !state.fetching) {
          fetch(doc, state);
        }
      } else if (!DocumentEntity.UNAVAILABLE.equals(((DocumentEntity.Rejected) reply).code())) {
        // No longer allowed (left the document's room) or gone; unavailable is tried again
        // at the next renewal.
        giveUp(doc, state, (DocumentEntity.Rejected) reply);
      }
    });
  }

  /** Stops following a document the session cannot keep in step, and tells the client so. */
  private void giveUp(String doc, OpenDocument state, DocumentEntity.Rejected why) {
    open.remove(doc);
    entity(doc).tell(new DocumentEntity.Unsubscribe(session.documentPushes()));
    ObjectNode frame = push("doc_resync", doc);
    frame.put("code", code(why));
    frame.put("message", why.message());
    session.send(Frames.write(frame));
  }

  private static boolean inStep(OpenDocument state) {
    return state.opened && !state.fetching && state.waiting.isEmpty();
  }

  private boolean isOwn(String sessionId) {
    return session.sessionId().equals(sessionId);
  }

  // ---------------------------------------------------------------------------------------
  // Frames

  private DocumentEntity.Subscribe subscribe(ActorRef<DocumentEntity.OpenReply> replyTo) {
    return new DocumentEntity.Subscribe(session.userId(), session.sessionId(), session.documentPushes(), replyTo);
  }

  private ObjectNode opened(String id, DocumentEntity.Opened opened) {
    ObjectNode ok = withDoc(Frames.ok(id), opened.docId());
    ok.put("text", opened.text());
    ok.put("revision", opened.revision());
    ok.put("owner", opened.owner());
    if (opened.room() != null) {
      ok.put("room", opened.room());
    }
    opened.editors().forEach(ok.putArray("editors")::add);
    ArrayNode cursors = ok.putArray("cursors");
    for (DocumentEntity.Cursor cursor : opened.cursors()) {
      if (!isOwn(cursor.sessionId())) {
        cursors.addObject()
            .put("user", cursor.userId())
            .put("session", cursor.sessionId())
            .put("position", cursor.position())
            .put("selectionEnd", cursor.selectionEnd());
      }
    }
    return ok;
  }

  private static ObjectNode push(String type, String doc) {
    ObjectNode frame = Frames.JSON.createObjectNode();
    frame.put("type", type);
    frame.put("doc", doc);
    return frame;
  }

  private static ObjectNode withDoc(ObjectNode node, String doc) {
    node.put("doc", doc);
    return node;
  }

  private void reject(String id, DocumentEntity.Rejected rejected) {
    session.send(Frames.error(id, code(rejected), rejected.message()));
  }

  /** The wire code of a refusal: the entity's own, named like the chat codes where they differ. */
  private static String code(DocumentEntity.Rejected rejected) {
    return switch (rejected.code()) {
      case DocumentEntity.NOT_FOUND -> "doc_not_found";
      case DocumentEntity.ALREADY_EXISTS -> "doc_exists";
      case DocumentEntity.BAD_REQUEST -> "bad_field";
      default -> rejected.code();
    };
  }

  // ---------------------------------------------------------------------------------------
  // Fields

  private static TextOperation operation(JsonNode f) {
    JsonNode op = f.get("op");
    if (op == null || op.isNull()) {
      throw new Session.BadRequest("missing_field", "missing field 'op'");
    }
    if (!op.isArray()) {
      throw new Session.BadRequest(InvalidOperationException.BAD_OPERATION, "op must be an array such as [3, \"hi\", -2]");
    }
    try {
      return Frames.JSON.treeToValue(op, TextOperation.class);
    } catch (Exception e) {
      if (e.getCause() instanceof InvalidOperationException invalid) {
        throw new Session.BadRequest(invalid.code(), invalid.getMessage());
      }
      throw new Session.BadRequest(InvalidOperationException.BAD_OPERATION, "op is not a valid operation");
    }
  }

  private static long revision(JsonNode f, String field) {
    long revision = Session.longField(f, field);
    if (revision < 0) {
      throw new Session.BadRequest("bad_revision", "field '" + field + "' must be a revision >= 0");
    }
    return revision;
  }

  private static int index(JsonNode f, String field) {
    long index = Session.longField(f, field);
    if (index < 0 || index > Integer.MAX_VALUE) {
      throw new Session.BadRequest("bad_field", "field '" + field + "' must be a position in the text, >= 0");
    }
    return (int) index;
  }

  private static List<String> editors(JsonNode f) {
    JsonNode given = f.get("editors");
    if (given == null || given.isNull()) {
      return List.of();
    }
    if (!given.isArray()) {
      throw new Session.BadRequest("bad_field", "editors must be an array of user ids");
    }
    List<String> editors = new ArrayList<>();
    for (JsonNode editor : given) {
      if (!editor.isTextual() || !UserIds.isValid(editor.asText())) {
        throw new Session.BadRequest("bad_user_id", "editors are user ids: " + UserIds.RULE);
      }
      editors.add(editor.asText());
    }
    return editors;
  }

  /** The owning room of a new document, if it names one. */
  private static String room(JsonNode f) {
    return f.hasNonNull("room") ? Session.roomId(f) : null;
  }

  private static String userField(JsonNode f, String field) {
    String user = Session.text(f, field);
    if (!UserIds.isValid(user)) {
      throw new Session.BadRequest("bad_user_id", "user ids are " + UserIds.RULE);
    }
    return user;
  }

  private static String docId(JsonNode f) {
    String doc = Session.text(f, "doc");
    if (!Ids.isRoomId(doc) || Ids.isDirectRoom(doc)) {
      throw new Session.BadRequest("bad_doc_id", "document ids are 1 to 64 characters of A-Z a-z 0-9 _ . -");
    }
    return doc;
  }

  private EntityRef<DocumentEntity.Command> entity(String doc) {
    return session.sharding().entityRefFor(DocumentEntity.ENTITY_KEY, doc);
  }
}
