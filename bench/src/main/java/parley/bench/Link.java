package parley.bench;

import java.net.URI;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One client connection of the load tool to a server under test, speaking that server's
 * protocol: join a room, publish a message into it, hear the room's messages and the
 * acknowledgements of its own. Subclasses turn these into frames and back; everything the
 * scenarios measure goes through {@link Listener}, the same for every server.
 */
abstract class Link implements LeanSocket.Handler {

  /** What a connection hears; called on client threads, so it must be quick. */
  interface Listener {
    /** A published message (of any connection) reached this one. */
    void delivered(long stamp);

    /** The server acknowledged a publish of this connection. */
    void acked(long stamp);

    /** The server refused a publish, or sent an error that answers no set-up request. */
    void failed(String code);

    /** The connection ended without the tool closing it. */
    void lost(int code, String reason);
  }

  protected final Listener listener;
  protected final LeanSocket socket = new LeanSocket(this);
  /** Completes when the connection can join and publish. */
  protected final CompletableFuture<Link> ready = new CompletableFuture<>();

  private final Map<Long, CompletableFuture<Void>> setup = new ConcurrentHashMap<>();
  private final AtomicLong setupIds = new AtomicLong();
  private volatile boolean closing;

  protected Link(Listener listener) {
    this.listener = listener;
  }

  /** Joins {@code room}; the first member creates it where the protocol has rooms to create. */
  abstract CompletableFuture<Void> join(String room, boolean create);

  /** Publishes {@code body} to {@code room}; its acknowledgement will carry {@code stamp}. */
  abstract void publish(String room, long stamp, String body);

  CompletableFuture<Void> close() {
    closing = true;
    return socket.close();
  }

  protected CompletableFuture<Link> open(URI uri, Map<String, String> headers, String subprotocol) {
    return socket.open(uri, headers, subprotocol).thenCompose(opened -> ready);
  }

  /** A fresh id for a set-up request; ids below {@link Payload#STAMP_FLOOR} are set-up ids. */
  protected long setupRequest(CompletableFuture<Void> answer) {
    long id = setupIds.incrementAndGet();
    setup.put(id, answer);
    return id;
  }

  /**
   * The server answered request {@code id}: a set-up request, or a publish whose id is its
   * stamp. {@code error} is null for success, else the server's error code.
   */
  protected void answered(long id, String error) {
    if (id < Payload.STAMP_FLOOR) {
      CompletableFuture<Void> answer = setup.remove(id);
      if (answer != null) {
        if (error == null) {
          answer.complete(null);
        } else {
          answer.completeExceptionally(new IllegalStateException("refused: " + error));
        }
      }
    } else if (error == null) {
      listener.acked(id);
    } else {
      listener.failed(error);
    }
  }

  @Override
  public void onClosed(int code, String reason) {
    IllegalStateException gone = new IllegalStateException("closed: " + code + " " + reason);
    ready.completeExceptionally(gone);
    setup.values().forEach(answer -> answer.completeExceptionally(gone));
    if (!closing) {
      listener.lost(code, reason);
    }
  }

  /** The decimal number in {@code text} from {@code from} up to the first non-digit. */
  protected static long number(String text, int from) {
    long value = 0;
    for (int i = from; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c < '0' || c > '9') {
        break;
      }
      value = value * 10 + (c - '0');
    }
    return value;
  }
}
