package parley.chat.room;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.testkit.PersistenceTestKitPlugin;
import org.apache.pekko.persistence.testkit.PersistenceTestKitSnapshotPlugin;
import org.apache.pekko.persistence.testkit.javadsl.PersistenceTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.chat.ChatSettings;
import parley.chat.room.RoomEntity.Command;
import parley.chat.room.RoomEntity.WriteReply;
import parley.chat.room.RoomEntity.Written;
import parley.chat.user.UserEntity;

/**
 * The room makes sure each user entity learns every change of its membership at least once:
 * the whole room (front, journal actor, outbox) on the in-memory journal, with the user
 * entities stood in for by a probe that answers when the test says so.
 */
class MembershipOutboxTest {

  private static final Duration WAIT = Duration.ofSeconds(10);

  private static ActorTestKit testKit;
  private static ChatSettings settings;
  private static PersistenceTestKit journal;

  @BeforeAll
  static void startTestKit() {
    Config config =
        ConfigFactory.parseString(
                """
                pekko.actor.provider = local
                pekko.coordinated-shutdown.exit-jvm = off
                """)
            .withFallback(PersistenceTestKitPlugin.config())
            .withFallback(PersistenceTestKitSnapshotPlugin.config())
            .withFallback(ConfigFactory.load());
    testKit = ActorTestKit.create("MembershipOutboxTest", config);
    settings = ChatSettings.from(config);
    journal = PersistenceTestKit.create(testKit.system());
  }

  @AfterAll
  static void stopTestKit() {
    testKit.shutdownTestKit();
  }

  @Test
  void everyJoinLeaveAndRemovalReachesItsUserAndAnUnansweredOneIsSentAgain() {
    Users users = new Users();
    ActorRef<Command> room = spawnRoom("club", users);

    write(room, r -> new RoomEntity.Create("alice", "public", null, r));
    answer(users.of("alice").receiveMessage(WAIT), 1);
    write(room, r -> new RoomEntity.Join("bob", r));
    UserEntity.RoomJoined unanswered = users.of("bob").expectMessageClass(UserEntity.RoomJoined.class, WAIT);
    assertEquals(2, unanswered.seq());
    // Not answered: asked again once the ask times out.
    answer(users.of("bob").receiveMessage(MembershipOutbox.ASK_TIMEOUT.plus(WAIT)), 2);

    write(room, r -> new RoomEntity.Join("carol", r));
    answer(users.of("carol").expectMessageClass(UserEntity.RoomJoined.class, WAIT), 3);
    write(room, r -> new RoomEntity.Leave("bob", r));
    answer(users.of("bob").expectMessageClass(UserEntity.RoomLeft.class, WAIT), 4);
    write(room, r -> new RoomEntity.RemoveMember("alice", "carol", r));
    answer(users.of("carol").expectMessageClass(UserEntity.RoomLeft.class, WAIT), 5);
    write(room, r -> new RoomEntity.Post("alice", "m1", "no membership change", false, r));

    awaitDelivered("club");
    assertEquals(new MembershipOutbox.State(5, Map.of()), outboxState("club"));
    for (String user : List.of("alice", "bob", "carol")) {
      users.of(user).expectNoMessage(Duration.ofMillis(200));
    }
  }

  @Test
  void aChangeUnansweredWhenTheRoomStopsIsSentByTheNextIncarnation() {
    Users unreachable = new Users();
    ActorRef<Command> room = spawnRoom("lounge", unreachable);
    write(room, r -> new RoomEntity.Create("alice", "public", null, r));
    write(room, r -> new RoomEntity.Join("bob", r));
    unreachable.of("alice").expectMessageClass(UserEntity.RoomJoined.class, WAIT);
    unreachable.of("bob").expectMessageClass(UserEntity.RoomJoined.class, WAIT);
    testKit.stop(room, WAIT);

    Users users = new Users();
    spawnRoom("lounge", users);
    answer(users.of("alice").expectMessageClass(UserEntity.RoomJoined.class, WAIT), 1);
    answer(users.of("bob").expectMessageClass(UserEntity.RoomJoined.class, WAIT), 2);
    awaitDelivered("lounge");
  }

  /**
   * The node dies after the room's journal write and before the outbox heard of it: here the
   * journal actor runs alone and its outbox is a probe that drops what it hears. The room's
   * next incarnation finds its outbox behind and reads the change from the room's journal.
   */
  @Test
  void aChangeWrittenByTheRoomButNeverHandedToTheOutboxIsFoundInTheRoomsJournal() {
    String roomId = "attic";
    TestProbe<Command> front = testKit.createTestProbe();
    TestProbe<MembershipOutbox.Command> lostOutbox = testKit.createTestProbe();
    ActorRef<Command> alone =
        testKit.spawn(RoomEntity.journal(roomId, settings, front.ref(), lostOutbox.ref(), testKit.system().ignoreRef(), Clock.systemUTC()));
    TestProbe<WriteReply> replies = testKit.createTestProbe();
    alone.tell(new RoomEntity.WriteBatch(List.of(
        new RoomEntity.Create("alice", "public", null, replies.ref()),
        new RoomEntity.Join("bob", replies.ref()),
        new RoomEntity.Post("bob", "m1", "hello", false, replies.ref()))));
    replies.receiveSeveralMessages(3, WAIT);
    lostOutbox.expectMessageClass(MembershipOutbox.RoomRecovered.class, WAIT);
    lostOutbox.expectMessageClass(MembershipOutbox.Changed.class, WAIT);
    testKit.stop(alone, WAIT);
    assertEquals(MembershipOutbox.State.empty(), outboxState(roomId), "the outbox never wrote");

    Users users = new Users();
    spawnRoom(roomId, users);
    answer(users.of("alice").expectMessageClass(UserEntity.RoomJoined.class, WAIT), 1);
    answer(users.of("bob").expectMessageClass(UserEntity.RoomJoined.class, WAIT), 2);
    awaitDelivered(roomId);
    assertEquals(2, outboxState(roomId).through());
  }

  /** One probe per user entity. */
  private static final class Users {
    private final Map<String, TestProbe<UserEntity.Command>> probes = new ConcurrentHashMap<>();

    TestProbe<UserEntity.Command> of(String user) {
      return probes.computeIfAbsent(user, u -> testKit.createTestProbe("user-" + u));
    }
  }

  private ActorRef<Command> spawnRoom(String roomId, Users users) {
    return testKit.spawn(RoomEntity.create(roomId, settings, InMemoryLinks.of(testKit.system(), user -> users.of(user).ref()), testKit.system().ignoreRef()));
  }

  private static void write(ActorRef<Command> room, Function<ActorRef<WriteReply>, Command> write) {
    TestProbe<WriteReply> reply = testKit.createTestProbe();
    room.tell(write.apply(reply.ref()));
    assertInstanceOf(Written.class, reply.receiveMessage(WAIT));
  }

  private static void answer(UserEntity.Command command, long seq) {
    if (command instanceof UserEntity.RoomJoined joined) {
      assertEquals(seq, joined.seq());
      joined.replyTo().tell(new UserEntity.Ack(joined.room()));
    } else {
      UserEntity.RoomLeft left = assertInstanceOf(UserEntity.RoomLeft.class, command);
      assertEquals(seq, left.seq());
      left.replyTo().tell(new UserEntity.Ack(left.room()));
    }
  }

  private static MembershipOutbox.State outboxState(String roomId) {
    return journal.persistedInStorage(MembershipOutbox.persistenceId(roomId).id()).stream()
        .reduce(
            MembershipOutbox.State.empty(),
            (state, event) -> event instanceof MembershipOutbox.Enqueued e
                ? state.enqueue(e.notices(), e.through())
                : state.delivered(((MembershipOutbox.Delivered) event).user(), ((MembershipOutbox.Delivered) event).seq()),
            (a, b) -> b);
  }

  private static void awaitDelivered(String roomId) {
    TestProbe<Object> probe = testKit.createTestProbe();
    probe.awaitAssert(WAIT, () -> {
      assertTrue(outboxState(roomId).pending().isEmpty(), "still waiting: " + outboxState(roomId).pending());
      return null;
    });
  }
}
