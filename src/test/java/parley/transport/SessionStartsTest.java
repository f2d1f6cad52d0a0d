package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class SessionStartsTest {

  private final AtomicLong now = new AtomicLong();
  private final AtomicInteger refused = new AtomicInteger();
  private final SessionStarts starts = new SessionStarts(2, Duration.ofSeconds(10), now::get, refused::incrementAndGet);

  @Test
  void atTheLimitAStartIsRefusedUntilOneIsDone() {
    SessionStarts.Start first = starts.tryStart();
    assertNotNull(first);
    assertNotNull(starts.tryStart());
    assertNull(starts.tryStart());
    assertEquals(1, refused.get());

    first.done();
    assertNotNull(starts.tryStart());
    assertEquals(2, starts.starting());
  }

  @Test
  void givingAStartBackTwiceFreesOnePlace() {
    SessionStarts.Start first = starts.tryStart();
    starts.tryStart();
    first.done();
    first.done();
    assertNotNull(starts.tryStart());
    assertNull(starts.tryStart(), "the second done freed nothing more");
  }

  @Test
  void aStartNobodyEndsStopsCountingAfterTheExpiry() {
    starts.tryStart();
    now.addAndGet(Duration.ofSeconds(5).toNanos());
    starts.tryStart();
    assertNull(starts.tryStart(), "neither has expired");

    now.addAndGet(Duration.ofSeconds(6).toNanos());
    assertNotNull(starts.tryStart(), "the first, 11 s old, no longer counts");
    assertNull(starts.tryStart(), "the second, 6 s old, still does");
  }
}
