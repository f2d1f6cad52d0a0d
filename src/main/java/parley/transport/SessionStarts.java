package parley.transport;

import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * How many WebSocket and SSE sessions this node lets start at once
 * ({@code parley.chat.max-starting-sessions}). A session is starting from its admission until
 * the user's entity has registered it (which may mean recovering that entity from the journal:
 * the bulk of what an open costs), or until it ends. A connection beyond the limit is answered
 * 503 {@code unavailable} with {@code Retry-After} before its token is checked, and its client
 * backs off and comes again.
 *
 * <p>Why: when a node dies, its clients all reconnect to the survivors within seconds. Started
 * all at once, their entity recoveries queue behind each other on cores the survivors share
 * with everything else they do, the cluster's heartbeats included; a survivor whose heartbeats
 * are late is taken for unreachable and downed (docs/benchmarks.md, the reconnect storm). A
 * node that starts only as many sessions as it can serve keeps answering its peers.
 *
 * <p>A start nobody ends (the client went away between its admission and the upgrade's answer,
 * so no session was made) stops counting after {@code expiry}.
 */
public final class SessionStarts {

  private final int limit;
  private final long expiryNanos;
  private final LongSupplier nanoTime;
  private final Runnable onRefused;
  /** Each start by when it began (System.nanoTime()). */
  private final ConcurrentHashMap<Start, Long> starting = new ConcurrentHashMap<>();

  /** {@code onRefused} runs for each start refused (the node's metrics count them). */
  public SessionStarts(int limit, Duration expiry, LongSupplier nanoTime, Runnable onRefused) {
    this.limit = limit;
    this.expiryNanos = expiry.toNanos();
    this.nanoTime = nanoTime;
    this.onRefused = onRefused;
  }

  /**
   * A start, or null when {@code limit} sessions are starting. The limit is approximate: two
   * threads admitting at the same moment may both pass the last free place.
   */
  public Start tryStart() {
    long now = nanoTime.getAsLong();
    if (starting.size() >= limit) {
      starting.values().removeIf(began -> now - began > expiryNanos);
      if (starting.size() >= limit) {
        onRefused.run();
        return null;
      }
    }
    Start start = new Start();
    starting.put(start, now);
    return start;
  }

  public int starting() {
    return starting.size();
  }

  /** One session's place among those starting; {@link #done} gives it back (more than once is harmless). */
  public final class Start {
    private Start() {}

    public void done() {
      starting.remove(this);
    }
  }
}
