package parley.limits;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * A rate per key (a user, say) on this node: one {@link TokenBucket} each, kept across calls
 * and connections. A key idle for a minute is forgotten (a full bucket again), which bounds the
 * memory to the recently active. Per node: behind a balancer that spreads one user's calls over
 * N nodes the user gets N times the rate.
 */
public final class RateByKey {

  private final double perSecond;
  private final double burst;
  private final LongSupplier nanoTime;
  private final Cache<String, TokenBucket> buckets;

  public RateByKey(double perSecond, double burst, LongSupplier nanoTime) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.nanoTime = nanoTime;
    this.buckets =
        Caffeine.newBuilder()
            .expireAfterAccess(Duration.ofMinutes(1))
            .ticker(nanoTime::getAsLong)
            .build();
  }

  /** Takes a token for {@code key}: zero if admitted, else how long until one is there. */
  public Duration admit(String key) {
    return buckets.get(key, k -> new TokenBucket(perSecond, burst, nanoTime.getAsLong())).take(nanoTime.getAsLong());
  }
}
