package parley.transport;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * How many WebSocket and SSE sessions this node lets start at once
 * ({@code parley.chat.max-starting-sessions}), and one user of them ({@value #PER_USER}). A
 * session is starting from its admission (its token checked) until the user's entity has
 * registered it, which may mean recovering that entity from the journal: the bulk of what an
 * open costs. A connection beyond either limit is answered 503 {@code unavailable} with {@code
 * Retry-After}, and its client backs off and comes again.
 *
 * <p>Why: when a node dies, its clients all reconnect to the survivors within seconds. Started
 * all at once, their entity recoveries queue behind each other on cores the survivors share
 * with everything else they do, the cluster's heartbeats included; a survivor whose heartbeats
 * are late is taken for unreachable and downed (docs/benchmarks.md, the reconnect storm). A
 * node that starts only as many sessions as it can serve keeps answering its peers.
 *
 * <p>A start that never becomes a session because its client left before the upgrade was
 * answered stops counting after {@code expiry}. Until then it holds a place, so one user can
 * hold at most {@value #PER_USER} places that way, not the node's all.
 */
public final class SessionStarts {

  /** Starting sessions of one user: several devices coming back at once, and no more. */
  static final int PER_USER = 4;

  private final int limit;
  private final long expiryNanos;
  private final LongSupplier nanoTime;
  private final Runnable onRefused;
  /** Each start by when it began (System.nanoTime()); guarded by this. */
  private final Map<Start, Long> starting = new HashMap<>();
  /** Starts by user; guarded by this. */
  private final Map<String, Integer> byUser = new HashMap<>();

  /** {@code onRefused} runs for each start refused (the node's metrics count them). */
  public SessionStarts(int limit, Duration expiry, LongSupplier nanoTime, Runnable onRefused) {
    this.limit = limit;
    this.expiryNanos = expiry.toNanos();
    this.nanoTime = nanoTime;
    this.onRefused = onRefused;
  }

  /** A start for {@code user}, or null when the node or the user is at the limit. */
  public Start tryStart(String user) {
    Start start = take(user);
    if (start == null) {
      onRefused.run();
    }
    return start;
  }

  private synchronized Start take(String user) {
    long now = nanoTime.getAsLong();
    if (full(user)) {
      starting.entrySet().removeIf(e -> now - e.getValue() > expiryNanos && forgetUser(e.getKey()));
      if (full(user)) {
        return null;
      }
    }
    Start start = new Start(user);
    starting.put(start, now);
    byUser.merge(user, 1, Integer::sum);
    return start;
  }

  private boolean full(String user) {
    return starting.size() >= limit || byUser.getOrDefault(user, 0) >= PER_USER;
  }

  private synchronized void done(Start start) {
    if (starting.remove(start) != null) {
      forgetUser(start);
    }
  }

  /** Takes {@code start} off its user's count; true, for removeIf. */
  private boolean forgetUser(Start start) {
    byUser.computeIfPresent(start.user, (u, n) -> n <= 1 ? null : n - 1);
    return true;
  }

  /** One session's place among those starting; {@link #done} gives it back (more than once is harmless). */
  public final class Start {
    private final String user;

    private Start(String user) {
      this.user = user;
    }

    public void done() {
      SessionStarts.this.done(this);
    }
  }
}
