package parley.transport;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import parley.collab.document.DocumentEntity;
import parley.collab.handler.DocumentHandler;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.Push;
import parley.protocol.Reply;
import parley.protocol.Request;

/**
 * The documents a connection has open. For each it sends every revision exactly once and in
 * order after the {@code ok} of {@code doc_open} ({@link OrderedDelivery}): someone else's
 * operation as a {@code doc_op} push, an operation submitted on this connection as the {@code
 * ok} of its {@code doc_submit}. That is the stream an OT client expects (ot.js's model). The
 * entity's replies and pushes reach the session on different paths, so an acknowledgement
 * that comes ahead of the revisions before it waits for them. Requests that touch no
 * subscription go to the {@link DocumentHandler}.
 */
final class DocumentStreams {

  /** The most pushes held for one document while its opening or a fetch is under way. */
  private static final int MAX_WAITING = 1000;

  /**
   * A subscription lost with its entity is asked for again with this timeout: the first ask
   * may go to the region of a node just removed, and be lost with it.
   */
  private static final Duration RESUBSCRIBE_TIMEOUT = Duration.ofSeconds(2);
  /** Unanswered, it is asked for again after 1 s, then 2, 4, 8, 16 s, each with jitter. */
  private static final long FIRST_RETRY_MILLIS = 1_000;
  private static final long LAST_RETRY_MILLIS = 16_000;

  /** One open document on this connection. */
  private static final class OpenDocument {
    final OrderedDelivery<DocumentEntity.OpApplied> revisions =
        OrderedDelivery.pending(MAX_WAITING, DocumentEntity.OpApplied::revision);
    /**
     * Submissions made on this connection whose ok has not gone out: request ids by
     * clientOpId. Their revision goes out as their ok, wherever it comes from.
     */
    final Map<String, List<String>> unanswered = new HashMap<>();
    /** The entity that pushes this document's revisions here, watched; null before its answer. */
    ActorRef<DocumentEntity.Command> entity;
    /** The entity stopped, and no incarnation has answered a subscription since. */
    boolean lost;
  }

  private final Session session;
  private final ActorRef<DocumentEntity.Push> pushes;
  private final Map<String, OpenDocument> open = new HashMap<>();
  /** A delivery found the client lagging: deliver nothing until the session says it caught up. */
  private boolean paused;
  /** The next retry's delay for lost subscriptions; back to the first once one is answered. */
  private long retryMillis = FIRST_RETRY_MILLIS;
  /** A retry of the lost subscriptions is due: one pass retries them all. */
  private boolean retryDue;

  DocumentStreams(Session session, ActorRef<DocumentEntity.Push> pushes) {
    this.session = session;
    this.pushes = pushes;
  }

  void handle(String id, Request.Doc request) {
    request.accept(new Requests(id));
  }

  /**
   * Subscriptions live in the documents' memory. They are renewed now and then, which keeps an
   * idle document awake; a document that stops is subscribed to again at once
   * ({@link #onEntityStopped}).
   */
  void renew() {
    open.forEach((doc, state) -> {
      if (state.revisions.started()) {
        resubscribe(doc, state);
      }
    });
  }

  /** The lagging client has drained its buffer: continue after what was delivered. */
  void resumeAfterLag() {
    paused = false;
    open.forEach((doc, state) -> {
      state.revisions.dropWaiting();
      fetchIfNeeded(doc, state);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Requests

  private final class Requests implements Request.DocVisitor<Void> {
    private final String id;

    Requests(String id) {
      this.id = id;
    }

    @Override
    public Void create(Request.DocCreate r) {
      return viaHandler(r);
    }

    @Override
    public Void ops(Request.DocOps r) {
      return viaHandler(r);
    }

    @Override
    public Void addEditor(Request.DocAddEditor r) {
      return viaHandler(r);
    }

    @Override
    public Void cursor(Request.DocCursor r) {
      return viaHandler(r);
    }

    private Void viaHandler(Request.Doc r) {
      session.whenDone(
          session.handlers().documents().handle(session.userId(), session.sessionId(), r),
          reply -> session.reply(Codec.reply(id, reply)));
      return null;
    }

    @Override
    public Void open(Request.DocOpen r) {
      DocumentStreams.this.open(id, r.doc());
      return null;
    }

    @Override
    public Void submit(Request.DocSubmit r) {
      DocumentStreams.this.submit(id, r);
      return null;
    }

    @Override
    public Void close(Request.DocClose r) {
      OpenDocument closed = open.remove(r.doc());
      if (closed != null) {
        unfollow(closed);
        entity(r.doc()).tell(new DocumentEntity.Unsubscribe(pushes));
      }
      session.reply(Codec.reply(id, new Reply.DocDone(r.doc())));
      return null;
    }
  }

  private void open(String id, String doc) {
    // Opening again starts delivery afresh from the revision of the new ok.
    OpenDocument state = new OpenDocument();
    OpenDocument previous = open.put(doc, state);
    if (previous != null) {
      unfollow(previous);
    }
    session.ask(entity(doc), this::subscribe, DocumentEntity.OpenReply.class, reply -> {
      if (reply instanceof DocumentEntity.Rejected rejected) {
        open.remove(doc, state);
        session.reply(Codec.reply(id, DocumentHandler.rejection(rejected)));
        return;
      }
      DocumentEntity.Opened opened = opened(reply);
      session.reply(Codec.reply(id, DocumentHandler.opened(opened, session.sessionId())));
      // A later doc_open or doc_close may have overtaken this one; its answer still went out.
      if (open.get(doc) != state) {
        return;
      }
      follow(doc, state, reply);
      if (state.revisions.start(opened.revision(), item -> deliver(state, item))) {
        fetch(doc, state);
      }
    }, failure -> {
      open.remove(doc, state);
      session.reply(Codec.reply(id, parley.chat.handler.ChatHandler.failed(failure)));
    });
  }

  private void submit(String id, Request.DocSubmit r) {
    String doc = r.doc();
    String clientOpId = r.clientOpId();
    OpenDocument tracked = open.get(doc);
    if (tracked != null) {
      tracked.unanswered.computeIfAbsent(clientOpId, k -> new ArrayList<>()).add(id);
    }
    session.ask(entity(doc), (ActorRef<DocumentEntity.SubmitReply> to) -> new DocumentEntity.Submit(session.userId(), clientOpId, r.revision(), r.op(), to), DocumentEntity.SubmitReply.class, reply -> {
      OpenDocument state = open.get(doc) == tracked ? tracked : null;
      if (state != null && !unanswered(state, clientOpId, id)) {
        // Its revision went out as this ok already.
        return;
      }
      if (reply instanceof DocumentEntity.Rejected rejected) {
        answered(state, clientOpId, id);
        session.reply(Codec.reply(id, DocumentHandler.rejection(rejected)));
        return;
      }
      long revision = ((DocumentEntity.Acked) reply).revision();
      if (state == null || !state.revisions.started() || revision <= state.revisions.delivered()) {
        // Not followed here, or an earlier revision (the retry of an applied operation).
        answered(state, clientOpId, id);
        session.reply(acked(id, doc, revision, clientOpId));
      } else if (revision == state.revisions.delivered() + 1 && !state.revisions.fetching() && !paused) {
        if (!sent(acked(id, doc, revision, clientOpId))) {
          // Fetched and answered in its turn once the client has caught up.
          state.revisions.knowHead(revision);
          return;
        }
        answered(state, clientOpId, id);
        state.revisions.delivered(revision);
        if (state.revisions.drain(item -> deliver(state, item))) {
          fetch(doc, state);
        }
      } else {
        // Revisions before this one are still on their way: the ok goes out in its turn.
        state.revisions.knowHead(revision);
        fetchIfNeeded(doc, state);
      }
    }, failure -> {
      if (open.get(doc) == tracked) {
        answered(tracked, clientOpId, id);
      }
      session.reply(Codec.reply(id, parley.chat.handler.ChatHandler.failed(failure)));
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
    return Codec.reply(id, new Reply.DocSubmitted(doc, revision, clientOpId));
  }

  // ---------------------------------------------------------------------------------------
  // Pushes

  void onPush(DocumentEntity.Push push) {
    if (push instanceof DocumentEntity.OpApplied applied) {
      OpenDocument state = open.get(applied.docId());
      if (state == null) {
        return;
      }
      if (paused) {
        state.revisions.knowHead(applied.revision());
      } else if (state.revisions.offer(applied, item -> deliver(state, item))) {
        fetch(applied.docId(), state);
      }
    } else if (push instanceof DocumentEntity.CursorMoved moved) {
      OpenDocument state = open.get(moved.docId());
      // A cursor is meaningful only at the revision the client has: drop it otherwise, the
      // next move comes soon enough.
      if (state != null && state.revisions.inStep() && moved.revision() == state.revisions.delivered() && !isOwn(moved.sessionId())) {
        session.send(Codec.push(new Push.DocCursor(
            moved.docId(), moved.userId(), moved.sessionId(), moved.revision(), moved.position(), moved.selectionEnd())));
      }
    } else if (push instanceof DocumentEntity.CursorRemoved removed) {
      OpenDocument state = open.get(removed.docId());
      if (state != null && state.revisions.started() && !isOwn(removed.sessionId())) {
        session.send(Codec.push(new Push.DocCursorRemoved(removed.docId(), removed.userId(), removed.sessionId())));
      }
    } else if (push instanceof DocumentEntity.EditorsChanged changed) {
      if (open.containsKey(changed.docId())) {
        session.send(Codec.push(new Push.DocEditors(changed.docId(), changed.owner(), changed.editors())));
      }
    } else if (push instanceof DocumentEntity.DocumentClosed closed) {
      OpenDocument state = open.get(closed.docId());
      if (state != null && state.revisions.started()) {
        // The user left the owning room (subscribing again tells whether they still may read),
        // or an entity on a node that predates the watch stopped.
        state.lost = true;
        resubscribe(closed.docId(), state);
      }
    }
  }

  /**
   * The entity of an open document stopped: moved by a rebalance, passivated, failed, or gone
   * with its node, in which case no message of its own could have said so. Subscribe again at
   * once, which starts it where it now belongs; the revisions applied meanwhile are fetched.
   */
  void onEntityStopped(String doc, ActorRef<DocumentEntity.Command> entity) {
    OpenDocument state = open.get(doc);
    if (state == null || !entity.equals(state.entity)) {
      // Closed, or already following a newer incarnation.
      return;
    }
    state.entity = null;
    state.lost = true;
    if (state.revisions.started()) {
      resubscribe(doc, state);
    }
  }

  /** Subscribes again to every open document whose entity stopped and has not answered since. */
  private void resubscribeLost() {
    retryDue = false;
    open.forEach((doc, state) -> {
      if (state.lost && state.revisions.started()) {
        resubscribe(doc, state);
      }
    });
  }

  /** The document of a subscription's answer: an entity on a node that predates the watch answers Opened. */
  private static DocumentEntity.Opened opened(DocumentEntity.OpenReply reply) {
    return reply instanceof DocumentEntity.Subscribed subscribed ? subscribed.document() : (DocumentEntity.Opened) reply;
  }

  /**
   * Watches the entity that answered. An entity on a node that predates the watch (a rolling
   * upgrade) gives no ref, and says DocumentClosed when it stops instead.
   */
  private void follow(String doc, OpenDocument state, DocumentEntity.OpenReply reply) {
    state.lost = false;
    if (reply instanceof DocumentEntity.Subscribed subscribed && !subscribed.entity().equals(state.entity)) {
      unfollow(state);
      state.entity = subscribed.entity();
      session.watchDocument(state.entity, doc);
    }
  }

  private void unfollow(OpenDocument state) {
    if (state.entity != null) {
      session.unwatch(state.entity);
      state.entity = null;
    }
  }

  /** Sends one revision: the ok of this connection's own submission, or a doc_op push. */
  private boolean deliver(OpenDocument state, DocumentEntity.OpApplied applied) {
    List<String> ids = session.userId().equals(applied.author()) ? state.unanswered.get(applied.clientOpId()) : null;
    if (ids != null) {
      if (!sent(acked(ids.get(0), applied.docId(), applied.revision(), applied.clientOpId()))) {
        return false;
      }
      // Retries of the same operation on this connection are answered alike.
      ids.subList(1, ids.size()).forEach(id -> session.reply(acked(id, applied.docId(), applied.revision(), applied.clientOpId())));
      state.unanswered.remove(applied.clientOpId());
      return true;
    }
    return sent(Codec.push(new Push.DocOp(
        applied.docId(), applied.revision(), applied.op(), applied.author(), applied.clientOpId())));
  }

  private boolean sent(String frame) {
    paused = paused || !session.send(frame);
    return !paused;
  }

  private void fetchIfNeeded(String doc, OpenDocument state) {
    if (!paused && state.revisions.needsFetch()) {
      fetch(doc, state);
    }
  }

  /** Reads the operations after what was delivered from the document's retained window. */
  private void fetch(String doc, OpenDocument state) {
    state.revisions.startFetch();
    long from = state.revisions.delivered();
    session.ask(entity(doc), (ActorRef<DocumentEntity.GetOpsReply> to) -> new DocumentEntity.GetOps(session.userId(), from, to), DocumentEntity.GetOpsReply.class, reply -> {
      if (open.get(doc) != state) {
        return;
      }
      if (reply instanceof DocumentEntity.Rejected rejected) {
        state.revisions.fetchFailed();
        if (!ErrorCode.UNAVAILABLE.wire().equals(rejected.code())) {
          // Too far behind (or no longer allowed): the client must open the document again.
          giveUp(doc, rejected);
        }
        return;
      }
      DocumentEntity.Ops ops = (DocumentEntity.Ops) reply;
      List<DocumentEntity.OpApplied> page = ops.ops().stream()
          .map(e -> new DocumentEntity.OpApplied(doc, e.revision(), e.op(), e.author(), e.clientOpId()))
          .toList();
      if (state.revisions.fetched(page, ops.revision(), item -> deliver(state, item)) && !paused) {
        fetch(doc, state);
      }
    }, failure -> {
      // Tried again on the next push, renewal or catching up after a lag.
      if (open.get(doc) == state) {
        state.revisions.fetchFailed();
      }
    });
  }

  private void resubscribe(String doc, OpenDocument state) {
    Duration timeout = state.lost ? RESUBSCRIBE_TIMEOUT : session.handlers().settings().askTimeout();
    session.ask(entity(doc), this::subscribe, DocumentEntity.OpenReply.class, timeout, reply -> {
      if (open.get(doc) != state) {
        return;
      }
      if (reply instanceof DocumentEntity.Rejected rejected) {
        if (ErrorCode.UNAVAILABLE.wire().equals(rejected.code())) {
          retryIfLost(state);
        } else {
          // No longer allowed (left the document's room) or gone.
          giveUp(doc, rejected);
        }
        return;
      }
      if (state.lost) {
        retryMillis = FIRST_RETRY_MILLIS;
      }
      follow(doc, state, reply);
      state.revisions.knowHead(opened(reply).revision());
      fetchIfNeeded(doc, state);
    }, failure -> retryIfLost(state));
  }

  /**
   * Unanswered while the document is still subscribed: the next renewal is soon enough. Lost
   * with its entity (its node is failing over, say): try again soon, backing off while the
   * document cannot start (storage down, say), since each try may start its recovery.
   */
  private void retryIfLost(OpenDocument state) {
    if (state.lost && !retryDue) {
      retryDue = true;
      session.later(Duration.ofMillis(ThreadLocalRandom.current().nextLong(retryMillis / 2, retryMillis + 1)), this::resubscribeLost);
      retryMillis = Math.min(retryMillis * 2, LAST_RETRY_MILLIS);
    }
  }

  /** Stops following a document the session cannot keep in step, and tells the client so. */
  private void giveUp(String doc, DocumentEntity.Rejected why) {
    OpenDocument state = open.remove(doc);
    if (state != null) {
      unfollow(state);
    }
    entity(doc).tell(new DocumentEntity.Unsubscribe(pushes));
    session.send(Codec.push(new Push.DocResync(doc, ErrorCode.ofEntity(why.code()).wire(), why.message())));
  }

  private boolean isOwn(String sessionId) {
    return session.sessionId().equals(sessionId);
  }

  private DocumentEntity.Subscribe subscribe(ActorRef<DocumentEntity.OpenReply> replyTo) {
    return new DocumentEntity.Subscribe(session.userId(), session.sessionId(), pushes, replyTo, true);
  }

  private EntityRef<DocumentEntity.Command> entity(String doc) {
    return session.sharding().entityRefFor(DocumentEntity.ENTITY_KEY, doc);
  }
}
