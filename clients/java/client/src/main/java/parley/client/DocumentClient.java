package parley.client;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.function.Predicate;
import parley.collab.ot.InvalidOperationException;
import parley.collab.ot.OtClient;
import parley.collab.ot.TextOperation;

/**
 * One collaboratively edited document as a client holds it: a local text the user edits at
 * will, kept in step with the server's by operational transformation over protocol v1's
 * {@code doc_*} requests ({@code docs/protocol.md}, "Collaborative editing").
 *
 * <p>It is the ot.js client model ({@link OtClient}: synchronized, awaiting confirm, awaiting
 * with buffer): at most one operation in flight, later edits composed into a buffer, server
 * operations transformed against both before they touch the local text. On top of that it
 * survives its connection: when the connection ends it opens a new one through its
 * {@link Connector}, keeps its local text and unacknowledged edits, subscribes again, fetches
 * the operations it missed ({@code doc_ops} from its revision; its own in-flight operation
 * among them counts as the acknowledgement) and then sends what is still in flight, with the
 * same client operation id, which the server's dedup window makes safe.
 *
 * <p>Server revisions are applied strictly in order. The server sends each revision once per
 * connection, in order, but this client learns of replies and pushes on different threads of
 * {@link ParleyClient}, so whatever comes ahead of its turn waits in a small map by revision.
 *
 * <p>When the server refuses an operation (it no longer fits, the document would grow past
 * its limit) or the client fell further behind than the server retains, the client
 * resynchronizes: it takes the server's text and drops its unacknowledged edits, and tells its
 * {@link Listener#onResync}. Instances are safe for use from many threads; listeners run while
 * the client's lock is held and must be quick.
 */
public final class DocumentClient implements AutoCloseable {

  /** Opens a connection whenever the document needs one: the first time and after each loss. */
  @FunctionalInterface
  public interface Connector {
    CompletableFuture<ParleyClient> connect();
  }

  /** What happens to the document; every method runs under the client's lock. */
  public interface Listener {

    /** An operation of this client went on the wire, based on {@code baseRevision}. */
    default void onSubmitted(String clientOpId, long baseRevision) {}

    /** The server holds this client's operation {@code clientOpId} as {@code revision}. */
    default void onAcknowledged(String clientOpId, long revision) {}

    /** Someone else's operation, {@code revision} on the server, as applied to the local text. */
    default void onRemoteOperation(long revision, String author, String clientOpId, TextOperation applied) {}

    /** The local text was replaced by the server's; unacknowledged local edits are gone. */
    default void onResync(String code, String message) {}
  }

  /**
   * Another session's cursor, as the server reported it: {@code position} and
   * {@code selectionEnd} are indexes into the server's text at {@code revision}.
   */
  public record RemoteCursor(String user, String session, long revision, int position, int selectionEnd) {}

  /**
   * The client at one moment.
   *
   * @param text the local text, with every local edit
   * @param revision the server revisions it reflects
   * @param live connected, subscribed and caught up
   * @param pending local edits the server has not acknowledged yet
   * @param cursors the other sessions' cursors, by session id
   */
  public record Snapshot(
      String text, long revision, boolean live, boolean pending, Map<String, RemoteCursor> cursors) {}

  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final long MAX_RECONNECT_DELAY_MILLIS = 2_000;

  /** One server revision as this client learned of it. */
  private sealed interface Step {
    long revision();
  }

  /** An operation pushed or fetched: anyone's, this client's own included. */
  private record Applied(long revision, TextOperation op, String author, String clientOpId) implements Step {}

  /** The ok of a submission: the revision without the operation. */
  private record Ack(long revision, String clientOpId) implements Step {}

  private final Connector connector;
  private final String docId;
  private final Listener listener;
  private final String opIdPrefix = UUID.randomUUID().toString().substring(0, 8);
  private final CompletableFuture<DocumentClient> opened = new CompletableFuture<>();

  // Guarded by this.
  private String userId;
  private String text = "";
  private long revision;
  /** False before the first open and during a resync: {@link #revision} is nothing to build on. */
  private boolean based;
  private OtClient ot = OtClient.synced();
  private String inFlightId;
  /** The connection the in-flight operation was last sent on; it is sent again on a new one. */
  private int inFlightEpoch = -1;
  private long opCount;
  private final TreeMap<Long, Step> ahead = new TreeMap<>();
  private boolean fetchingMissing;
  private String owner;
  private String room;
  private List<String> editors = List.of();
  private final Map<String, RemoteCursor> cursors = new LinkedHashMap<>();
  private int[] unsentCursor;
  private ParleyClient connection;
  /** Counts connections; answers that belong to an earlier one are recognised by it. */
  private int epoch;
  private boolean live;
  private boolean closed;
  private int failedAttempts;

  private DocumentClient(Connector connector, String docId, Listener listener) {
    this.connector = Objects.requireNonNull(connector);
    this.docId = Objects.requireNonNull(docId);
    this.listener = Objects.requireNonNull(listener);
  }

  // ---------------------------------------------------------------------------------------------
  // Opening and closing

  /**
   * Connects, opens document {@code docId} and completes once its text has arrived. Fails with
   * the server's code ({@code doc_not_found}, {@code forbidden}, …) if it cannot be opened, or
   * with the connector's failure if the first connection cannot be made; later losses of the
   * connection are healed by reconnecting until {@link #close}.
   */
  public static CompletableFuture<DocumentClient> open(Connector connector, String docId, Listener listener) {
    DocumentClient client = new DocumentClient(connector, docId, listener);
    client.connect();
    // Callers continue off the thread that completed the open, which may hold locks.
    return client.opened.thenApplyAsync(c -> c);
  }

  /** {@link #open(Connector, String, Listener)} without a listener. */
  public static CompletableFuture<DocumentClient> open(Connector connector, String docId) {
    return open(connector, docId, new Listener() {});
  }

  /**
   * Creates document {@code docId} owned by the connection's user, with {@code text} (may be
   * null) and {@code editors} (may be empty) allowed to edit it; completes with its revision, 0.
   */
  public static CompletableFuture<Long> create(
      ParleyClient connection, String docId, String text, List<String> editors) {
    return create(connection, docId, text, editors, null);
  }

  /**
   * As {@link #create(ParleyClient, String, String, List)}, in {@code room} (null for none):
   * the room's members may edit the document too. Fails with {@code not_a_member} unless the
   * connection's user is a member of the room, {@code room_not_found} if there is no such room.
   */
  public static CompletableFuture<Long> create(
      ParleyClient connection, String docId, String text, List<String> editors, String room) {
    ObjectNode frame = MAPPER.createObjectNode().put("type", "doc_create").put("doc", docId);
    if (text != null) {
      frame.put("text", text);
    }
    if (room != null) {
      frame.put("room", room);
    }
    editors.forEach(frame.putArray("editors")::add);
    return connection.request(frame).thenApply(reply -> reply.path("revision").asLong());
  }

  /** Lets {@code user} edit the document (owner only); completes with the editors now. */
  public static CompletableFuture<List<String>> addEditor(ParleyClient connection, String docId, String user) {
    ObjectNode frame = MAPPER.createObjectNode().put("type", "doc_add_editor").put("doc", docId).put("user", user);
    return connection.request(frame).thenApply(reply -> strings(reply.path("editors")));
  }

  /** Drops the current connection, as a network failure would; the client reconnects by itself. */
  public void reconnect() {
    ParleyClient current;
    synchronized (this) {
      current = connection;
    }
    if (current != null) {
      closeInBackground(current);
    }
  }

  /** Closes the connection; local edits not yet acknowledged stay unsent. */
  @Override
  public void close() {
    ParleyClient current;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      live = false;
      current = connection;
      notifyAll();
    }
    opened.completeExceptionally(new ParleyException(ParleyException.CLOSED, "closed before the document opened"));
    if (current != null) {
      current.close();
    }
  }

  private void connect() {
    int attempt;
    synchronized (this) {
      if (closed) {
        return;
      }
      attempt = ++epoch;
      live = false;
    }
    CompletableFuture<ParleyClient> connecting;
    try {
      connecting = connector.connect();
    } catch (RuntimeException e) {
      connecting = CompletableFuture.failedFuture(e);
    }
    connecting.whenComplete((c, failure) -> onConnected(attempt, c, failure));
  }

  private void onConnected(int attempt, ParleyClient c, Throwable failure) {
    boolean current;
    boolean first;
    synchronized (this) {
      current = !closed && attempt == epoch;
      first = !opened.isDone();
      if (current && failure == null) {
        connection = c;
        if (userId == null) {
          userId = c.userId();
        }
      }
    }
    if (!current) {
      if (c != null) {
        closeInBackground(c);
      }
      return;
    }
    if (failure != null) {
      if (first) {
        fail(unwrap(failure));
      } else {
        reconnectLater(attempt);
      }
      return;
    }
    c.onPush(push -> onPush(attempt, push));
    c.closed().thenRun(() -> reconnectLater(attempt));
    c.request(frame("doc_open")).whenComplete((reply, error) -> onOpenReply(attempt, c, reply, error));
  }

  /** After a lost connection or a failed attempt: waits a little longer each time, then connects. */
  private void reconnectLater(int attempt) {
    long delay;
    synchronized (this) {
      if (closed || attempt != epoch) {
        return;
      }
      live = false;
      notifyAll();
      delay = failedAttempts == 0 ? 0 : Math.min(MAX_RECONNECT_DELAY_MILLIS, 100L << Math.min(failedAttempts, 5));
      failedAttempts++;
    }
    CompletableFuture.delayedExecutor(delay, TimeUnit.MILLISECONDS).execute(this::connect);
  }

  private void onOpenReply(int attempt, ParleyClient c, JsonNode reply, Throwable failure) {
    boolean first = false;
    synchronized (this) {
      if (closed || attempt != epoch) {
        return;
      }
      if (failure == null) {
        first = !opened.isDone();
        owner = reply.path("owner").asText(null);
        room = reply.path("room").asText(null);
        editors = strings(reply.path("editors"));
        cursors.clear();
        for (JsonNode cursor : reply.path("cursors")) {
          RemoteCursor remote = cursor(cursor, reply.path("revision").asLong());
          cursors.put(remote.session(), remote);
        }
        long serverRevision = reply.path("revision").asLong();
        if (!based) {
          rebase(reply.path("text").asText(), serverRevision);
          goLive();
        } else if (serverRevision > revision) {
          catchUp(attempt, c, reply);
        } else {
          goLive();
        }
      }
    }
    if (failure != null) {
      ParleyException error = unwrap(failure);
      if (isPermanent(error.code())) {
        fail(error);
      } else {
        // Timed out, unavailable or closed: start over on a new connection.
        closeInBackground(c);
      }
    } else if (first) {
      opened.complete(this);
    }
  }

  /** Fetches what happened since {@link #revision}; {@code openReply} is the fallback. */
  private void catchUp(int attempt, ParleyClient c, JsonNode openReply) {
    c.request(frame("doc_ops").put("revision", revision)).whenComplete((reply, failure) -> {
      synchronized (this) {
        if (closed || attempt != epoch) {
          return;
        }
        if (failure == null) {
          long before = revision;
          offerAll(reply.path("ops"));
          if (morePages(reply) && revision > before) {
            catchUp(attempt, c, openReply);
          } else {
            goLive();
          }
          return;
        }
        ParleyException error = unwrap(failure);
        if (error.code().equals("resync_required")) {
          listener.onResync(error.code(), error.getMessage());
          rebase(openReply.path("text").asText(), openReply.path("revision").asLong());
          goLive();
          return;
        }
      }
      closeInBackground(c);
    });
  }

  private void fail(ParleyException error) {
    ParleyClient current;
    synchronized (this) {
      closed = true;
      live = false;
      current = connection;
      notifyAll();
    }
    opened.completeExceptionally(error);
    if (current != null) {
      closeInBackground(current);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Editing

  /**
   * Applies {@code op} to the local text and sends it, or buffers it behind the operation in
   * flight.
   *
   * @throws InvalidOperationException {@code base_length_mismatch} if {@code op} does not fit
   *     the local text (nothing changes then)
   * @throws IllegalStateException while the document is not open or resynchronizes
   */
  public synchronized void edit(TextOperation op) {
    if (closed || !based) {
      throw new IllegalStateException(closed ? "the document client is closed" : "the document is not open yet");
    }
    text = op.apply(text);
    OtClient.Outgoing out = ot.applyClient(op);
    ot = out.state();
    out.send().ifPresent(this::startSending);
    notifyAll();
  }

  /**
   * Applies the operation {@code change} makes of the local text, computed and applied under
   * the client's lock, so no server operation changes the text in between.
   */
  public synchronized void edit(Function<String, TextOperation> change) {
    edit(change.apply(text));
  }

  /** Inserts {@code s} at {@code index} of the local text. */
  public synchronized void insert(int index, String s) {
    edit(TextOperation.builder().retain(index).insert(s).retain(text.length() - index).build());
  }

  /** Deletes {@code count} UTF-16 units at {@code index} of the local text. */
  public synchronized void delete(int index, int count) {
    edit(TextOperation.builder().retain(index).delete(count).retain(text.length() - index - count).build());
  }

  /**
   * Moves this client's cursor to {@code position}, selecting up to {@code selectionEnd} (equal
   * for no selection), as indexes into the local text. Sent when no local edit is unacknowledged
   * (then the local text is the server's); a newer move replaces one not yet sent.
   */
  public synchronized void moveCursor(int position, int selectionEnd) {
    unsentCursor = new int[] {position, selectionEnd};
    sendCursor();
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  public String docId() {
    return docId;
  }

  public synchronized Snapshot snapshot() {
    return new Snapshot(text, revision, live, !(ot instanceof OtClient.Synchronized), Map.copyOf(cursors));
  }

  public synchronized String text() {
    return text;
  }

  public synchronized long revision() {
    return revision;
  }

  /** The OT state: synchronized, awaiting confirm, or awaiting with buffer. */
  public synchronized OtClient state() {
    return ot;
  }

  public synchronized String owner() {
    return owner;
  }

  /** The room whose members may edit the document too, or null. */
  public synchronized String room() {
    return room;
  }

  public synchronized List<String> editors() {
    return editors;
  }

  /** The other sessions' cursors, by session id. */
  public synchronized Map<String, RemoteCursor> cursors() {
    return Map.copyOf(cursors);
  }

  /**
   * Waits until {@code condition} holds for the client's {@link #snapshot()} and returns that
   * snapshot.
   *
   * @throws TimeoutException if it does not hold within {@code timeout}
   */
  public synchronized Snapshot await(Predicate<Snapshot> condition, Duration timeout)
      throws InterruptedException, TimeoutException {
    long deadline = System.nanoTime() + timeout.toNanos();
    Snapshot now = snapshot();
    while (!condition.test(now)) {
      long left = deadline - System.nanoTime();
      if (left <= 0 || closed) {
        throw new TimeoutException(this + " did not reach the condition within " + timeout);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
      now = snapshot();
    }
    return now;
  }

  @Override
  public synchronized String toString() {
    return "DocumentClient[" + docId + " as " + userId + " at revision " + revision
        + (live ? ", live" : ", offline") + ", " + ot.getClass().getSimpleName()
        + (inFlightId == null ? "" : " of " + inFlightId + " sent on connection " + inFlightEpoch + " of " + epoch)
        + (ahead.isEmpty() ? "" : ", revisions waiting " + ahead.keySet()) + "]";
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving (all under the lock)

  private void onPush(int attempt, JsonNode push) {
    if (!docId.equals(push.path("doc").asText())) {
      return;
    }
    synchronized (this) {
      if (closed) {
        return;
      }
      switch (push.path("type").asText()) {
        case "doc_op" -> offer(applied(push));
        // The ok of a submission whose request had timed out still names its revision.
        case "ok" -> {
          if (push.hasNonNull("clientOpId") && push.hasNonNull("revision")) {
            offer(new Ack(push.get("revision").asLong(), push.get("clientOpId").asText()));
          }
        }
        case "doc_cursor" -> {
          RemoteCursor cursor = cursor(push, push.path("revision").asLong());
          cursors.put(cursor.session(), cursor);
          notifyAll();
        }
        case "doc_cursor_removed" -> {
          cursors.remove(push.path("session").asText());
          notifyAll();
        }
        case "doc_editors" -> {
          owner = push.path("owner").asText(owner);
          editors = strings(push.path("editors"));
        }
        case "doc_resync" -> {
          if (attempt == epoch) {
            resync(push.path("code").asText("resync_required"), push.path("message").asText(""));
          }
        }
        default -> {}
      }
    }
  }

  private void offerAll(JsonNode ops) {
    for (JsonNode op : ops) {
      offer(applied(op));
    }
  }

  /** Takes in one server revision and applies whatever is now next in line. */
  private void offer(Step step) {
    if (based && step.revision() <= revision) {
      return;
    }
    if (step instanceof Applied) {
      // An operation says everything an ack says, and more.
      ahead.put(step.revision(), step);
    } else {
      ahead.putIfAbsent(step.revision(), step);
    }
    drain();
  }

  private void drain() {
    while (based && !ahead.isEmpty() && ahead.firstKey() <= revision + 1) {
      Step next = ahead.pollFirstEntry().getValue();
      if (next.revision() <= revision) {
        continue;
      }
      try {
        if (!apply(next)) {
          // An ack of an operation this client no longer holds: fetch the operation itself.
          ahead.put(next.revision(), next);
          fetchMissing();
          break;
        }
      } catch (InvalidOperationException e) {
        resync("diverged", "a server operation did not fit the local text: " + e.getMessage());
        return;
      }
    }
    notifyAll();
  }

  /** Applies the next revision; false if it is an ack this client cannot use. */
  private boolean apply(Step step) {
    boolean own =
        inFlightId != null
            && (step instanceof Ack ack && ack.clientOpId().equals(inFlightId)
                || step instanceof Applied op && inFlightId.equals(op.clientOpId()) && op.author().equals(userId));
    if (own) {
      revision = step.revision();
      String acknowledged = inFlightId;
      inFlightId = null;
      OtClient.Outgoing out = ot.serverAck();
      ot = out.state();
      listener.onAcknowledged(acknowledged, revision);
      out.send().ifPresent(this::startSending);
      sendCursor();
      return true;
    }
    if (!(step instanceof Applied op)) {
      return false;
    }
    OtClient.Incoming in = ot.applyServer(op.op());
    text = in.apply().apply(text);
    ot = in.state();
    revision = op.revision();
    listener.onRemoteOperation(revision, op.author(), op.clientOpId(), in.apply());
    return true;
  }

  /** Fills a hole in the revisions from the document's retained operations. */
  private void fetchMissing() {
    if (fetchingMissing || !live) {
      return;
    }
    fetchingMissing = true;
    int attempt = epoch;
    connection.request(frame("doc_ops").put("revision", revision)).whenComplete((reply, failure) -> {
      synchronized (this) {
        fetchingMissing = false;
        if (closed || attempt != epoch) {
          return;
        }
        if (failure == null) {
          long before = revision;
          offerAll(reply.path("ops"));
          if (morePages(reply) && revision > before) {
            fetchMissing();
          }
        } else if (unwrap(failure).code().equals("resync_required")) {
          resync("resync_required", unwrap(failure).getMessage());
        }
      }
    });
  }

  /** A {@code doc_ops} answer is one page: it ends before the newest revision when more follow. */
  private static boolean morePages(JsonNode reply) {
    JsonNode ops = reply.path("ops");
    return !ops.isEmpty() && ops.get(ops.size() - 1).path("revision").asLong() < reply.path("revision").asLong();
  }

  // ---------------------------------------------------------------------------------------------
  // Sending (all under the lock)

  private void startSending(TextOperation op) {
    inFlightId = opIdPrefix + "." + ++opCount;
    inFlightEpoch = -1;
    if (live) {
      submit(op);
    }
  }

  private void submit(TextOperation op) {
    String clientOpId = inFlightId;
    int attempt = epoch;
    inFlightEpoch = attempt;
    ObjectNode frame = frame("doc_submit").put("clientOpId", clientOpId).put("revision", revision);
    frame.set("op", MAPPER.valueToTree(op));
    listener.onSubmitted(clientOpId, revision);
    connection.request(frame).whenComplete((reply, failure) -> onSubmitReply(attempt, clientOpId, reply, failure));
  }

  private void onSubmitReply(int attempt, String clientOpId, JsonNode reply, Throwable failure) {
    synchronized (this) {
      if (closed) {
        return;
      }
      if (failure == null) {
        // An ack is a fact about the document, whichever connection brought it.
        offer(new Ack(reply.path("revision").asLong(), clientOpId));
        return;
      }
      if (attempt != epoch || !clientOpId.equals(inFlightId)) {
        return;
      }
      ParleyException error = unwrap(failure);
      switch (error.code()) {
        // The new connection sends it again.
        case ParleyException.CLOSED -> {}
        case ParleyException.TIMEOUT, "unavailable", "rate_limited" -> retryLater(attempt, clientOpId);
        default -> resync(error.code(), error.getMessage());
      }
    }
  }

  /** Sends the in-flight operation again, same id, unless it was acknowledged meanwhile. */
  private void retryLater(int attempt, String clientOpId) {
    CompletableFuture.delayedExecutor(200, TimeUnit.MILLISECONDS).execute(() -> {
      synchronized (this) {
        if (!closed && live && attempt == epoch && clientOpId.equals(inFlightId)) {
          ot.inFlight().ifPresent(this::submit);
        }
      }
    });
  }

  private void goLive() {
    live = true;
    failedAttempts = 0;
    // A hole the catch-up left can be fetched now.
    drain();
    Optional<TextOperation> unacknowledged = ot.inFlight();
    if (unacknowledged.isPresent() && inFlightEpoch != epoch) {
      submit(unacknowledged.get());
    }
    sendCursor();
    notifyAll();
  }

  private void sendCursor() {
    if (unsentCursor == null || !live || !(ot instanceof OtClient.Synchronized)) {
      return;
    }
    ObjectNode frame =
        frame("doc_cursor").put("revision", revision).put("position", unsentCursor[0]).put("selectionEnd", unsentCursor[1]);
    unsentCursor = null;
    // Ephemeral: a lost or refused cursor is replaced by the next move.
    connection.request(frame);
  }

  /** Gives up on the local edits: opens the document again and takes the server's text. */
  private void resync(String code, String message) {
    listener.onResync(code, message);
    based = false;
    live = false;
    int attempt = epoch;
    ParleyClient c = connection;
    c.request(frame("doc_open")).whenComplete((reply, error) -> onOpenReply(attempt, c, reply, error));
  }

  /** Takes the server's text at {@code serverRevision} as the new base, dropping local edits. */
  private void rebase(String serverText, long serverRevision) {
    text = serverText;
    revision = serverRevision;
    ot = OtClient.synced();
    inFlightId = null;
    based = true;
    ahead.headMap(serverRevision, true).clear();
    drain();
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private ObjectNode frame(String type) {
    return MAPPER.createObjectNode().put("type", type).put("doc", docId);
  }

  private static Applied applied(JsonNode node) {
    TextOperation op;
    try {
      op = MAPPER.treeToValue(node.get("op"), TextOperation.class);
    } catch (JsonProcessingException | IllegalArgumentException e) {
      throw new ParleyException(ParleyException.PROTOCOL_ERROR, "a server operation is not valid: " + node, e);
    }
    return new Applied(
        node.path("revision").asLong(), op, node.path("author").asText(), node.path("clientOpId").asText());
  }

  private static RemoteCursor cursor(JsonNode node, long revision) {
    return new RemoteCursor(
        node.path("user").asText(),
        node.path("session").asText(),
        revision,
        node.path("position").asInt(),
        node.path("selectionEnd").asInt());
  }

  private static List<String> strings(JsonNode array) {
    List<String> values = new ArrayList<>();
    array.forEach(value -> values.add(value.asText()));
    return List.copyOf(values);
  }

  private static boolean isPermanent(String code) {
    return code.equals("doc_not_found") || code.equals("forbidden") || code.equals("bad_doc_id");
  }

  private static ParleyException unwrap(Throwable failure) {
    Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
    return cause instanceof ParleyException parley
        ? parley
        : new ParleyException(ParleyException.CONNECT_FAILED, String.valueOf(cause), cause);
  }

  private static void closeInBackground(ParleyClient c) {
    // close() waits for the server's close frame; never on a thread that holds locks.
    CompletableFuture.runAsync(c::close);
  }
}
