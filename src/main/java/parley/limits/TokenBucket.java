package parley.limits;

import java.time.Duration;

/**
 * A request rate: {@code perSecond} tokens a second, up to {@code burst} saved up, one per
 * request. A WebSocket session keeps one for its connection; {@link RateByKey} one per user.
 * Times are {@link System#nanoTime()} readings passed in, so it is tested without a clock.
 */
public final class TokenBucket {

  private final double perSecond;
  private final double burst;
  private double tokens;
  private long at;
  private boolean wasFull;

  public TokenBucket(double perSecond, double burst, long now) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
    this.at = now;
  }

  /** Takes a token: zero if there was one, else how long until there is. */
  public synchronized Duration take(long now) {
    tokens = Math.min(burst, tokens + (now - at) * perSecond / 1e9);
    at = now;
    wasFull = tokens >= burst;
    if (tokens >= 1) {
      tokens -= 1;
      return Duration.ZERO;
    }
    return Duration.ofNanos((long) Math.ceil((1 - tokens) / perSecond * 1e9));
  }

  /** Whether the last {@link #take} found the whole burst saved up: the client had been quiet. */
  public synchronized boolean wasFull() {
    return wasFull;
  }
}
