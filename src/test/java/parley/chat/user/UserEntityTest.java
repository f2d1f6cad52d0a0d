package parley.chat.user;

import parley.chat.room.RoomPush;
import java.util.concurrent.CopyOnWriteArrayList;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit.CommandResultWithReply;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.chat.user.UserEntity.Ack;
import parley.chat.user.UserEntity.Command;
import parley.chat.user.UserEntity.DeliveryMarkerMoved;
import parley.chat.user.UserEntity.DeliveryReply;
import parley.chat.user.UserEntity.Event;
import parley.chat.user.UserEntity.GetPresence;
import parley.chat.user.UserEntity.GetRooms;
import parley.chat.user.UserEntity.JoinedRoom;
import parley.chat.user.UserEntity.LastSeenRecorded;
import parley.chat.user.UserEntity.LeftRoom;
import parley.chat.user.UserEntity.MarkDelivered;
import parley.chat.user.UserEntity.MarkRead;
import parley.chat.user.UserEntity.MarkedDelivered;
import parley.chat.user.UserEntity.MarkedRead;
import parley.chat.user.UserEntity.Presence;
import parley.chat.user.UserEntity.ReadMarkerMoved;
import parley.chat.user.UserEntity.ReadReply;
import parley.chat.user.UserEntity.Rejected;
import parley.chat.user.UserEntity.RoomJoined;
import parley.chat.user.UserEntity.RoomLeft;
import parley.chat.user.UserEntity.RoomMarker;
import parley.chat.user.UserEntity.Rooms;
import parley.chat.user.UserEntity.SessionClosed;
import parley.chat.user.UserEntity.SessionOpened;
import parley.chat.user.UserEntity.State;

@ExtendWith(LogCapturingExtension.class)
class UserEntityTest {

  private static final String PERSISTENCE_ID = "user|alice";
  private static final Instant T1 = Instant.parse("2026-11-22T08:00:00Z");
  private static final Instant T2 = Instant.parse("2026-11-22T08:05:00Z");
  private static final Instant T3 = Instant.parse("2026-11-22T08:09:30Z");

  private static ActorTestKit testKit;

  private final TestClock clock = new TestClock(T1);
  private EventSourcedBehaviorTestKit<Command, Event, State> alice;

  @BeforeAll
  static void startSystem() {
    // The project's own serialization binding (Jackson CBOR, Java serialization off), so the
    // testkit's round trip of every command, event and state checks what production runs.
    testKit =
        ActorTestKit.create(
            "UserEntityTest",
            EventSourcedBehaviorTestKit.config()
                .withFallback(ConfigFactory.parseResources("serialization.conf")));
  }

  @AfterAll
  static void stopSystem() {
    testKit.shutdownTestKit();
  }

  /** Presence announcements the entity sent to its rooms. */
  private final List<RoomPush.Ephemeral> announced = new CopyOnWriteArrayList<>();

  @BeforeEach
  void freshEntity() {
    announced.clear();
    alice = entity(Duration.ofHours(1));
  }

  private EventSourcedBehaviorTestKit<Command, Event, State> entity(Duration offlineGrace) {
    EventSourcedBehaviorTestKit<Command, Event, State> entity =
        EventSourcedBehaviorTestKit.create(
            testKit.system(), UserEntity.create("alice", clock, offlineGrace, announced::add));
    entity.clear();
    return entity;
  }

  @Test
  void joiningARoomTwiceWritesOneEvent() {
    CommandResultWithReply<Command, Event, State, Ack> first = join("design", 3);
    assertEquals(new Ack("design"), first.reply());
    assertEquals(new JoinedRoom("alice", "design", 3), first.event());
    assertEquals(new RoomMarker("design", 3, 3, 3), first.state().rooms().get("design"));

    CommandResultWithReply<Command, Event, State, Ack> again = join("design", 9);
    assertEquals(new Ack("design"), again.reply());
    assertTrue(again.hasNoEvents());
    assertEquals(new RoomMarker("design", 3, 3, 3), again.state().rooms().get("design"));
  }

  @Test
  void markersOnlyMoveForwardAndSurviveRestart() {
    join("design", 3);

    CommandResultWithReply<Command, Event, State, ReadReply> read = markRead("design", 7);
    assertEquals(new MarkedRead("design", 7, true), read.reply());
    assertEquals(new ReadMarkerMoved("alice", "design", 7), read.event());

    CommandResultWithReply<Command, Event, State, ReadReply> readBack = markRead("design", 5);
    assertEquals(new MarkedRead("design", 7, false), readBack.reply());
    assertTrue(readBack.hasNoEvents());

    CommandResultWithReply<Command, Event, State, DeliveryReply> delivered =
        markDelivered("design", 9);
    assertEquals(new MarkedDelivered("design", 9, true), delivered.reply());
    assertEquals(new DeliveryMarkerMoved("alice", "design", 9), delivered.event());

    CommandResultWithReply<Command, Event, State, DeliveryReply> deliveredBack =
        markDelivered("design", 9);
    assertEquals(new MarkedDelivered("design", 9, false), deliveredBack.reply());
    assertTrue(deliveredBack.hasNoEvents());

    assertEquals(new RoomMarker("design", 3, 7, 9), alice.getState().rooms().get("design"));
    assertEquals(
        new RoomMarker("design", 3, 7, 9), alice.restart().state().rooms().get("design"));
    assertEquals(new MarkedRead("design", 7, false), markRead("design", 6).reply());
  }

  @Test
  void readingPastTheDeliveryMarkerMovesItToo() {
    join("design", 3);
    markDelivered("design", 5);

    CommandResultWithReply<Command, Event, State, ReadReply> read = markRead("design", 8);
    assertEquals(new ReadMarkerMoved("alice", "design", 8), read.event());
    assertEquals(new RoomMarker("design", 3, 8, 8), read.state().rooms().get("design"));

    CommandResultWithReply<Command, Event, State, DeliveryReply> delivered =
        markDelivered("design", 8);
    assertEquals(new MarkedDelivered("design", 8, false), delivered.reply());
    assertTrue(delivered.hasNoEvents());
  }

  @Test
  void markersInARoomTheUserIsNotInAreRejected() {
    CommandResultWithReply<Command, Event, State, ReadReply> read = markRead("design", 4);
    assertEquals(
        new Rejected("not_a_member", "alice is not a member of room design"), read.reply());
    assertTrue(read.hasNoEvents());

    CommandResultWithReply<Command, Event, State, DeliveryReply> delivered =
        markDelivered("design", 4);
    assertEquals(
        new Rejected("not_a_member", "alice is not a member of room design"), delivered.reply());
    assertTrue(delivered.hasNoEvents());
  }

  @Test
  void leavingForgetsTheRoomAndARejoinStartsAfresh() {
    join("design", 3);
    markRead("design", 10);

    CommandResultWithReply<Command, Event, State, Ack> left = leave("design", 4);
    assertEquals(new Ack("design"), left.reply());
    assertEquals(new LeftRoom("alice", "design", 4), left.event());
    assertTrue(left.state().rooms().isEmpty());

    CommandResultWithReply<Command, Event, State, Ack> leftAgain = leave("design", 4);
    assertEquals(new Ack("design"), leftAgain.reply());
    assertTrue(leftAgain.hasNoEvents());

    assertEquals("not_a_member", ((Rejected) markRead("design", 11).reply()).code());

    join("design", 20);
    assertEquals(new RoomMarker("design", 20, 20, 20), alice.getState().rooms().get("design"));
  }

  /**
   * A room tells the user of each membership change at least once, so copies come late and
   * twice: a change older than the latest known one of the same room changes nothing.
   */
  @Test
  void lateCopiesOfOlderMembershipChangesChangeNothing() {
    join("design", 3);
    leave("design", 9);

    CommandResultWithReply<Command, Event, State, Ack> lateJoin = join("design", 3);
    assertEquals(new Ack("design"), lateJoin.reply());
    assertTrue(lateJoin.hasNoEvents(), "a copy of the join before the leave");
    assertTrue(alice.restart().state().rooms().isEmpty());

    join("design", 12);
    CommandResultWithReply<Command, Event, State, Ack> lateLeave = leave("design", 9);
    assertEquals(new Ack("design"), lateLeave.reply());
    assertTrue(lateLeave.hasNoEvents(), "a copy of the leave before the rejoin");
    assertEquals(new RoomMarker("design", 12, 12, 12), alice.getState().rooms().get("design"));

    // A leave heard before its join (only the newest change is sent): the join that comes
    // later, older than the leave, does not add the room.
    leave("ops", 7);
    assertTrue(join("ops", 5).hasNoEvents());
    assertFalse(alice.getState().rooms().containsKey("ops"));
  }

  @Test
  void listsRoomsInOrderAfterRestart() {
    join("zeta", 5);
    join("alpha", 2);
    join("gone", 1);
    markRead("zeta", 8);
    markDelivered("alpha", 4);
    leave("gone", 2);

    alice.restart();
    CommandResultWithReply<Command, Event, State, Rooms> rooms = alice.runCommand(GetRooms::new);
    assertEquals(
        new Rooms(List.of(new RoomMarker("alpha", 2, 2, 4), new RoomMarker("zeta", 5, 8, 8))),
        rooms.reply());
    assertTrue(rooms.hasNoEvents());
  }

  @Test
  void aUserNeverConnectedIsOfflineAndNeverSeen() {
    CommandResultWithReply<Command, Event, State, Presence> presence =
        alice.runCommand(GetPresence::new);
    assertEquals(new Presence("alice", false, null), presence.reply());
    assertTrue(presence.hasNoEvents());
  }

  @Test
  void goingOnlineAndOfflineIsAnnouncedToEveryRoomAndNewRoomsReachSessions() {
    alice.<UserEntity.Ack>runCommand(replyTo -> new RoomJoined("design", 4, replyTo));
    TestProbe<UserEntity.Notice> session = testKit.createTestProbe();
    open("s1", session);
    assertEquals(List.of(new RoomPush.Ephemeral("design", "presence", "alice", 0, "online", clock.millis())), announced);

    alice.<UserEntity.Ack>runCommand(replyTo -> new RoomJoined("ops", 9, replyTo));
    assertEquals(new UserEntity.RoomAdded("ops", 9), session.receiveMessage());

    announced.clear();
    alice.runCommand(new SessionClosed("s1", false));
    assertEquals(2, announced.size());
    assertTrue(announced.stream().allMatch(p -> "offline".equals(p.status())));
  }

  @Test
  void aUsersFirstSessionEverRecordsLastSeenAndARenewalWritesNothing() {
    TestProbe<UserEntity.Notice> session = testKit.createTestProbe();

    CommandResultWithReply<Command, Event, State, Presence> opened = open("s1", session);
    assertEquals(new Presence("alice", true, T1), opened.reply());
    assertEquals(new LastSeenRecorded("alice", T1), opened.event());

    clock.set(T2);
    CommandResultWithReply<Command, Event, State, Presence> renewed = renew("s1", session);
    assertEquals(new Presence("alice", true, T1), renewed.reply());
    assertTrue(renewed.hasNoEvents());
  }

  @Test
  void aReturningUserOpensSessionsWithoutWritingLastSeenOnlyGoingOfflineWrites() {
    TestProbe<UserEntity.Notice> first = testKit.createTestProbe();
    open("s1", first);
    clock.set(T2);
    assertEquals(new LastSeenRecorded("alice", T2), alice.runCommand(new SessionClosed("s1", false)).event());

    clock.set(T3);
    TestProbe<UserEntity.Notice> second = testKit.createTestProbe();
    CommandResultWithReply<Command, Event, State, Presence> back = open("s2", second);
    assertTrue(back.hasNoEvents(), "a returning user's connect is not journaled");
    assertEquals(new Presence("alice", true, T3), back.reply(), "while online, lastSeen is the newest session's start");

    alice.restart();
    assertEquals(new Presence("alice", false, T2), alice.runCommand(GetPresence::new).reply(), "after a crash, the last offline written");
  }

  @Test
  void closingTheLastSessionRecordsLastSeenDurably() {
    TestProbe<UserEntity.Notice> first = testKit.createTestProbe();
    TestProbe<UserEntity.Notice> second = testKit.createTestProbe();
    open("s1", first);
    clock.set(T2);
    open("s2", second);

    clock.set(T3);
    assertTrue(alice.runCommand(new SessionClosed("s1", false)).hasNoEvents(), "s2 is still live");
    assertEquals(new Presence("alice", true, T2), alice.runCommand(GetPresence::new).reply());

    assertEquals(
        new LastSeenRecorded("alice", T3), alice.runCommand(new SessionClosed("s2", false)).event());
    assertEquals(new Presence("alice", false, T3), alice.runCommand(GetPresence::new).reply());
    assertTrue(alice.runCommand(new SessionClosed("s2", false)).hasNoEvents(), "already closed");

    alice.restart();
    assertEquals(new Presence("alice", false, T3), alice.runCommand(GetPresence::new).reply());
  }

  @Test
  void aSessionWhoseActorStopsWithoutClosingCountsAsOnlineUntilItsGraceRunsOut() {
    Duration grace = Duration.ofMillis(800);
    alice = entity(grace);
    join("design", 4);
    TestProbe<UserEntity.Notice> first = testKit.createTestProbe();
    TestProbe<UserEntity.Notice> second = testKit.createTestProbe();
    open("s1", first);
    open("s2", second);
    announced.clear();
    clock.set(T2);

    // Their node died: the actors stop, and no SessionClosed comes.
    long stoppedAt = System.nanoTime();
    first.stop();
    second.stop();
    awaitOfflineAfterGrace(stoppedAt, grace);
  }

  @Test
  void aSessionClosedByItsNodesShutdownCountsAsOnlineUntilItsGraceRunsOut() {
    closedByItsNodesShutdownCountsAsOnlineUntilItsGraceRunsOut(false);
  }

  @Test
  void anUnknownSessionClosedByItsNodesShutdownAfterAMoveCountsAsOnlineUntilItsGraceRunsOut() {
    closedByItsNodesShutdownCountsAsOnlineUntilItsGraceRunsOut(true);
  }

  /** {@code moved}: the entity restarts between the open and the close, forgetting the session. */
  private void closedByItsNodesShutdownCountsAsOnlineUntilItsGraceRunsOut(boolean moved) {
    Duration grace = Duration.ofMillis(800);
    alice = entity(grace);
    join("design", 4);
    open("s1", testKit.createTestProbe());
    if (moved) {
      alice.restart();
    }
    announced.clear();
    clock.set(T2);

    long closedAt = System.nanoTime();
    assertTrue(alice.runCommand(new SessionClosed("s1", true)).hasNoEvents(), "nothing written at the close");
    assertEquals(new Presence("alice", true, moved ? T2 : T1), alice.runCommand(GetPresence::new).reply());
    assertEquals(List.of(), announced);

    // Time passes during the grace: she was still last seen when the session closed.
    clock.set(T3);
    awaitOfflineAfterGrace(closedAt, grace);
  }

  @Test
  void aSessionClosingDuringAnothersGraceIsWhenTheUserWasLastSeen() {
    Duration grace = Duration.ofMillis(800);
    alice = entity(grace);
    join("design", 4);
    open("s1", testKit.createTestProbe());
    open("s2", testKit.createTestProbe());
    announced.clear();
    clock.set(T2);
    assertTrue(alice.runCommand(new SessionClosed("s1", true)).hasNoEvents(), "s1 vanishes with its node: grace");
    clock.set(T3);
    assertTrue(alice.runCommand(new SessionClosed("s2", false)).hasNoEvents(), "s1 is within its grace");

    // Offline once the grace ends, last seen when s2 closed, the later of the two.
    testKit.createTestProbe().awaitAssert(() -> {
      assertEquals(new Presence("alice", false, T3), alice.runCommand(GetPresence::new).reply());
      return null;
    });
    assertEquals(new LastSeenRecorded("alice", T3), lastPersisted());
    assertEquals(List.of(new RoomPush.Ephemeral("design", "presence", "alice", 0, "offline", T3.toEpochMilli())), announced);
  }

  @Test
  void aSessionThatComesBackWithinTheGraceWritesNothingAndTellsNoRoom() {
    join("design", 4);
    TestProbe<UserEntity.Notice> gone = testKit.createTestProbe();
    open("s1", gone);
    announced.clear();
    gone.stop();
    testKit.createTestProbe().expectTerminated(gone.ref());

    clock.set(T2);
    CommandResultWithReply<Command, Event, State, Presence> back = open("s2", testKit.createTestProbe());
    assertTrue(back.hasNoEvents());
    assertEquals(new Presence("alice", true, T2), back.reply());
    assertTrue(alice.runCommand(new SessionClosed("s2", false)).hasNoEvents(), "s1 is within its grace");
    assertEquals(List.of(), announced, "no offline, no online again");
  }

  @Test
  void aSessionThatSaysClosedAfterItsActorStoppedIsOfflineAtOnce() {
    // A session that ends tells the entity through sharding, which is often slower than the
    // watch: its close must not wait for the grace.
    open("s1", testKit.createTestProbe());
    TestProbe<UserEntity.Notice> closing = testKit.createTestProbe();
    open("s2", closing);
    clock.set(T2);
    assertTrue(alice.runCommand(new SessionClosed("s1", false)).hasNoEvents(), "s2 is live");

    closing.stop();
    testKit.createTestProbe().expectTerminated(closing.ref());
    clock.set(T3);
    assertEquals(new LastSeenRecorded("alice", T3), alice.runCommand(new SessionClosed("s2", false)).event());
    assertEquals(new Presence("alice", false, T3), alice.runCommand(GetPresence::new).reply());
  }

  @Test
  void aRecoveredEntityKnowsNoSessionsUntilTheyRenew() {
    TestProbe<UserEntity.Notice> session = testKit.createTestProbe();
    open("s1", session);

    alice.restart();
    assertEquals(new Presence("alice", false, T1), alice.runCommand(GetPresence::new).reply());

    clock.set(T2);
    CommandResultWithReply<Command, Event, State, Presence> renewed = renew("s1", session);
    assertEquals(new Presence("alice", true, T2), renewed.reply());
    assertTrue(renewed.hasNoEvents(), "sessions coming back after a move write nothing");
  }

  @Test
  void theCloseOfASessionRegisteredBeforeAMoveTakesTheUserOffline() {
    join("design", 4);
    open("s1", testKit.createTestProbe());
    alice.restart();
    announced.clear();

    clock.set(T2);
    assertEquals(new LastSeenRecorded("alice", T2), alice.runCommand(new SessionClosed("s1", false)).event());
    assertEquals(new Presence("alice", false, T2), alice.runCommand(GetPresence::new).reply());
    assertEquals(List.of(new RoomPush.Ephemeral("design", "presence", "alice", 0, "offline", clock.millis())), announced);

    clock.set(T3);
    assertTrue(alice.runCommand(new SessionClosed("s1", false)).hasNoEvents(), "offline once");
    assertEquals(1, announced.size());
  }

  @Test
  void afterAMoveAnUnknownSessionsCloseLeavesARenewedSessionOnline() {
    join("design", 4);
    open("s1", testKit.createTestProbe());
    TestProbe<UserEntity.Notice> second = testKit.createTestProbe();
    open("s2", second);
    alice.restart();
    renew("s2", second);
    announced.clear();

    clock.set(T2);
    assertTrue(alice.runCommand(new SessionClosed("s1", false)).hasNoEvents(), "s2 renewed and is live");
    assertEquals(List.of(), announced);
    assertTrue(alice.runCommand(GetPresence::new).reply().online());
  }

  @Test
  void aSessionRenewingAfterAMoveGetsTheRoomsJoinedAndTheNewestJobPushesItMissed() {
    join("design", 4);
    TestProbe<UserEntity.Notice> session = testKit.createTestProbe();
    open("s1", session);
    // The entity moves: the new incarnation knows no session until one renews.
    alice.restart();
    join("ops", 7);
    join("lobby", 2);
    leave("lobby", 3);
    alice.runCommand(relay("q:0:a", 1));
    alice.runCommand(relay("q:0:b", 1));
    alice.runCommand(relay("q:0:a", 2));
    session.expectNoMessage(java.time.Duration.ofMillis(50));

    // A connection that opens now catches up by its own resume: it is sent nothing of the past.
    TestProbe<UserEntity.Notice> opened = testKit.createTestProbe();
    open("s2", opened);
    opened.expectNoMessage(java.time.Duration.ofMillis(50));

    renew("s1", session);
    // "ops"; not "lobby", left again; not "design", joined before the move, which it follows.
    assertEquals(new UserEntity.RoomAdded("ops", 7), session.expectMessageClass(UserEntity.RoomAdded.class));
    UserEntity.Relayed b = session.expectMessageClass(UserEntity.Relayed.class);
    UserEntity.Relayed a = session.expectMessageClass(UserEntity.Relayed.class);
    assertEquals(List.of(jobPush("q:0:b", 1), jobPush("q:0:a", 2)), List.of(b.frame(), a.frame()),
        "the newest push of each job, in the order of their last change");
    session.expectNoMessage(java.time.Duration.ofMillis(50));

    renew("s1", session);
    session.expectNoMessage(java.time.Duration.ofMillis(50));
    alice.runCommand(relay("q:0:a", 3));
    assertEquals(jobPush("q:0:a", 3), session.expectMessageClass(UserEntity.Relayed.class).frame());
  }

  @Test
  void snapshotsEveryHundredEvents() {
    join("design", 1);
    for (long seq = 2; seq <= 100; seq++) {
      markDelivered("design", seq);
    }
    testKit
        .createTestProbe()
        .awaitAssert(
            () -> {
              var snapshots =
                  alice.snapshotTestKit().orElseThrow().persistedInStorage(PERSISTENCE_ID);
              assertEquals(1, snapshots.size());
              assertEquals(100, snapshots.get(0).first().sequenceNr());
              return null;
            });
    assertEquals(
        new RoomMarker("design", 1, 1, 100), alice.restart().state().rooms().get("design"));
  }

  private CommandResultWithReply<Command, Event, State, Ack> join(String room, long seq) {
    return alice.runCommand(replyTo -> new RoomJoined(room, seq, replyTo));
  }

  private CommandResultWithReply<Command, Event, State, Ack> leave(String room, long seq) {
    return alice.runCommand(replyTo -> new RoomLeft(room, seq, replyTo));
  }

  private CommandResultWithReply<Command, Event, State, ReadReply> markRead(String room, long seq) {
    return alice.runCommand(replyTo -> new MarkRead(room, seq, replyTo));
  }

  private CommandResultWithReply<Command, Event, State, DeliveryReply> markDelivered(
      String room, long seq) {
    return alice.runCommand(replyTo -> new MarkDelivered(room, seq, replyTo));
  }

  private CommandResultWithReply<Command, Event, State, Presence> open(
      String sessionId, TestProbe<UserEntity.Notice> session) {
    return alice.runCommand(replyTo -> new SessionOpened(sessionId, session.ref(), false, replyTo));
  }

  /** The session's periodic renewal (the node's session actor sends it without a reply). */
  private CommandResultWithReply<Command, Event, State, Presence> renew(
      String sessionId, TestProbe<UserEntity.Notice> session) {
    return alice.runCommand(replyTo -> new SessionOpened(sessionId, session.ref(), true, replyTo));
  }

  /**
   * Alice goes offline, last seen at T2 (when her session vanished), no sooner than {@code
   * grace} after {@code vanishedAt} (System.nanoTime()), and her room "design" is told so once.
   */
  private void awaitOfflineAfterGrace(long vanishedAt, Duration grace) {
    awaitPresence(new Presence("alice", false, T2));
    assertTrue(
        Duration.ofNanos(System.nanoTime() - vanishedAt).compareTo(grace) >= 0,
        "online until the grace ran out");
    assertEquals(new LastSeenRecorded("alice", T2), lastPersisted());
    // The push says when she was last seen, as list_members does: when the session vanished.
    assertEquals(List.of(new RoomPush.Ephemeral("design", "presence", "alice", 0, "offline", T2.toEpochMilli())), announced);
  }

  /** The session's end arrives by the watch, not as a command, so poll for its effect. */
  private void awaitPresence(Presence expected) {
    testKit
        .createTestProbe()
        .awaitAssert(
            () -> {
              assertEquals(expected, alice.runCommand(GetPresence::new).reply());
              return null;
            });
  }

  private Object lastPersisted() {
    List<Object> events = alice.persistenceTestKit().persistedInStorage(PERSISTENCE_ID);
    return events.get(events.size() - 1);
  }

  /** A clock the test sets, so last-seen times are exact. */
  private static final class TestClock extends Clock {
    private volatile Instant now;

    TestClock(Instant now) {
      this.now = now;
    }

    void set(Instant instant) {
      now = instant;
    }

    @Override
    public Instant instant() {
      return now;
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Job pushes

  private static String jobPush(String id, long version) {
    return "{\"type\":\"job\",\"job\":{\"id\":\"" + id + "\",\"version\":" + version + "}}";
  }

  /** The relay a partition sends for that push. */
  private static UserEntity.Relay relay(String id, long version) {
    return new UserEntity.Relay(jobPush(id, version), id, version);
  }

  private UserEntity.JobsFrom follow(TestProbe<UserEntity.Notice> session, String epoch, long after) {
    alice.runCommand(new UserEntity.FollowJobs(epoch, after, session.getRef()));
    return session.expectMessageClass(UserEntity.JobsFrom.class);
  }

  @Test
  void aFollowerCatchesUpOnTheNewestPushOfEachJobChangedAfterItsPlaceThenGetsEachNewOneOnce() {
    alice.runCommand(relay("q:0:a", 1));
    TestProbe<UserEntity.Notice> poll = testKit.createTestProbe();
    UserEntity.JobsFrom now = follow(poll, null, 0);
    assertEquals(1, now.position());
    assertTrue(now.pushes().isEmpty(), "without a place, from now");
    assertEquals(null, now.reset());

    UserEntity.Relayed a2 = relayedTo(poll, "q:0:a", 2);
    assertEquals(2, a2.position());
    alice.runCommand(relay("q:0:a", 2));
    poll.expectNoMessage(java.time.Duration.ofMillis(50));
    UserEntity.Relayed b1 = relayedTo(poll, "q:0:b", 1);
    UserEntity.Relayed a3 = relayedTo(poll, "q:0:a", 3);
    assertEquals(List.of(3L, 4L), List.of(b1.position(), a3.position()));

    // A poll from position 1 gets b's push, then a's newest: a's earlier ones are coalesced.
    TestProbe<UserEntity.Notice> next = testKit.createTestProbe();
    UserEntity.JobsFrom caughtUp = follow(next, now.epoch(), 1);
    assertEquals(List.of(new UserEntity.JobPush(3, jobPush("q:0:b", 1)), new UserEntity.JobPush(4, jobPush("q:0:a", 3))), caughtUp.pushes());
    assertEquals(4, caughtUp.position());
    assertFalse(caughtUp.more());
  }

  @Test
  void aPlaceFromAnotherIncarnationOrOlderThanTheWindowIsReset() {
    String epoch = follow(testKit.createTestProbe(), null, 0).epoch();
    TestProbe<UserEntity.Notice> poll = testKit.createTestProbe();
    for (int n = 0; n <= UserEntity.WINDOW_JOBS; n++) {
      alice.runCommand(relay("q:0:" + n, 1));
    }
    UserEntity.JobsFrom window = follow(poll, epoch, 0);
    assertEquals("jobs_window", window.reset());
    assertEquals(1, window.from(), "job 0 was dropped for room");
    assertEquals(UserEntity.WINDOW_JOBS, window.pushes().size());
    assertEquals(null, follow(poll, epoch, 1).reset());

    UserEntity.JobsFrom restarted = follow(poll, "zz", 1);
    assertEquals("jobs_restarted", restarted.reset());
    assertEquals(epoch, restarted.epoch());
  }

  private UserEntity.Relayed relayedTo(TestProbe<UserEntity.Notice> session, String job, long version) {
    String frame = jobPush(job, version);
    alice.runCommand(relay(job, version));
    UserEntity.Relayed relayed = session.expectMessageClass(UserEntity.Relayed.class);
    assertEquals(frame, relayed.frame());
    return relayed;
  }

}
