package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class PulseTest {

  private static ActorTestKit testKit;

  @BeforeAll
  static void start() {
    testKit = ActorTestKit.create(
        "PulseTest",
        ConfigFactory.parseString("parley.chat.heartbeat-interval = 500ms\nparley.chat.session-renew-interval = 1s")
            .withFallback(ConfigFactory.parseResources("chat.conf"))
            .resolve());
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  @Test
  void theResolutionIsATenthOfTheShortestPeriodWithinBounds() {
    assertEquals(Duration.ofSeconds(1), Pulse.resolutionFor(Duration.ofSeconds(30), Duration.ofSeconds(20)));
    assertEquals(Duration.ofMillis(50), Pulse.resolutionFor(Duration.ofMillis(500), Duration.ofSeconds(1)));
    assertEquals(Duration.ofMillis(10), Pulse.resolutionFor(Duration.ofMillis(20), Duration.ofSeconds(1)));
    assertEquals(Duration.ofMillis(50), Pulse.get(testKit.system()).resolution());
  }

  @Test
  void aBeatComesWhenDueAndACancelledOneNever() {
    Pulse pulse = Pulse.get(testKit.system());
    TestProbe<String> probe = testKit.createTestProbe();
    long scheduled = System.nanoTime();
    pulse.schedule(probe.getRef(), "due", Duration.ofMillis(300).toNanos());
    pulse.schedule(probe.getRef(), "cancelled", Duration.ofMillis(100).toNanos()).cancel();
    probe.expectMessage(Duration.ofSeconds(5), "due");
    long tookMs = (System.nanoTime() - scheduled) / 1_000_000;
    assertTrue(tookMs >= 250, "not before it was due (one resolution early at most): " + tookMs + " ms");
    probe.expectNoMessage(Duration.ofMillis(300));
  }

  @Test
  void aBeatBeyondOneTurnComesEarlyNeverLate() {
    Pulse pulse = Pulse.get(testKit.system());
    TestProbe<String> probe = testKit.createTestProbe();
    // 64 slots of 50 ms: one turn is 3.2 s; a beat set an hour ahead comes within the turn.
    pulse.schedule(probe.getRef(), "early", Duration.ofHours(1).toNanos());
    probe.expectMessage(Duration.ofSeconds(10), "early");
  }
}
