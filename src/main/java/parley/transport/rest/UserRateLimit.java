package parley.transport.rest;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.time.Duration;
import java.util.function.LongSupplier;
import parley.transport.TokenBucket;

/**
 * The request rate of REST clients, per user and per node: the WebSocket's per-connection token
 * bucket ({@code parley.chat.rate-per-second}, {@code rate-burst}), kept across calls, since a
 * REST call is a one-shot session of its own and would otherwise never run out. A user idle for
 * a minute is forgotten (a full bucket again), which bounds the memory to the recently active.
 * Per node: behind a balancer that spreads one user's calls over N nodes the user gets N times
 * the rate, as with N sockets.
 */
final class UserRateLimit {

  private final double perSecond;
  private final double burst;
  private final LongSupplier nanoTime;
  private final Cache<String, TokenBucket> buckets;

  UserRateLimit(int perSecond, int burst, LongSupplier nanoTime) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.nanoTime = nanoTime;
    this.buckets =
        Caffeine.newBuilder()
            .expireAfterAccess(Duration.ofMinutes(1))
            .ticker(nanoTime::getAsLong)
            .build();
  }

  /** Takes a token for one call of {@code userId}: zero if admitted, else how long until one is there. */
  Duration admit(String userId) {
    return buckets.get(userId, u -> new TokenBucket(perSecond, burst, nanoTime.getAsLong())).take(nanoTime.getAsLong());
  }
}
