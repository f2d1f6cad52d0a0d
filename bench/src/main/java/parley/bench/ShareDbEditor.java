package parley.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import java.util.function.Function;
import parley.collab.ot.InvalidOperationException;
import parley.collab.ot.OtClient;
import parley.collab.ot.TextOperation;

/**
 * An editor of a ShareDB document, over ShareDB's own JSON protocol (the header of
 * bench/peers/sharedb-server.js describes it), behaving as ShareDB's browser client does: at
 * most one operation in flight, later edits composed into a buffer, and others' operations
 * transformed against both before they touch the local text. The state machine is {@link
 * OtClient}, the one Parley's {@link parley.client.DocumentClient} runs, so both servers get
 * the same client; edits travel as json0 string inserts and deletes ({@link Json0}).
 *
 * <p>The editor keeps the server's text at its version beside the local one: a json0 delete
 * names the text it removes, and an incoming operation is read against the server's text.
 * ShareDB numbers an operation by the version it applies to ({@code v}), so operations are
 * applied strictly in that order; one that arrives early waits, one below the version (the
 * same operation sent again, as ShareDB does around an acknowledgement) is dropped. An
 * acknowledgement is the editor's own operation taking its place in that order.
 *
 * <p>A refused operation, or one that does not fit, makes the editor take the server's text
 * again by subscribing anew, dropping its unacknowledged edits (ShareDB's client rolls back
 * the same way). It does not reconnect: a lost connection ends it, and the scenario counts it.
 * Frames arrive on a socket thread; every method is safe from any thread.
 */
final class ShareDbEditor implements DocEditor, LeanSocket.Handler {

  /** The collection of the scenario's documents. */
  static final String COLLECTION = "docs";

  private static final ObjectMapper JSON = new ObjectMapper();

  /** One server version as the editor learned of it. */
  private sealed interface Step {
    long v();
  }

  /** Someone else's operation, applying to version {@code v}. */
  private record Remote(long v, String id, JsonNode op) implements Step {}

  /** This editor's operation {@code seq} was applied to version {@code v}. */
  private record Ack(long v, long seq) implements Step {}

  private final String doc;
  private final boolean create;
  private final EditMeter meter;
  private final LeanSocket socket;
  private final Consumer<String> wire;
  private final CompletableFuture<DocEditor> opened = new CompletableFuture<>();

  // Guarded by this.
  private String src;
  private long seq;
  /** The sequence number of the operation in flight, 0 when none is. */
  private long inFlight;
  /** False until the snapshot arrives, and while taking it again. */
  private boolean based;
  private long version;
  private String serverText = "";
  private String text = "";
  private OtClient ot = OtClient.synced();
  private final TreeMap<Long, Step> ahead = new TreeMap<>();
  private boolean closed;

  private ShareDbEditor(String doc, boolean create, EditMeter meter) {
    this.doc = doc;
    this.create = create;
    this.meter = meter;
    this.socket = new LeanSocket(this);
    this.wire = socket::send;
  }

  /** An editor without a socket, whose frames go to {@code wire}: for tests. */
  ShareDbEditor(String doc, boolean create, EditMeter meter, Consumer<String> wire) {
    this.doc = doc;
    this.create = create;
    this.meter = meter;
    this.socket = null;
    this.wire = wire;
  }

  /**
   * Connects to the ShareDB server at {@code http} (its http:// address) and subscribes to
   * {@code doc}, creating it first, empty, if {@code create}; completes once its text has
   * arrived.
   */
  static CompletableFuture<DocEditor> open(URI http, String doc, boolean create, EditMeter meter) {
    ShareDbEditor editor = new ShareDbEditor(doc, create, meter);
    URI ws = URI.create("ws" + http.toString().substring(4)).resolve("/");
    return editor.socket.open(ws, Map.of(), null).thenCompose(connected -> editor.opened);
  }

  /** Completes once the document's text has arrived. */
  CompletableFuture<DocEditor> opened() {
    return opened;
  }

  // ---------------------------------------------------------------------------------------------
  // Editing

  @Override
  public synchronized boolean edit(Function<String, TextOperation> change) {
    if (!based || closed) {
      return false;
    }
    TextOperation op = change.apply(text);
    text = op.apply(text);
    OtClient.Outgoing out = ot.applyClient(op);
    ot = out.state();
    out.send().ifPresent(this::submit);
    return true;
  }

  @Override
  public synchronized String text() {
    return text;
  }

  @Override
  public synchronized boolean pending() {
    return !(ot instanceof OtClient.Synchronized);
  }

  @Override
  public void close() {
    synchronized (this) {
      closed = true;
    }
    if (socket != null) {
      socket.close();
    }
  }

  /** Sends {@code op}, which applies to {@link #serverText} at {@link #version}. */
  private void submit(TextOperation op) {
    inFlight = ++seq;
    ObjectNode frame = request("op").put("v", version).put("seq", inFlight);
    frame.set("op", Json0.components(op, serverText));
    meter.submitted(id(src, inFlight));
    send(frame);
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  @Override
  public void onFrame(String frame) {
    JsonNode message;
    try {
      message = JSON.readTree(frame);
    } catch (IOException e) {
      return;
    }
    synchronized (this) {
      if (closed) {
        return;
      }
      switch (message.path("a").asText()) {
        case "init" -> onInit(message);
        case "s" -> onSnapshot(message);
        case "op" -> onOp(message);
        default -> {}
      }
    }
  }

  @Override
  public void onClosed(int code, String reason) {
    synchronized (this) {
      if (!closed) {
        meter.lost();
      }
      closed = true;
    }
    opened.completeExceptionally(new IllegalStateException("ShareDB closed the connection: " + code + " " + reason));
  }

  private void onInit(JsonNode message) {
    src = message.path("id").asText();
    if (!create) {
      subscribe();
      return;
    }
    // The create is this connection's first operation: sequence number 1, version 0.
    ObjectNode frame = request("op").put("v", 0).put("seq", ++seq);
    frame.putObject("create").put("type", "json0").putObject("data").put(Json0.FIELD, "");
    send(frame);
  }

  private void onSnapshot(JsonNode message) {
    JsonNode snapshot = message.path("data");
    if (message.has("error") || !snapshot.path("data").path(Json0.FIELD).isTextual()) {
      fail("cannot open " + doc + ": " + message);
      return;
    }
    version = snapshot.path("v").asLong();
    serverText = snapshot.path("data").path(Json0.FIELD).asText();
    text = serverText;
    ot = OtClient.synced();
    inFlight = 0;
    based = true;
    ahead.headMap(version).clear();
    drain();
    opened.complete(this);
  }

  private void onOp(JsonNode message) {
    long v = message.path("v").asLong();
    if (message.has("error")) {
      if (!opened.isDone()) {
        fail("cannot create " + doc + ": " + message);
      } else if (message.path("seq").asLong() == inFlight) {
        resync();
      }
      return;
    }
    if (message.has("op")) {
      offer(new Remote(v, id(message.path("src").asText(), message.path("seq").asLong()), message.get("op")));
    } else if (src.equals(message.path("src").asText())) {
      if (create && message.path("seq").asLong() == 1 && !opened.isDone()) {
        subscribe();
      } else {
        offer(new Ack(v, message.path("seq").asLong()));
      }
    }
  }

  private void offer(Step step) {
    if (based && step.v() < version) {
      return;
    }
    if (step instanceof Remote) {
      ahead.put(step.v(), step);
    } else {
      ahead.putIfAbsent(step.v(), step);
    }
    drain();
  }

  private void drain() {
    while (based && !ahead.isEmpty() && ahead.firstKey() <= version) {
      Step next = ahead.pollFirstEntry().getValue();
      if (next.v() < version) {
        continue;
      }
      try {
        apply(next);
      } catch (InvalidOperationException | IllegalArgumentException e) {
        resync();
        return;
      }
    }
  }

  private void apply(Step step) {
    if (step instanceof Ack ack) {
      if (ack.seq() != inFlight) {
        throw new IllegalArgumentException("an acknowledgement of " + ack.seq() + " while " + inFlight + " is in flight");
      }
      serverText = ot.inFlight().orElseThrow().apply(serverText);
      version++;
      meter.acknowledged(id(src, inFlight));
      inFlight = 0;
      OtClient.Outgoing out = ot.serverAck();
      ot = out.state();
      out.send().ifPresent(this::submit);
      return;
    }
    Remote remote = (Remote) step;
    TextOperation op = Json0.operation(remote.op(), serverText);
    OtClient.Incoming in = ot.applyServer(op);
    text = in.apply().apply(text);
    serverText = op.apply(serverText);
    ot = in.state();
    version++;
    meter.arrived(remote.id());
  }

  /**
   * Takes the server's text again: subscribing anew returns the snapshot (ShareDB replaces the
   * old subscription), and what arrives meanwhile below its version is dropped.
   */
  private void resync() {
    meter.resynced();
    based = false;
    inFlight = 0;
    subscribe();
  }

  private void subscribe() {
    send(request("s"));
  }

  private void fail(String why) {
    opened.completeExceptionally(new IllegalStateException(why));
  }

  private ObjectNode request(String action) {
    return JSON.createObjectNode().put("a", action).put("c", COLLECTION).put("d", doc);
  }

  private void send(ObjectNode frame) {
    try {
      wire.accept(JSON.writeValueAsString(frame));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** An operation's id in {@link EditMeter}: ShareDB names it by its source and sequence number. */
  private static String id(String src, long seq) {
    return src + ":" + seq;
  }
}
