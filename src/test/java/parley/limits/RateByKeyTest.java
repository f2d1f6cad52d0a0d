package parley.limits;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class RateByKeyTest {

  private final AtomicLong now = new AtomicLong(1_000_000_000L);
  private final RateByKey limit = new RateByKey(2, 3, now::get);

  private void advance(Duration d) {
    now.addAndGet(d.toNanos());
  }

  @Test
  void aBurstIsAdmittedThenCallsWaitForTheRate() {
    for (int i = 0; i < 3; i++) {
      assertEquals(Duration.ZERO, limit.admit("alice"), "call " + i + " is within the burst");
    }
    Duration wait = limit.admit("alice");
    assertEquals(Duration.ofMillis(500), wait, "at 2 per second the next token is half a second away");

    advance(Duration.ofMillis(499));
    assertTrue(limit.admit("alice").compareTo(Duration.ZERO) > 0, "not yet");
    advance(Duration.ofMillis(1));
    assertEquals(Duration.ZERO, limit.admit("alice"));
  }

  @Test
  void usersHaveBucketsOfTheirOwn() {
    for (int i = 0; i < 3; i++) {
      limit.admit("alice");
    }
    assertTrue(limit.admit("alice").compareTo(Duration.ZERO) > 0);
    assertEquals(Duration.ZERO, limit.admit("bob"), "alice's calls do not cost bob");
  }

  @Test
  void aQuietUserGetsTheWholeBurstBack() {
    for (int i = 0; i < 3; i++) {
      limit.admit("alice");
    }
    advance(Duration.ofSeconds(10));
    for (int i = 0; i < 3; i++) {
      assertEquals(Duration.ZERO, limit.admit("alice"), "call " + i);
    }
    assertTrue(limit.admit("alice").compareTo(Duration.ZERO) > 0, "but no more than the burst");
  }
}
