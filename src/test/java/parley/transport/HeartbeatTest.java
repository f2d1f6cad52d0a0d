package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class HeartbeatTest {

  private static final long START = 1_000_000_000L;
  private static final Duration INTERVAL = Duration.ofMillis(500);
  private static final Duration TIMEOUT = Duration.ofSeconds(1);

  private static long at(long millisAfterStart) {
    return START + Duration.ofMillis(millisAfterStart).toNanos();
  }

  @Test
  void aClientNeverHeardFromIsGoneAfterIntervalPlusTimeout() {
    Heartbeat heartbeat = new Heartbeat(INTERVAL, TIMEOUT, START);

    assertEquals(Duration.ofMillis(1500), heartbeat.remaining(START));
    assertFalse(heartbeat.expired(at(1499)));
    assertTrue(heartbeat.expired(at(1500)));
    assertEquals(Duration.ZERO, heartbeat.remaining(at(4000)), "never negative");
  }

  @Test
  void everyFrameHeardMovesTheDeadline() {
    Heartbeat heartbeat = new Heartbeat(INTERVAL, TIMEOUT, START);

    heartbeat.heard(at(1400));
    assertFalse(heartbeat.expired(at(2000)), "the old deadline has passed, the new one has not");
    assertEquals(Duration.ofMillis(900), heartbeat.remaining(at(2000)));
    assertTrue(heartbeat.expired(at(2900)));
  }

  @Test
  void refusesANonPositiveInterval() {
    assertThrows(IllegalArgumentException.class, () -> new Heartbeat(Duration.ZERO, TIMEOUT, START));
    assertThrows(IllegalArgumentException.class, () -> new Heartbeat(INTERVAL, Duration.ofMillis(-1), START));
  }
}
