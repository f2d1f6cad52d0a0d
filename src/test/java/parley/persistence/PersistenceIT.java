package parley.persistence;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.cql.Row;
import com.typesafe.config.Config;
import java.time.Duration;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import parley.cluster.ConsistentHashingShardAllocationStrategy;
import parley.testing.TestCassandra;
import parley.testing.TestNodes;

/**
 * The persistence path end to end: a sharded event-sourced entity, placed by the
 * consistent-hashing strategy, writes to the real Cassandra, is passivated, and comes back
 * with its state read from the journal (and from a snapshot).
 */
@ExtendWith(LogCapturingExtension.class)
class PersistenceIT {

  private static final EntityTypeKey<Tally.Command> SNAPSHOTTING =
      EntityTypeKey.create(Tally.Command.class, "SnapshottingTally");

  private static ActorTestKit testKit;
  private static String journal;
  private static String snapshots;
  private static ClusterSharding sharding;

  @BeforeAll
  static void startNode() {
    Config config = TestNodes.config("PersistenceIT");
    journal = config.getString("parley.cassandra.journal-keyspace");
    snapshots = config.getString("parley.cassandra.snapshot-keyspace");
    testKit = ActorTestKit.create("PersistenceIT", config);
    TestNodes.joinItself(testKit);
    sharding = ClusterSharding.get(testKit.system());
    sharding.init(
        Entity.of(Tally.KEY, ctx -> Tally.create(ctx, false))
            .withStopMessage(new Tally.Stop())
            .withAllocationStrategy(new ConsistentHashingShardAllocationStrategy(10)));
    sharding.init(
        Entity.of(SNAPSHOTTING, ctx -> Tally.create(ctx, true))
            .withStopMessage(new Tally.Stop())
            .withAllocationStrategy(new ConsistentHashingShardAllocationStrategy(10)));
  }

  @AfterAll
  static void stopNode() {
    if (testKit != null) {
      testKit.shutdownTestKit();
    }
  }

  @Test
  void recoversStateFromCassandraAfterPassivation() {
    EntityRef<Tally.Command> tally = sharding.entityRefFor(Tally.KEY, "a");
    TestProbe<Tally.Total> probe = testKit.createTestProbe();

    tally.tell(new Tally.Add(5, probe.ref()));
    tally.tell(new Tally.Add(7, probe.ref()));
    assertEquals(5, probe.receiveMessage().total());
    Tally.Total beforePassivation = probe.receiveMessage();
    assertEquals(new Tally.Total(12, 2, beforePassivation.incarnation()), beforePassivation);
    assertEquals(2, journalRows("Tally|a"), "both events are in Cassandra's journal");

    tally.tell(new Tally.Passivate());
    Tally.Total recovered =
        probe.awaitAssert(
            () -> {
              tally.tell(new Tally.Get(probe.ref()));
              Tally.Total total = probe.receiveMessage();
              assertNotEquals(beforePassivation.incarnation(), total.incarnation());
              return total;
            });
    assertEquals(12, recovered.total());
    assertEquals(2, recovered.seq());
  }

  /**
   * The journal keeps every event (support-deletes is off: Parley never deletes them), so the
   * events a snapshot covers are removed here behind the plugin's back: the entity can only
   * come back right by starting from the snapshot.
   */
  @Test
  void recoversFromSnapshot() {
    EntityRef<Tally.Command> tally = sharding.entityRefFor(SNAPSHOTTING, "b");
    TestProbe<Tally.Total> probe = testKit.createTestProbe();
    for (int i = 1; i <= 12; i++) {
      tally.tell(new Tally.Add(i, probe.ref()));
      probe.receiveMessage();
    }
    String pid = "SnapshottingTally|b";
    long snapshotSeq =
        probe.awaitAssert(
            () -> {
              long seq = latestSnapshotSeq(pid);
              assertEquals(10, seq, "snapshots every 5 events: the latest at 10");
              return seq;
            });
    assertEquals(12, journalRows(pid), "no event was deleted");
    TestCassandra.session()
        .execute(
            "DELETE FROM " + journal + ".messages WHERE persistence_id = ? AND partition_nr = 0 AND sequence_nr <= ?",
            pid,
            snapshotSeq);
    assertEquals(2, journalRows(pid));
    Tally.Total before = askTotal(tally, probe);

    tally.tell(new Tally.Passivate());
    Tally.Total recovered =
        probe.awaitAssert(
            () -> {
              Tally.Total total = askTotal(tally, probe);
              assertNotEquals(before.incarnation(), total.incarnation());
              return total;
            });
    assertEquals(78, recovered.total(), "1 + 2 + ... + 12, of which only 11 and 12 are left in the journal");
    assertEquals(12, recovered.seq());
  }

  private static Tally.Total askTotal(EntityRef<Tally.Command> tally, TestProbe<Tally.Total> probe) {
    tally.tell(new Tally.Get(probe.ref()));
    return probe.receiveMessage();
  }

  private static long journalRows(String pid) {
    Row row =
        TestCassandra.session()
            .execute(
                "SELECT count(*) FROM "
                    + journal
                    + ".messages WHERE persistence_id = ? AND partition_nr = 0",
                pid)
            .one();
    return row.getLong(0);
  }

  private static long latestSnapshotSeq(String pid) {
    Row row =
        TestCassandra.session()
            .execute("SELECT max(sequence_nr) FROM " + snapshots + ".snapshots WHERE persistence_id = ?", pid)
            .one();
    return row == null || row.isNull(0) ? 0 : row.getLong(0);
  }
}
