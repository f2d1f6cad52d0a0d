package parley.limits;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class TokenBucketTest {

  private static final long SECOND = 1_000_000_000L;

  @Test
  void aFullBucketIsSeenAsSuchUntilItIsSpent() {
    TokenBucket bucket = new TokenBucket(1, 2, 0);

    assertEquals(Duration.ZERO, bucket.take(0));
    assertTrue(bucket.wasFull(), "nothing taken before");
    assertEquals(Duration.ZERO, bucket.take(0));
    assertFalse(bucket.wasFull());
    assertEquals(Duration.ofSeconds(1), bucket.take(0), "empty: one token a second");
    assertFalse(bucket.wasFull());

    assertEquals(Duration.ZERO, bucket.take(5 * SECOND));
    assertTrue(bucket.wasFull(), "quiet long enough to refill the whole burst, and no more");
    assertEquals(Duration.ZERO, bucket.take(5 * SECOND));
    assertEquals(Duration.ofSeconds(1), bucket.take(5 * SECOND));
  }
}
