package parley.transport.poll;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The poll's {@code timeout} parameter as docs/transports.md (Long-polling) describes it. */
class PollTimeoutTest {

  @Test
  void wholeSecondsOrMillisecondsWithTwentyFiveSecondsWhenLeftOut() {
    assertEquals(Duration.ofSeconds(25), PollRoute.parseTimeout(Optional.empty()));
    assertEquals(Duration.ofSeconds(25), PollRoute.parseTimeout(Optional.of("25")));
    assertEquals(Duration.ofSeconds(25), PollRoute.parseTimeout(Optional.of("25s")));
    assertEquals(Duration.ofMillis(500), PollRoute.parseTimeout(Optional.of("500ms")));
    assertEquals(Duration.ZERO, PollRoute.parseTimeout(Optional.of("0")));
    assertEquals(Duration.ofSeconds(5), PollRoute.parseTimeout(Optional.of("0000000000000000000005s")));
  }

  @Test
  void anythingOverSixtySecondsIsClampedHoweverManyDigits() {
    for (String over : new String[] {"61", "3600000ms", "9999999", "123456789012345678901234567890s"}) {
      assertEquals(Duration.ofSeconds(60), PollRoute.parseTimeout(Optional.of(over)), over);
    }
  }

  @Test
  void anythingElseIsRefused() {
    for (String bad : new String[] {"soon", "-1", "1.5", "5m", "", "1e3"}) {
      assertThrows(IllegalArgumentException.class, () -> PollRoute.parseTimeout(Optional.of(bad)), bad);
    }
  }
}
