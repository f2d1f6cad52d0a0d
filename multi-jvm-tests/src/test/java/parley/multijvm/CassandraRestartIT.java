package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import parley.app.Settings;
import parley.persistence.CassandraConnection;
import parley.persistence.CassandraSchema;
import parley.persistence.EmbeddedCassandra;
import parley.testing.TestCassandra;

/**
 * Scenario 6: Cassandra stops under load and comes back. While it is down, sends fail with a
 * retryable error ({@code unavailable} or {@code timeout}) and nothing half-written is stored
 * or pushed; once it is back, the cluster serves again by itself. This scenario stops and
 * starts a Cassandra of its own (the shared test Cassandra must stay up), with a two-node
 * cluster of its own on 127.0.0.6 and .7.
 */
@Timeout(value = 6, unit = TimeUnit.MINUTES)
class CassandraRestartIT {

  private static final Set<String> RETRYABLE = Set.of("unavailable", "timeout");

  @Test
  void sendsFailRetryablyWhileCassandraIsDownAndServiceComesBackByItself() throws Exception {
    Path buildDir = Path.of(System.getProperty("parley.build.dir", "target"));
    Settings.Embedded embedded =
        new Settings.Embedded(
            buildDir.resolve("multi-jvm-cassandra"),
            TestCassandra.NATIVE_PORT + 200,
            TestCassandra.NATIVE_PORT - 1800,
            buildDir.resolve("cassandra.classpath"),
            "512M",
            "",
            Duration.ofSeconds(180));
    EmbeddedCassandra cassandra = EmbeddedCassandra.start(embedded);
    try {
      createKeyspaces(cassandra.contactPoint());
      try (TestCluster cluster =
          new TestCluster(
              "cassandra-restart",
              List.of("127.0.0.6", "127.0.0.7"),
              Map.of(
                  "PARLEY_CASSANDRA_CONTACT_POINTS", "127.0.0.1:" + embedded.nativePort(),
                  "PARLEY_JOURNAL_KEYSPACE", "restart_j",
                  "PARLEY_SNAPSHOT_KEYSPACE", "restart_s",
                  "PARLEY_SBR_STABLE_AFTER", "4s"))) {
        cluster.ensureHealthy(2);
        Map<String, Integer> rooms = new LinkedHashMap<>();
        for (int i = 0; i < 3; i++) {
          rooms.put("outage-" + i, 2);
        }
        try (Traffic traffic = new Traffic("outage", cluster.runningExcept(Set.of()), rooms, 2, Duration.ofMillis(200)).start()) {
          for (String room : traffic.rooms()) {
            traffic.awaitAcks(room, 10, Duration.ofSeconds(30));
          }

          long downAt = System.nanoTime();
          cassandra.close();
          Measured.print("cassandra", "Cassandra stopped (SIGTERM) in", Measured.since(downAt));
          awaitEveryRoomFailing(traffic, downAt);
          Measured.print("cassandra", "every room's sends failing after", Measured.since(downAt));
          for (ClusterNode node : cluster.running()) {
            awaitNotReady(node);
          }

          long restartAt = System.nanoTime();
          cassandra = EmbeddedCassandra.start(embedded);
          long upAt = System.nanoTime();
          Measured.print("cassandra", "Cassandra restarted and accepting CQL in", Duration.ofNanos(upAt - restartAt));

          Map<String, Long> codes = traffic.failureCodes(downAt, upAt);
          assertFalse(codes.isEmpty(), "sends failed while Cassandra was down");
          assertTrue(RETRYABLE.containsAll(codes.keySet()), "only retryable errors while Cassandra was down: " + codes);
          Measured.print("cassandra", "errors while Cassandra was down, by code", codes);

          for (String room : traffic.rooms()) {
            traffic.awaitAcks(room, 5, Duration.ofSeconds(120));
            Measured.print("cassandra", room + " writable again after Cassandra was back", traffic.firstAckAfter(room, upAt).orElseThrow());
          }
          for (ClusterNode node : cluster.running()) {
            node.awaitReady(Duration.ofSeconds(60));
          }
          traffic.stop();
          Map<String, Long> lastSeqs = traffic.verify();
          traffic.awaitReaders(lastSeqs, Duration.ofSeconds(60));
          traffic.verifyPushesMatchHistory();
          Measured.print("cassandra", "messages acknowledged (all found once, in order)", traffic.acks().size());
          Measured.print("cassandra", "failed attempts after Cassandra was back, by code", traffic.failureCodes(upAt, System.nanoTime()));
        }
      }
    } finally {
      cassandra.close();
    }
  }

  /** A node that cannot reach Cassandra says so on /ready, so a load balancer skips it. */
  private static void awaitNotReady(ClusterNode node) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (ClusterNode.status(node.management("/ready")) == 200) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(node + " still reports ready 30 s after Cassandra stopped");
      }
      Thread.sleep(200);
    }
  }

  /** Waits until every room has had a failed send since {@code since}. */
  private static void awaitEveryRoomFailing(Traffic traffic, long since) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (true) {
      boolean all = traffic.rooms().stream()
          .allMatch(room -> traffic.failures().stream().anyMatch(f -> f.room().equals(room) && f.at() >= since));
      if (all) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("sends did not fail in every room within 60 s of stopping Cassandra: " + traffic.failureCodes(since, Long.MAX_VALUE));
      }
      Thread.sleep(100);
    }
  }

  private static void createKeyspaces(InetSocketAddress contactPoint) {
    Settings.Cassandra settings =
        new Settings.Cassandra(
            List.of(contactPoint), "datacenter1", "", "", "restart_j", "restart_s",
            "{'class': 'SimpleStrategy', 'replication_factor': 1}", false, Duration.ofSeconds(30), null);
    try (CqlSession session = CassandraConnection.open(settings, List.of(contactPoint))) {
      for (String keyspace : List.of("restart_j", "restart_s")) {
        session.execute(SimpleStatement.newInstance("DROP KEYSPACE IF EXISTS " + keyspace).setTimeout(Duration.ofSeconds(30)));
      }
      CassandraSchema schema = CassandraSchema.of(settings);
      schema.apply(session);
      schema.verify(session);
    }
  }
}
