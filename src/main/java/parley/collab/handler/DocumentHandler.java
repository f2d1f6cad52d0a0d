package parley.collab.handler;

import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import parley.chat.handler.ChatHandler;
import parley.collab.document.DocumentEntity;
import parley.protocol.ErrorCode;
import parley.protocol.Reply;
import parley.protocol.Request;

/**
 * Document requests that need no subscription: each becomes one command of the document
 * entity and its answer one {@link Reply}. REST calls it for every document request; a
 * connection's session calls it for those that do not touch what the connection follows.
 */
public final class DocumentHandler {

  private final ClusterSharding sharding;
  private final java.time.Duration askTimeout;
  private final java.util.concurrent.Executor executor;

  public DocumentHandler(ActorSystem<?> system, java.time.Duration askTimeout) {
    this.sharding = ClusterSharding.get(system);
    this.askTimeout = askTimeout;
    this.executor = system.executionContext();
  }

  /** Runs {@code request} for {@code user} (of connection {@code session}, or null over REST). */
  public CompletionStage<Reply> handle(String user, String session, Request.Doc request) {
    return request.accept(new Calls(user, session)).exceptionally(ChatHandler::failed);
  }

  private final class Calls implements Request.DocVisitor<CompletionStage<Reply>> {
    private final String user;
    private final String session;

    Calls(String user, String session) {
      this.user = user;
      this.session = session;
    }

    @Override
    public CompletionStage<Reply> create(Request.DocCreate r) {
      return ask(r.doc(), (ActorRef<DocumentEntity.CreateReply> to) -> new DocumentEntity.Create(user, r.text(), r.editors(), r.room(), to))
          .thenApply(reply -> reply instanceof DocumentEntity.Created created
              ? new Reply.DocCreated(r.doc(), created.revision(), r.room())
              : rejection((DocumentEntity.Rejected) reply));
    }

    /** Reads the document without following it (REST); a connection's session subscribes instead. */
    @Override
    public CompletionStage<Reply> open(Request.DocOpen r) {
      return ask(r.doc(), (ActorRef<DocumentEntity.OpenReply> to) -> new DocumentEntity.Open(user, to))
          .thenApply(reply -> reply instanceof DocumentEntity.Opened opened
              ? opened(opened, session)
              : rejection((DocumentEntity.Rejected) reply));
    }

    @Override
    public CompletionStage<Reply> submit(Request.DocSubmit r) {
      return ask(r.doc(), (ActorRef<DocumentEntity.SubmitReply> to) -> new DocumentEntity.Submit(user, r.clientOpId(), r.revision(), r.op(), to))
          .thenApply(reply -> reply instanceof DocumentEntity.Acked acked
              ? new Reply.DocSubmitted(r.doc(), acked.revision(), acked.clientOpId())
              : rejection((DocumentEntity.Rejected) reply));
    }

    @Override
    public CompletionStage<Reply> ops(Request.DocOps r) {
      return ask(r.doc(), (ActorRef<DocumentEntity.GetOpsReply> to) -> new DocumentEntity.GetOps(user, r.revision(), to))
          .thenApply(reply -> reply instanceof DocumentEntity.Ops ops
              ? page(ops)
              : rejection((DocumentEntity.Rejected) reply));
    }

    /** Ephemeral: the document drops a cursor of a session that has not opened it. */
    @Override
    public CompletionStage<Reply> cursor(Request.DocCursor r) {
      if (session != null) {
        entity(r.doc()).tell(new DocumentEntity.UpdateCursor(user, session, r.revision(), r.position(), r.selectionEnd()));
      }
      return java.util.concurrent.CompletableFuture.completedFuture(new Reply.DocDone(r.doc()));
    }

    @Override
    public CompletionStage<Reply> addEditor(Request.DocAddEditor r) {
      return ask(r.doc(), (ActorRef<DocumentEntity.AddEditorReply> to) -> new DocumentEntity.AddEditor(user, r.user(), to))
          .thenApply(reply -> reply instanceof DocumentEntity.Editors editors
              ? new Reply.DocEditors(r.doc(), editors.owner(), editors.editors())
              : rejection((DocumentEntity.Rejected) reply));
    }

    @Override
    public CompletionStage<Reply> close(Request.DocClose r) {
      return java.util.concurrent.CompletableFuture.completedFuture(new Reply.DocDone(r.doc()));
    }
  }

  /** The reply to an open, without the cursor of the asking connection itself. */
  public static Reply.DocOpened opened(DocumentEntity.Opened opened, String ownSession) {
    return new Reply.DocOpened(
        opened.docId(),
        opened.text(),
        opened.revision(),
        opened.owner(),
        opened.room(),
        opened.editors(),
        opened.cursors().stream()
            .filter(c -> !c.sessionId().equals(ownSession))
            .map(c -> new Reply.CursorEntry(c.userId(), c.sessionId(), c.position(), c.selectionEnd()))
            .toList());
  }

  public static Reply.DocOpsPage page(DocumentEntity.Ops ops) {
    return new Reply.DocOpsPage(
        ops.docId(),
        ops.fromRevision(),
        ops.revision(),
        ops.ops().stream().map(e -> new Reply.OpEntry(e.revision(), e.op(), e.author(), e.clientOpId())).toList());
  }

  public static Reply.Failure rejection(DocumentEntity.Rejected rejected) {
    return Reply.Failure.of(ErrorCode.ofEntity(rejected.code()), rejected.message());
  }

  private <R> CompletionStage<R> ask(String doc, Function<ActorRef<R>, DocumentEntity.Command> command) {
    return ChatHandler.plain(entity(doc).ask(command::apply, askTimeout), executor);
  }

  private EntityRef<DocumentEntity.Command> entity(String doc) {
    return sharding.entityRefFor(DocumentEntity.ENTITY_KEY, doc);
  }
}
