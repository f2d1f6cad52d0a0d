package parley.chat.user;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.chat.user.UserEntity.Ack;
import parley.chat.user.UserEntity.Command;
import parley.chat.user.UserEntity.DeliveryReply;
import parley.chat.user.UserEntity.GetPresence;
import parley.chat.user.UserEntity.GetRooms;
import parley.chat.user.UserEntity.MarkDelivered;
import parley.chat.user.UserEntity.MarkRead;
import parley.chat.user.UserEntity.MarkedDelivered;
import parley.chat.user.UserEntity.MarkedRead;
import parley.chat.user.UserEntity.Presence;
import parley.chat.user.UserEntity.ReadReply;
import parley.chat.user.UserEntity.RoomJoined;
import parley.chat.user.UserEntity.RoomMarker;
import parley.chat.user.UserEntity.Rooms;
import parley.chat.user.UserEntity.SessionClosed;
import parley.chat.user.UserEntity.SessionOpened;
import parley.testing.TestCassandra;
import parley.testing.TestNodes;

/**
 * The user entity on a real sharded node against the real Cassandra: what one node wrote, a
 * node started afterwards on the same keyspaces reads back, from the journal and from a
 * snapshot.
 */
@ExtendWith(LogCapturingExtension.class)
class UserEntityIT {

  private static final Duration TIMEOUT = Duration.ofSeconds(10);

  /**
   * Built once: {@link TestNodes#config} recreates the keyspaces, and the second node of a test
   * must find what the first one wrote.
   */
  private static Config config;
  private static String journal;
  private static String snapshots;

  @BeforeAll
  static void keyspaces() {
    config = TestNodes.config("UserEntityIT");
    journal = config.getString("parley.cassandra.journal-keyspace");
    snapshots = config.getString("parley.cassandra.snapshot-keyspace");
  }

  @Test
  void markersAndLastSeenComeBackOnTheNextNode() throws Exception {
    Presence offline;
    ActorTestKit first = startNode("UserEntityIT-first");
    try {
      EntityRef<Command> alice = userRef(first, "alice");
      assertEquals(
          new Ack("design"), ask(alice, (ActorRef<Ack> r) -> new RoomJoined("design", 3, r)));
      assertEquals(
          new MarkedRead("design", 7, true),
          ask(alice, (ActorRef<ReadReply> r) -> new MarkRead("design", 7, r)));
      assertEquals(
          new MarkedDelivered("design", 9, true),
          ask(alice, (ActorRef<DeliveryReply> r) -> new MarkDelivered("design", 9, r)));

      TestProbe<UserEntity.Notice> session = first.createTestProbe();
      Presence online =
          ask(alice, (ActorRef<Presence> r) -> new SessionOpened("s1", session.ref(), false, r));
      assertTrue(online.online());
      assertNotNull(online.lastSeen());
      alice.tell(new SessionClosed("s1", false));
      offline = ask(alice, GetPresence::new);
      assertFalse(offline.online());
      assertFalse(offline.lastSeen().isBefore(online.lastSeen()));

      assertEquals(5, journalRows("user|alice"), "join, read, delivered, two last-seen times");
    } finally {
      first.shutdownTestKit();
    }

    ActorTestKit next = startNode("UserEntityIT-next");
    try {
      EntityRef<Command> alice = userRef(next, "alice");
      assertEquals(
          new Rooms(List.of(new RoomMarker("design", 3, 7, 9))), ask(alice, GetRooms::new));
      assertEquals(offline, ask(alice, GetPresence::new));
      assertEquals(
          new MarkedRead("design", 7, false),
          ask(alice, (ActorRef<ReadReply> r) -> new MarkRead("design", 5, r)));
    } finally {
      next.shutdownTestKit();
    }
  }

  @Test
  void recoversFromASnapshotAfterAHundredEvents() throws Exception {
    ActorTestKit first = startNode("UserEntityIT-snapshot-first");
    try {
      EntityRef<Command> bob = userRef(first, "bob");
      ask(bob, (ActorRef<Ack> r) -> new RoomJoined("general", 1, r));
      for (long seq = 2; seq <= 120; seq++) {
        long s = seq;
        ask(bob, (ActorRef<DeliveryReply> r) -> new MarkDelivered("general", s, r));
      }
      first
          .createTestProbe()
          .awaitAssert(
              () -> {
                assertEquals(1, snapshotRows("user|bob"), "a snapshot at event 100");
                return null;
              });
    } finally {
      first.shutdownTestKit();
    }

    ActorTestKit next = startNode("UserEntityIT-snapshot-next");
    try {
      assertEquals(
          new Rooms(List.of(new RoomMarker("general", 1, 1, 120))),
          ask(userRef(next, "bob"), GetRooms::new));
    } finally {
      next.shutdownTestKit();
    }
  }

  /** A one-node cluster with the user entity sharded, as the node's guardian starts it. */
  private static ActorTestKit startNode(String name) {
    ActorTestKit testKit = ActorTestKit.create(name, config);
    TestNodes.joinItself(testKit);
    UserEntity.init(testKit.system());
    // Presence is announced to the user's rooms, so a node runs both entity types.
    parley.chat.room.RoomEntity.init(
        testKit.system(), parley.chat.ChatSettings.from(testKit.system().settings().config()), testKit.system().ignoreRef());
    return testKit;
  }

  private static EntityRef<Command> userRef(ActorTestKit testKit, String userId) {
    return ClusterSharding.get(testKit.system()).entityRefFor(UserEntity.ENTITY_KEY, userId);
  }

  private static <R> R ask(EntityRef<Command> ref, Function<ActorRef<R>, Command> command)
      throws Exception {
    return ref.ask(command::apply, TIMEOUT)
        .toCompletableFuture()
        .get(TIMEOUT.toSeconds() + 5, TimeUnit.SECONDS);
  }

  private static long journalRows(String pid) {
    return TestCassandra.session()
        .execute(
            "SELECT count(*) FROM "
                + journal
                + ".messages WHERE persistence_id = ? AND partition_nr = 0",
            pid)
        .one()
        .getLong(0);
  }

  private static long snapshotRows(String pid) {
    return TestCassandra.session()
        .execute("SELECT count(*) FROM " + snapshots + ".snapshots WHERE persistence_id = ?", pid)
        .one()
        .getLong(0);
  }
}
