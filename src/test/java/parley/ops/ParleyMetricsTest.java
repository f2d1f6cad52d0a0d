package parley.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** What the features report shows up in the Prometheus text that /metrics serves. */
class ParleyMetricsTest {

  private static final ActorTestKit testKit =
      ActorTestKit.create(ConfigFactory.parseString("pekko.actor.provider = local"));

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  @Test
  void countsConnectionsWhileTheyAreOpen() throws Exception {
    ParleyMetrics metrics = ParleyMetrics.get(testKit.system());
    CompletableFuture<Void> poll = new CompletableFuture<>();
    metrics.countConnection("long-poll", poll);
    var stream =
        metrics
            .countConnection("sse", Source.<String>maybe())
            .toMat(Sink.ignore(), Keep.both())
            .run(testKit.system());
    assertEquals(1.0, value(metrics, "parley_connections{transport=\"long-poll\"}"));
    assertEquals(1.0, value(metrics, "parley_connections{transport=\"sse\"}"));

    poll.complete(null);
    stream.first().complete(Optional.empty());
    stream.second().toCompletableFuture().get(5, TimeUnit.SECONDS);
    assertEquals(0.0, value(metrics, "parley_connections{transport=\"long-poll\"}"));
    // The stream's end reaches the sink and the counter on different threads.
    awaitValue(metrics, "parley_connections{transport=\"sse\"}", 0.0);
  }

  @Test
  void recordsJournalWritesMessagesAndDeliveries() {
    ParleyMetrics metrics = ParleyMetrics.get(testKit.system());
    double sent = value(metrics, "parley_messages_sent_total");
    metrics.persisted("room", TimeUnit.MILLISECONDS.toNanos(7), 3);
    metrics.persisted("room", TimeUnit.MILLISECONDS.toNanos(300), 0);
    metrics.delivered();
    metrics.outboundOverflow();
    metrics.heartbeatTimeout();
    metrics.shardsCounted("room", 4, 17, 2);

    assertEquals(sent + 3, value(metrics, "parley_messages_sent_total"));
    assertTrue(value(metrics, "parley_messages_delivered_total") >= 1);
    assertTrue(value(metrics, "parley_outbound_overflows_total") >= 1);
    assertTrue(value(metrics, "parley_heartbeat_timeouts_total") >= 1);
    assertEquals(2.0, value(metrics, "parley_persist_seconds_count{entity=\"room\"}"));
    assertEquals(1.0, value(metrics, "parley_persist_seconds_bucket{entity=\"room\",le=\"0.01\"}"), "7 ms falls in the 10 ms bucket");
    assertEquals(4.0, value(metrics, "parley_shards{type=\"room\"}"));
    assertEquals(17.0, value(metrics, "parley_entities{type=\"room\"}"));
    assertEquals(2.0, value(metrics, "parley_shards_handed_off_total{type=\"room\"}"));
  }

  private static void awaitValue(ParleyMetrics metrics, String sample, double expected) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (value(metrics, sample) != expected) {
      if (System.nanoTime() > deadline) {
        assertEquals(expected, value(metrics, sample), sample);
      }
      Thread.sleep(10);
    }
  }

  /** The value of the sample whose name and labels start the line, from the scrape text. */
  private static double value(ParleyMetrics metrics, String sample) {
    for (String line : metrics.registry().scrape().split("\n")) {
      if (line.startsWith(sample + " ")) {
        return Double.parseDouble(line.substring(sample.length() + 1).trim());
      }
    }
    throw new AssertionError("no sample " + sample + " in\n" + metrics.registry().scrape());
  }
}
