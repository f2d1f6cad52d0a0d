package parley.transport;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.HashSet;
import java.util.Set;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import parley.chat.Ids;
import parley.collab.document.DocumentEntity;
import parley.collab.ot.InvalidOperationException;
import parley.collab.ot.TextOperation;

/**
 * The collaborative-editing part of a {@link Session}: {@code doc_*} requests become
 * DocumentEntity commands, and the document's pushes become {@code doc_*} frames.
 */
final class DocumentRequests {

  private final Session session;
  private final Set<String> open = new HashSet<>();

  DocumentRequests(Session session) {
    this.session = session;
  }

  void handle(String type, String id, JsonNode f) {
    String doc = docId(f);
    EntityRef<DocumentEntity.Command> entity = entity(doc);
    switch (type) {
      case "doc_create" -> session.ask(entity, r -> new DocumentEntity.Create(session.userId(), Session.optionalText(f, "text"), null, r), DocumentEntity.CreateReply.class, id, reply -> {
        if (reply instanceof DocumentEntity.Created created) {
          ObjectNode ok = Frames.ok(id);
          ok.put("doc", doc);
          ok.put("revision", created.revision());
          session.send(Frames.write(ok));
        } else {
          reject(id, (DocumentEntity.Rejected) reply);
        }
      });
      case "doc_open" -> session.ask(entity, r -> new DocumentEntity.Subscribe(session.userId(), session.sessionId(), session.documentPushes(), r), DocumentEntity.OpenReply.class, id, reply -> {
        if (reply instanceof DocumentEntity.Opened opened) {
          open.add(doc);
          ObjectNode ok = Frames.ok(id);
          ok.put("doc", doc);
          ok.put("text", opened.text());
          ok.put("revision", opened.revision());
          ok.put("owner", opened.owner());
          var editors = ok.putArray("editors");
          opened.editors().forEach(editors::add);
          session.send(Frames.write(ok));
        } else {
          reject(id, (DocumentEntity.Rejected) reply);
        }
      });
      case "doc_submit" -> {
        String clientOpId = Session.text(f, "clientOpId");
        long base = Session.longField(f, "revision");
        TextOperation op = operation(f);
        session.ask(entity, r -> new DocumentEntity.Submit(session.userId(), clientOpId, base, op, r), DocumentEntity.SubmitReply.class, id, reply -> {
          if (reply instanceof DocumentEntity.Acked acked) {
            ObjectNode ok = Frames.ok(id);
            ok.put("doc", doc);
            ok.put("revision", acked.revision());
            ok.put("clientOpId", acked.clientOpId());
            session.send(Frames.write(ok));
          } else {
            reject(id, (DocumentEntity.Rejected) reply);
          }
        });
      }
      case "doc_cursor" -> entity.tell(new DocumentEntity.UpdateCursor(session.userId(), session.sessionId(), Session.longField(f, "revision"), (int) Session.longField(f, "position"), f.hasNonNull("selectionEnd") ? (int) Session.longField(f, "selectionEnd") : (int) Session.longField(f, "position")));
      case "doc_close" -> {
        open.remove(doc);
        entity.tell(new DocumentEntity.Unsubscribe(session.documentPushes()));
        session.send(Frames.write(withDoc(Frames.ok(id), doc)));
      }
      default -> throw new Session.BadRequest("unknown_type", "unknown request type '" + type + "'");
    }
  }

  void onPush(DocumentEntity.Push push) {
    if (push instanceof DocumentEntity.OpApplied applied) {
      ObjectNode frame = Frames.JSON.createObjectNode();
      frame.put("type", "doc_op");
      frame.put("doc", applied.docId());
      frame.put("revision", applied.revision());
      frame.set("op", Frames.JSON.valueToTree(applied.op()));
      frame.put("author", applied.author());
      frame.put("clientOpId", applied.clientOpId());
      session.send(Frames.write(frame));
    } else if (push instanceof DocumentEntity.CursorMoved moved) {
      ObjectNode frame = Frames.JSON.createObjectNode();
      frame.put("type", "doc_cursor");
      frame.put("doc", moved.docId());
      frame.put("user", moved.userId());
      frame.put("session", moved.sessionId());
      frame.put("revision", moved.revision());
      frame.put("position", moved.position());
      frame.put("selectionEnd", moved.selectionEnd());
      session.send(Frames.write(frame));
    } else if (push instanceof DocumentEntity.DocumentClosed closed && open.contains(closed.docId())) {
      // The entity stopped or moved: subscribe again so pushes keep coming.
      entity(closed.docId()).tell(new DocumentEntity.Subscribe(session.userId(), session.sessionId(), session.documentPushes(), session.ignoreRef()));
    }
  }

  private static ObjectNode withDoc(ObjectNode node, String doc) {
    node.put("doc", doc);
    return node;
  }

  private void reject(String id, DocumentEntity.Rejected rejected) {
    session.send(Frames.error(id, rejected.code(), rejected.message()));
  }

  private static TextOperation operation(JsonNode f) {
    JsonNode op = f.get("op");
    if (op == null || !op.isArray()) {
      throw new Session.BadRequest(op == null ? "missing_field" : "bad_operation", "op must be an array such as [3, \"hi\", -2]");
    }
    try {
      return Frames.JSON.treeToValue(op, TextOperation.class);
    } catch (Exception e) {
      Throwable cause = e.getCause();
      if (cause instanceof InvalidOperationException invalid) {
        throw new Session.BadRequest(invalid.code(), invalid.getMessage());
      }
      throw new Session.BadRequest("bad_operation", "op is not a valid operation");
    }
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
