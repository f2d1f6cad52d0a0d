package parley.bench;

import java.net.URI;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import parley.client.ParleyClient;

/**
 * One client of the reconnect storm: a member of one room that follows it, and when its
 * connection drops, reconnects the way docs/protocol.md asks of a client: after a random
 * delay with exponential backoff ("full jitter"), to one of the nodes still serving, and
 * resumes from the last seq it saw. It counts the seqs it misses or gets twice.
 */
final class StormClient implements LeanSocket.Handler {

  private static final String EVENT = "{\"type\":\"event\"";
  private static final String OK = "{\"type\":\"ok\"";
  private static final String ERROR = "{\"type\":\"error\"";
  private static final String WELCOME = "{\"type\":\"welcome\"";
  private static final String RESUME_COMPLETE = "{\"type\":\"resume_complete\"";
  private static final String PING = "{\"type\":\"ping\"}";
  private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread thread = new Thread(r, "storm-backoff");
    thread.setDaemon(true);
    return thread;
  });

  /** Nodes a reconnect may go to, and how a client backs off; shared by all clients. */
  record Reconnect(List<URI> nodes, long firstDelayMillis, long maxDelayMillis) {}

  private final String user;
  private final String token;
  private final String room;
  private final AtomicInteger attempts = new AtomicInteger();
  private volatile LeanSocket socket;
  private volatile Reconnect reconnect;
  private volatile boolean closing;
  private final CompletableFuture<Void> joined = new CompletableFuture<>();
  private volatile CompletableFuture<Void> resumed = new CompletableFuture<>();
  private long lastSeq;
  private long gaps;
  private long duplicates;
  private volatile long welcomedAt;
  private volatile long resumedAt;
  private volatile int reconnects;
  /** Whether a resume since the last reset was answered {@code pending} (the user's entity had not answered). */
  private volatile boolean pending;
  private volatile String lastError = "";

  StormClient(String user, String token, String room) {
    this.user = user;
    this.token = token;
    this.room = room;
  }

  /** Connects to {@code node}, resumes, joins the room; completes once joined. */
  CompletableFuture<Void> start(URI node) {
    open(node);
    return resumed.thenCompose(ok -> {
      socket.send("{\"type\":\"join\",\"id\":\"join\",\"room\":\"" + room + "\"}");
      return joined;
    });
  }

  /** Connects to {@code node} again as the same user and resumes; completes once resumed. */
  CompletableFuture<Void> resume(URI node) {
    closing = false;
    open(node);
    return resumed;
  }

  /** From now on a dropped connection reconnects to {@code nodes}. */
  void reconnectTo(Reconnect reconnect) {
    this.reconnect = reconnect;
  }

  private void open(URI node) {
    resumed = new CompletableFuture<>();
    LeanSocket fresh = new LeanSocket(this);
    socket = fresh;
    fresh.open(Target.webSocketOf(node), Map.of("Authorization", "Bearer " + token), ParleyClient.SUBPROTOCOL);
  }

  @Override
  public void onFrame(String text) {
    if (text.startsWith(EVENT)) {
      int at = text.indexOf("\"seq\":");
      if (at > 0) {
        seen(Link.number(text, at + 6));
      }
    } else if (text.startsWith(OK)) {
      if (text.contains("\"id\":\"join\"")) {
        joined.complete(null);
      } else if (text.contains("\"id\":\"resume\"")) {
        if (text.contains("\"pending\":true")) {
          pending = true;
        } else {
          resumedNow();
        }
      }
    } else if (text.startsWith(RESUME_COMPLETE)) {
      resumedNow();
    } else if (text.equals(PING)) {
      socket.send("{\"type\":\"pong\"}");
    } else if (text.startsWith(WELCOME)) {
      welcomedAt = System.nanoTime();
      long from;
      synchronized (this) {
        from = lastSeq;
      }
      socket.send(from == 0
          ? "{\"type\":\"resume\",\"id\":\"resume\"}"
          : "{\"type\":\"resume\",\"id\":\"resume\",\"rooms\":{\"" + room + "\":" + from + "}}");
    } else if (text.startsWith(ERROR)) {
      lastError = text;
      if (text.contains("\"id\":\"resume\"") || text.contains("\"id\":\"join\"")) {
        // A resume or join that failed (its room or user entity still moving): start over;
        // the close reaches onClosed, which reconnects.
        socket.close();
      }
    }
  }

  private void resumedNow() {
    resumedAt = System.nanoTime();
    attempts.set(0);
    resumed.complete(null);
  }

  private synchronized void seen(long seq) {
    if (lastSeq > 0 && seq > lastSeq + 1) {
      gaps += seq - lastSeq - 1;
    } else if (seq <= lastSeq) {
      duplicates++;
    }
    lastSeq = Math.max(lastSeq, seq);
  }

  @Override
  public void onClosed(int code, String reason) {
    if (!closing) {
      dropped();
    }
  }

  private void dropped() {
    Reconnect plan = reconnect;
    if (plan == null || closing) {
      joined.completeExceptionally(new IllegalStateException(user + " lost its connection during set-up: " + lastError));
      return;
    }
    int attempt = attempts.getAndIncrement();
    long ceiling = Math.min(plan.maxDelayMillis(), plan.firstDelayMillis() << Math.min(attempt, 20));
    long delay = ThreadLocalRandom.current().nextLong(ceiling + 1);
    URI node = plan.nodes().get(ThreadLocalRandom.current().nextInt(plan.nodes().size()));
    TIMER.schedule(() -> {
      reconnects++;
      open(node);
    }, delay, TimeUnit.MILLISECONDS);
  }

  /** Forgets what was counted so far: only what happens from now on is judged. */
  synchronized void resetCounts() {
    gaps = 0;
    duplicates = 0;
    reconnects = 0;
    pending = false;
  }

  boolean pending() {
    return pending;
  }

  synchronized long lastSeq() {
    return lastSeq;
  }

  synchronized long gaps() {
    return gaps;
  }

  synchronized long duplicates() {
    return duplicates;
  }

  int reconnects() {
    return reconnects;
  }

  long welcomedAt() {
    return welcomedAt;
  }

  long resumedAt() {
    return resumedAt;
  }

  String room() {
    return room;
  }

  CompletableFuture<Void> close() {
    closing = true;
    return socket.close();
  }
}
