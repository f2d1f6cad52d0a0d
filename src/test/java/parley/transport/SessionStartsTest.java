package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class SessionStartsTest {

  private final AtomicLong now = new AtomicLong();
  private final AtomicInteger refused = new AtomicInteger();

  private SessionStarts starts(int limit) {
    return new SessionStarts(limit, Duration.ofSeconds(10), now::get, refused::incrementAndGet);
  }

  @Test
  void atTheNodesLimitAStartIsRefusedUntilOneIsDone() {
    SessionStarts starts = starts(2);
    SessionStarts.Start first = starts.tryStart("a");
    assertNotNull(first);
    assertNotNull(starts.tryStart("b"));
    assertNull(starts.tryStart("c"));
    assertEquals(1, refused.get(), "counted");

    first.done();
    assertNotNull(starts.tryStart("c"));
  }

  @Test
  void oneUserHoldsAtMostTheirShareWhateverTheNodeHasLeft() {
    SessionStarts starts = starts(100);
    List<SessionStarts.Start> alice = new ArrayList<>();
    for (int i = 0; i < SessionStarts.PER_USER; i++) {
      alice.add(starts.tryStart("alice"));
    }
    assertNull(starts.tryStart("alice"));
    assertNotNull(starts.tryStart("bob"), "others still get in");

    alice.get(0).done();
    assertNotNull(starts.tryStart("alice"));
  }

  @Test
  void givingAStartBackTwiceFreesOnePlace() {
    SessionStarts starts = starts(2);
    SessionStarts.Start first = starts.tryStart("a");
    starts.tryStart("a");
    first.done();
    first.done();
    assertNotNull(starts.tryStart("a"));
    assertNull(starts.tryStart("b"), "the second done freed nothing more");
  }

  @Test
  void aStartNobodyEndsStopsCountingAfterTheExpiryForTheNodeAndItsUser() {
    SessionStarts starts = starts(2);
    starts.tryStart("a");
    now.addAndGet(Duration.ofSeconds(5).toNanos());
    starts.tryStart("b");
    assertNull(starts.tryStart("c"), "neither has expired");

    now.addAndGet(Duration.ofSeconds(6).toNanos());
    assertNotNull(starts.tryStart("c"), "a's, 11 s old, no longer counts");
    assertNull(starts.tryStart("d"), "b's, 6 s old, still does");

    SessionStarts perUser = starts(100);
    for (int i = 0; i < SessionStarts.PER_USER; i++) {
      perUser.tryStart("eve");
    }
    assertNull(perUser.tryStart("eve"));
    now.addAndGet(Duration.ofSeconds(11).toNanos());
    assertNotNull(perUser.tryStart("eve"), "her abandoned starts expired");
  }
}
