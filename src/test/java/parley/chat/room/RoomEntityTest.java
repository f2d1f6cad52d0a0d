package parley.chat.room;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.SerializationTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.testkit.JournalOperation;
import org.apache.pekko.persistence.testkit.PersistenceTestKitSnapshotPlugin;
import org.apache.pekko.persistence.testkit.ProcessingPolicy;
import org.apache.pekko.persistence.testkit.ProcessingResult;
import org.apache.pekko.persistence.testkit.ProcessingSuccess;
import org.apache.pekko.persistence.testkit.WriteEvents;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit.CommandResult;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit.CommandResultWithReply;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit.SerializationSettings;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import parley.chat.ChatSettings;
import parley.chat.Ids;
import parley.chat.room.RoomEntity.BatchDone;
import parley.chat.room.RoomEntity.Command;
import parley.chat.room.RoomEntity.Create;
import parley.chat.room.RoomEntity.Delete;
import parley.chat.room.RoomEntity.Edit;
import parley.chat.room.RoomEntity.Event;
import parley.chat.room.RoomEntity.Events;
import parley.chat.room.RoomEntity.EventsReply;
import parley.chat.room.RoomEntity.GetEvents;
import parley.chat.room.RoomEntity.GetInfo;
import parley.chat.room.RoomEntity.Info;
import parley.chat.room.RoomEntity.InfoReply;
import parley.chat.room.RoomEntity.Invite;
import parley.chat.room.RoomEntity.IsMember;
import parley.chat.room.RoomEntity.Join;
import parley.chat.room.RoomEntity.Leave;
import parley.chat.room.RoomEntity.MemberInvited;
import parley.chat.room.RoomEntity.MemberJoined;
import parley.chat.room.RoomEntity.MemberLeft;
import parley.chat.room.RoomEntity.MemberRemoved;
import parley.chat.room.RoomEntity.Membership;
import parley.chat.room.RoomEntity.MembershipReply;
import parley.chat.room.RoomEntity.MessageDeleted;
import parley.chat.room.RoomEntity.MessageEdited;
import parley.chat.room.RoomEntity.MessagePosted;
import parley.chat.room.RoomEntity.Post;
import parley.chat.room.RoomEntity.PostDirect;
import parley.chat.room.RoomEntity.Rejected;
import parley.chat.room.RoomEntity.Relay;
import parley.chat.room.RoomEntity.RemoveMember;
import parley.chat.room.RoomEntity.RoomCreated;
import parley.chat.room.RoomEntity.SetTopic;
import parley.chat.room.RoomEntity.State;
import parley.chat.room.RoomEntity.Subscribe;
import parley.chat.room.RoomEntity.Subscribed;
import parley.chat.room.RoomEntity.TopicChanged;
import parley.chat.room.RoomEntity.Typing;
import parley.chat.room.RoomEntity.Write;
import parley.chat.room.RoomEntity.WriteBatch;
import parley.chat.room.RoomEntity.WriteReply;
import parley.chat.room.RoomEntity.Written;

/**
 * The journal actor of a room alone ({@link RoomEntity#journal}), driven with the batches the
 * group-commit front would send. The testkit round-trips every event and state through
 * Jackson CBOR (the project's serialization bindings apply), so snapshots and the journal
 * are known to carry everything the room keeps.
 */
class RoomEntityTest {

  private static final String ROOM = "general";
  private static final String DM = Ids.directRoom("bob", "alice");
  private static final long T0 = 1_790_000_000_000L;

  /**
   * Commands are not round-tripped by the testkit: {@link WriteBatch} holds {@code List<Write>}
   * of a sealed interface without Jackson type information, and it never leaves the JVM (the
   * front hands it to its own child). Every command that does cross nodes is checked by
   * {@link #wireMessagesRoundTripThroughCbor()}; events and state are checked on every command.
   */
  private static final SerializationSettings SERIALIZATION =
      EventSourcedBehaviorTestKit.enabledSerializationSettings().withVerifyCommands(false);

  private static ActorTestKit testKit;
  private static ChatSettings settings;

  private TestClock clock;
  private TestProbe<Command> front;
  private EventSourcedBehaviorTestKit<Command, Event, State> room;

  @BeforeAll
  static void startTestKit() {
    Config config =
        ConfigFactory.parseString(
                """
                pekko.actor.provider = local
                pekko.coordinated-shutdown.exit-jvm = off
                """)
            .withFallback(EventSourcedBehaviorTestKit.config())
            .withFallback(PersistenceTestKitSnapshotPlugin.config())
            .withFallback(ConfigFactory.load());
    testKit = ActorTestKit.create("RoomEntityTest", config);
    settings = ChatSettings.from(config);
  }

  @AfterAll
  static void stopTestKit() {
    testKit.shutdownTestKit();
  }

  @BeforeEach
  void freshRoom() {
    clock = new TestClock(T0);
    front = testKit.createTestProbe();
    room = kit(ROOM, settings);
  }

  // ---------------------------------------------------------------------------------------
  // Creating, joining, leaving

  @Test
  void createWritesSeqOneAndMakesTheCreatorOwner() {
    CommandResultWithReply<Command, Event, State, WriteReply> created = create("alice", "public", "Lobby");

    assertEquals(new Written(ROOM, 1, T0, null, false), created.reply());
    assertEquals(List.of(new RoomCreated(ROOM, "alice", "public", "Lobby", false, T0)), created.events());
    State state = created.state();
    assertTrue(state.exists());
    assertEquals(1, state.seq());
    assertEquals(Map.of("alice", RoomEntity.OWNER), state.members());
    assertTrue(state.isOwner("alice"));
    front.expectMessage(new BatchDone());
  }

  @Test
  void createByAnotherUserIsRoomExistsAndByTheOwnerAgainChangesNothing() {
    create("alice", "public", null);

    CommandResultWithReply<Command, Event, State, WriteReply> other = create("bob", "public", null);
    assertRejected("room_exists", other.reply());
    assertTrue(other.hasNoEvents());

    CommandResultWithReply<Command, Event, State, WriteReply> again = create("alice", "public", null);
    Written written = assertInstanceOf(Written.class, again.reply());
    assertEquals(1, written.seq());
    assertTrue(again.hasNoEvents());
    assertEquals("alice", room.getState().owner());
  }

  @Test
  void anyoneJoinsAPublicRoom() {
    create("alice", "public", null);

    CommandResultWithReply<Command, Event, State, WriteReply> joined = join("bob");

    assertEquals(new Written(ROOM, 2, T0, null, false), joined.reply());
    assertEquals(List.of(new MemberJoined(ROOM, "bob", T0)), joined.events());
    assertEquals(Map.of("alice", RoomEntity.OWNER, "bob", RoomEntity.MEMBER), joined.state().members());
    assertTrue(join("bob").hasNoEvents(), "joining twice changes nothing");
  }

  @Test
  void privateRoomNeedsAnInviteFromAMember() {
    create("alice", "private", null);

    CommandResultWithReply<Command, Event, State, WriteReply> uninvited = join("bob");
    assertRejected("room_not_found", uninvited.reply());
    assertTrue(uninvited.hasNoEvents());
    assertRejected("room_not_found", write(r -> new Invite("carol", "bob", r)).reply());

    CommandResultWithReply<Command, Event, State, WriteReply> invited = write(r -> new Invite("alice", "bob", r));
    assertEquals(new Written(ROOM, 2, T0, null, false), invited.reply());
    assertEquals(List.of(new MemberInvited(ROOM, "bob", "alice", T0)), invited.events());

    CommandResultWithReply<Command, Event, State, WriteReply> joined = join("bob");
    assertEquals(new Written(ROOM, 3, T0, null, false), joined.reply());
    assertEquals(List.of(new MemberJoined(ROOM, "bob", T0)), joined.events());
    assertTrue(joined.state().isMember("bob"));
    assertEquals(Set.of(), joined.state().invited(), "the invite is used up by the join");
  }

  @Test
  void aMemberLeavesAndThenCannotSend() {
    create("alice", "public", null);
    join("bob");

    CommandResultWithReply<Command, Event, State, WriteReply> left = write(r -> new Leave("bob", r));

    assertEquals(new Written(ROOM, 3, T0, null, false), left.reply());
    assertEquals(List.of(new MemberLeft(ROOM, "bob", T0)), left.events());
    assertFalse(left.state().isMember("bob"));
    assertRejected("not_a_member", post("bob", "b1", "still here?").reply());
    assertRejected("not_a_member", write(r -> new Leave("bob", r)).reply());
  }

  /**
   * Whatever a stranger asks of a private room or of a direct message room between others,
   * the answer is the one a room that does not exist gives: nothing tells them it is there.
   */
  @Test
  void aStrangerGetsTheAnswersOfNoRoomFromAPrivateRoomAndFromOthersDirectMessages() {
    EventSourcedBehaviorTestKit<Command, Event, State> none = kit("nowhere", settings);
    create("alice", "private", "Secret");

    EventSourcedBehaviorTestKit<Command, Event, State> dm = kit(DM, settings);
    dmWrite(dm, r -> new PostDirect("alice", "bob", "d1", "hi", r));

    for (EventSourcedBehaviorTestKit<Command, Event, State> asked : List.of(none, room, dm)) {
      List<Object> answers = List.of(
          asked.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Join("mallory", r)))).reply(),
          asked.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Leave("mallory", r)))).reply(),
          asked.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Invite("mallory", "eve", r)))).reply(),
          asked.<WriteReply>runCommand(r -> new WriteBatch(List.of(new RemoveMember("mallory", "alice", r)))).reply(),
          asked.<WriteReply>runCommand(r -> new WriteBatch(List.of(new SetTopic("mallory", "mine", null, r)))).reply(),
          asked.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Post("mallory", "m1", "hi", false, r)))).reply(),
          asked.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Edit("mallory", 1, "m2", "x", r)))).reply(),
          asked.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Delete("mallory", 1, "m3", r)))).reply(),
          asked.<InfoReply>runCommand(r -> new GetInfo("mallory", r)).reply(),
          asked.<EventsReply>runCommand(r -> new GetEvents("mallory", 1, 10, 10, r)).reply(),
          asked.<MembershipReply>runCommand(r -> new IsMember("mallory", r)).reply());
      for (Object answer : answers) {
        assertInstanceOf(Rejected.class, answer);
        assertEquals("room_not_found", ((Rejected) answer).code(), asked + ": " + answer);
      }
    }
  }

  @Test
  void unknownRoomIsRoomNotFound() {
    assertRejected("room_not_found", join("bob").reply());
    assertRejected("room_not_found", post("bob", "b1", "hi").reply());
    assertRejected("room_not_found", room.<InfoReply>runCommand(r -> new GetInfo("bob", r)).reply());
    assertRejected("room_not_found", getEvents("bob", 1, 10).reply());
    assertEquals(List.of(), room.persistenceTestKit().persistedInStorage(RoomEntity.persistenceId(ROOM).id()));
  }

  // ---------------------------------------------------------------------------------------
  // Sending

  @Test
  void nonMemberCannotSend() {
    create("alice", "public", null);

    CommandResultWithReply<Command, Event, State, WriteReply> sent = post("mallory", "m1", "hi");

    assertRejected("not_a_member", sent.reply());
    assertTrue(sent.hasNoEvents());
    assertEquals(1, sent.state().seq());
  }

  @Test
  void sendsAreWrittenAtTheJournalSeqGapFree() {
    create("alice", "public", null);
    join("bob");

    for (int i = 1; i <= 5; i++) {
      String user = i % 2 == 0 ? "bob" : "alice";
      clock.advance(Duration.ofMillis(10));
      CommandResultWithReply<Command, Event, State, WriteReply> sent = post(user, "c" + i, "message " + i);
      assertEquals(new Written(ROOM, 2 + i, clock.millis(), "c" + i, false), sent.reply());
      assertEquals(List.of(new MessagePosted(ROOM, user, "c" + i, "message " + i, clock.millis())), sent.events());
    }

    List<Object> journal = room.persistenceTestKit().persistedInStorage(RoomEntity.persistenceId(ROOM).id());
    assertEquals(7, journal.size(), "the journal holds exactly one event per timeline position");
    assertEquals(7, room.getState().seq());
    List<Long> seqs = events("alice", 1, 100).stream().map(TimelineEvent::seq).toList();
    assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L, 7L), seqs);
  }

  @Test
  void retryWithTheSameClientMsgIdGetsTheOriginalSeqAndWritesNothing() {
    create("alice", "public", null);
    post("alice", "c1", "hello");
    clock.advance(Duration.ofSeconds(3));
    post("alice", "c2", "world");

    CommandResultWithReply<Command, Event, State, WriteReply> retry = post("alice", "c1", "hello");

    assertEquals(new Written(ROOM, 2, T0, "c1", true), retry.reply());
    assertTrue(retry.hasNoEvents());
    assertEquals(3, retry.state().seq());

    State before = room.getState();
    assertEquals(before, room.restart().state(), "recovery rebuilds the same state");
    CommandResultWithReply<Command, Event, State, WriteReply> afterRestart = post("alice", "c1", "hello");
    assertEquals(new Written(ROOM, 2, T0, "c1", true), afterRestart.reply());
    assertTrue(afterRestart.hasNoEvents());
    assertEquals(3, room.persistenceTestKit().persistedInStorage(RoomEntity.persistenceId(ROOM).id()).size());
  }

  @Test
  void sameClientMsgIdFromAnotherUserIsAnotherMessage() {
    create("alice", "public", null);
    join("bob");
    post("alice", "c1", "from alice");

    CommandResultWithReply<Command, Event, State, WriteReply> bobs = post("bob", "c1", "from bob");

    assertEquals(new Written(ROOM, 4, T0, "c1", false), bobs.reply());
    assertEquals(List.of(new MessagePosted(ROOM, "bob", "c1", "from bob", T0)), bobs.events());
  }

  @Test
  void textWithALoneSurrogateIsRefusedBadTextAndNeverReachesTheJournal() {
    create("alice", "public", null);
    String lone = "half \ud800 a pair";

    CommandResultWithReply<Command, Event, State, WriteReply> posted = post("alice", "c1", lone);
    assertRejected("bad_text", posted.reply());
    assertTrue(posted.hasNoEvents());
    assertRejected("bad_text", write(r -> new SetTopic("alice", "\udc00", null, r)).reply());
    EventSourcedBehaviorTestKit<Command, Event, State> dm = kit(DM, settings);
    assertRejected("bad_text", dmWrite(dm, r -> new PostDirect("alice", "bob", "c2", lone, r)).reply());
    // The room goes on as before, and a surrogate pair is ordinary text.
    assertEquals(new Written(ROOM, 2, T0, "c3", false), post("alice", "c3", "smile \ud83d\ude00").reply());
  }

  @Test
  void neitherPartyOfADirectMessageRoomHasOwnerActions() {
    EventSourcedBehaviorTestKit<Command, Event, State> dm = kit(DM, settings);
    dmWrite(dm, r -> new PostDirect("alice", "bob", "c1", "hi", r));

    for (String by : List.of("alice", "bob")) {
      String other = by.equals("alice") ? "bob" : "alice";
      CommandResultWithReply<Command, Event, State, WriteReply> removed =
          dmWrite(dm, r -> new RemoveMember(by, other, r));
      assertRejected("forbidden", removed.reply());
      assertTrue(removed.hasNoEvents());
      assertRejected("forbidden", dmWrite(dm, r -> new SetTopic(by, "ours", null, r)).reply());
    }
    assertEquals(Set.of("alice", "bob"), dm.getState().members().keySet());
  }

  @Test
  void bodyOverTheLimitIsBodyTooLarge() {
    create("alice", "public", null);
    int max = settings.maxBodyBytes();

    CommandResultWithReply<Command, Event, State, WriteReply> ascii = post("alice", "c1", "x".repeat(max + 1));
    assertRejected("body_too_large", ascii.reply());
    assertTrue(ascii.hasNoEvents());
    // Fewer characters than the limit, but more UTF-8 bytes.
    String accented = "é".repeat(max / 2 + 1);
    assertRejected("body_too_large", post("alice", "c2", accented).reply());
    EventSourcedBehaviorTestKit<Command, Event, State> dm = kit(DM, settings);
    CommandResultWithReply<Command, Event, State, WriteReply> direct =
        dmWrite(dm, r -> new PostDirect("alice", "bob", "c3", accented, r));
    assertRejected("body_too_large", direct.reply());
    assertTrue(direct.hasNoEvents(), "no direct message room without its message");

    CommandResultWithReply<Command, Event, State, WriteReply> atLimit = post("alice", "c4", "x".repeat(max));
    assertEquals(new Written(ROOM, 2, T0, "c4", false), atLimit.reply());
    assertRejected("body_too_large", write(r -> new Edit("alice", 2, "c5", accented, r)).reply());
  }

  @Test
  void serverPostsNeedNoMembership() {
    create("alice", "private", null);

    CommandResultWithReply<Command, Event, State, WriteReply> posted =
        write(r -> new Post("system", "deploy-1", "Deploy finished", true, r));

    assertEquals(new Written(ROOM, 2, T0, "deploy-1", false), posted.reply());
    assertEquals(List.of(new MessagePosted(ROOM, "system", "deploy-1", "Deploy finished", T0)), posted.events());
    assertFalse(posted.state().isMember("system"));
    assertEquals(new Written(ROOM, 2, T0, "deploy-1", true),
        write(r -> new Post("system", "deploy-1", "Deploy finished", true, r)).reply());
  }

  // ---------------------------------------------------------------------------------------
  // Editing and deleting

  @Test
  void authorEditsAndDeletesOwnMessage() {
    create("alice", "public", null);
    post("alice", "c1", "helo");
    clock.advance(Duration.ofSeconds(1));

    CommandResultWithReply<Command, Event, State, WriteReply> edited =
        write(r -> new Edit("alice", 2, "c2", "hello", r));
    assertEquals(new Written(ROOM, 3, T0 + 1000, "c2", false), edited.reply());
    assertEquals(List.of(new MessageEdited(ROOM, "alice", 2, "c2", "hello", T0 + 1000)), edited.events());
    assertEquals(new Written(ROOM, 3, T0 + 1000, "c2", true),
        write(r -> new Edit("alice", 2, "c2", "hello", r)).reply(), "a retried edit is recognised");

    CommandResultWithReply<Command, Event, State, WriteReply> deleted =
        write(r -> new Delete("alice", 2, "c3", r));
    assertEquals(new Written(ROOM, 4, T0 + 1000, "c3", false), deleted.reply());
    assertEquals(List.of(new MessageDeleted(ROOM, "alice", 2, "c3", T0 + 1000)), deleted.events());

    assertRejected("message_not_found", write(r -> new Edit("alice", 2, "c4", "too late", r)).reply());
    assertRejected("message_not_found", write(r -> new Delete("alice", 2, "c5", r)).reply());
    assertRejected("message_not_found", write(r -> new Delete("alice", 1, "c6", r)).reply(),
        "seq 1 is not a message");
    assertRejected("message_not_found", write(r -> new Edit("alice", 99, "c7", "?", r)).reply());
  }

  @Test
  void changingAnotherUsersMessageIsForbidden() {
    create("alice", "public", null);
    join("bob");
    post("alice", "c1", "mine");

    CommandResultWithReply<Command, Event, State, WriteReply> edit = write(r -> new Edit("bob", 3, "b1", "yours", r));
    assertRejected("forbidden", edit.reply());
    assertTrue(edit.hasNoEvents());
    CommandResultWithReply<Command, Event, State, WriteReply> delete = write(r -> new Delete("bob", 3, "b2", r));
    assertRejected("forbidden", delete.reply());
    assertTrue(delete.hasNoEvents());
    assertRejected("not_a_member", write(r -> new Edit("mallory", 3, "m1", "x", r)).reply());
  }

  @Test
  void historyShowsDeletedMessagesWithoutBodyAndEditedOnesWithTheLatestBody() {
    create("alice", "public", null);
    post("alice", "c1", "first draft");
    post("alice", "c2", "regret");
    write(r -> new Edit("alice", 2, "c3", "second draft", r));
    write(r -> new Edit("alice", 2, "c4", "final", r));
    write(r -> new Delete("alice", 3, "c5", r));

    List<TimelineEvent> events = events("alice", 1, 100);

    assertEquals(6, events.size());
    TimelineEvent edited = events.get(1);
    assertEquals(TimelineEvent.MESSAGE, edited.kind());
    assertEquals(2, edited.seq());
    assertEquals("final", edited.body());
    assertTrue(edited.edited());
    assertFalse(edited.deleted());
    TimelineEvent deleted = events.get(2);
    assertEquals(TimelineEvent.MESSAGE, deleted.kind());
    assertEquals(3, deleted.seq());
    assertNull(deleted.body());
    assertTrue(deleted.deleted());
    assertEquals(TimelineEvent.EDITED, events.get(3).kind());
    assertEquals(2L, events.get(3).target());
    assertEquals(TimelineEvent.DELETED, events.get(5).kind());
    assertEquals(3L, events.get(5).target());
    // The journal keeps what was written; only reads show the latest content.
    assertEquals(new MessagePosted(ROOM, "alice", "c1", "first draft", T0),
        room.persistenceTestKit().persistedInStorage(RoomEntity.persistenceId(ROOM).id()).get(1));
  }

  // ---------------------------------------------------------------------------------------
  // Batches

  @Test
  void aBatchPersistsOnlyItsValidWritesInOneWriteAndAnswersEach() {
    create("alice", "public", null);
    join("bob");
    front.receiveSeveralMessages(2);
    TestProbe<WriteReply> alice = testKit.createTestProbe();
    TestProbe<WriteReply> carol = testKit.createTestProbe();
    TestProbe<WriteReply> bob = testKit.createTestProbe();
    WriteSizes writes = new WriteSizes(RoomEntity.persistenceId(ROOM).id());
    room.persistenceTestKit().withPolicy(writes);
    CommandResult<Command, Event, State> result;
    try {
      result = room.runCommand(new WriteBatch(List.of(
          new Post("alice", "a1", "one", false, alice.ref()),
          new Post("carol", "c1", "gatecrash", false, carol.ref()),
          new Post("bob", "b1", "two", false, bob.ref()))));
    } finally {
      room.persistenceTestKit().resetPolicy();
    }

    assertEquals(new Written(ROOM, 3, T0, "a1", false), alice.receiveMessage());
    assertRejected("not_a_member", carol.receiveMessage());
    assertEquals(new Written(ROOM, 4, T0, "b1", false), bob.receiveMessage());
    assertEquals(List.of(
        new MessagePosted(ROOM, "alice", "a1", "one", T0),
        new MessagePosted(ROOM, "bob", "b1", "two", T0)), result.events());
    assertEquals(List.of(2), writes.sizes, "both events go to the journal as one atomic write");
    front.expectMessage(new BatchDone());
    front.expectNoMessage(Duration.ofMillis(50));
  }

  @Test
  void laterWritesOfABatchSeeTheEarlierOnes() {
    create("alice", "public", null);
    TestProbe<WriteReply> replies = testKit.createTestProbe();

    CommandResult<Command, Event, State> result = room.runCommand(new WriteBatch(List.of(
        new Post("carol", "c1", "before joining", false, replies.ref()),
        new Join("carol", replies.ref()),
        new Post("carol", "c2", "after joining", false, replies.ref()),
        new Post("carol", "c2", "after joining", false, replies.ref()))));

    assertRejected("not_a_member", replies.receiveMessage());
    assertEquals(new Written(ROOM, 2, T0, null, false), replies.receiveMessage());
    assertEquals(new Written(ROOM, 3, T0, "c2", false), replies.receiveMessage());
    assertEquals(new Written(ROOM, 3, T0, "c2", true), replies.receiveMessage(), "a retry within the same batch");
    assertEquals(List.of(
        new MemberJoined(ROOM, "carol", T0),
        new MessagePosted(ROOM, "carol", "c2", "after joining", T0)), result.events());
  }

  @Test
  void aBatchOfOnlyRefusedWritesWritesNothingButStillAnswersAndFinishes() {
    create("alice", "public", null);
    front.receiveMessage();
    TestProbe<WriteReply> replies = testKit.createTestProbe();

    CommandResult<Command, Event, State> result = room.runCommand(new WriteBatch(List.of(
        new Post("carol", "c1", "x", false, replies.ref()),
        new SetTopic("carol", "mine now", null, replies.ref()))));

    assertTrue(result.hasNoEvents());
    assertRejected("not_a_member", replies.receiveMessage());
    assertRejected("forbidden", replies.receiveMessage());
    front.expectMessage(new BatchDone());
  }

  // ---------------------------------------------------------------------------------------
  // Direct messages

  @Test
  void firstDirectMessageCreatesTheRoomWithBothMembersInTheSameWrite() {
    EventSourcedBehaviorTestKit<Command, Event, State> dm = kit(DM, settings);
    WriteSizes writes = new WriteSizes(RoomEntity.persistenceId(DM).id());
    dm.persistenceTestKit().withPolicy(writes);
    CommandResultWithReply<Command, Event, State, WriteReply> first;
    CommandResultWithReply<Command, Event, State, WriteReply> second;
    try {
      first = dm.runCommand(r -> new WriteBatch(List.of(new PostDirect("alice", "bob", "d1", "hi bob", r))));
      second = dm.runCommand(r -> new WriteBatch(List.of(new PostDirect("bob", "alice", "d1", "hi alice", r))));
    } finally {
      dm.persistenceTestKit().resetPolicy();
    }

    assertEquals("dm:alice:bob", DM);
    assertEquals(new Written(DM, 3, T0, "d1", false), first.reply());
    assertEquals(List.of(
        new RoomCreated(DM, "alice", RoomEntity.PRIVATE, null, true, T0),
        new MemberJoined(DM, "bob", T0),
        new MessagePosted(DM, "alice", "d1", "hi bob", T0)), first.events());
    assertTrue(first.state().direct());
    assertEquals(Map.of("alice", RoomEntity.OWNER, "bob", RoomEntity.MEMBER), first.state().members());

    assertEquals(new Written(DM, 4, T0, "d1", false), second.reply(), "bob's d1 is not alice's d1");
    assertEquals(List.of(new MessagePosted(DM, "bob", "d1", "hi alice", T0)), second.events());
    assertEquals(List.of(3, 1), writes.sizes, "room, member and message in one atomic write");

    CommandResultWithReply<Command, Event, State, WriteReply> retry =
        dm.runCommand(r -> new WriteBatch(List.of(new PostDirect("alice", "bob", "d1", "hi bob", r))));
    assertEquals(new Written(DM, 3, T0, "d1", true), retry.reply());
    assertTrue(retry.hasNoEvents());
    assertEquals(new Written(DM, 5, T0, "p1", false),
        dm.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Post("bob", "p1", "plain send", false, r)))).reply());
  }

  @Test
  void directMessageRoomsAreForTheirTwoUsersOnly() {
    assertRejected("bad_room_id", write(r -> new PostDirect("alice", "bob", "d1", "hi", r)).reply(),
        "general is not a direct message room");

    EventSourcedBehaviorTestKit<Command, Event, State> dm = kit(DM, settings);
    assertRejected("bad_room_id", dmWrite(dm, r -> new PostDirect("carol", "bob", "d1", "hi", r)).reply());
    assertRejected("bad_room_id", dmWrite(dm, r -> new PostDirect("alice", "alice", "d1", "me", r)).reply());
    assertRejected("bad_room_id", dmWrite(dm, r -> new Create("alice", "public", null, r)).reply());
    assertTrue(dm.persistenceTestKit().persistedInStorage(RoomEntity.persistenceId(DM).id()).isEmpty());

    dmWrite(dm, r -> new PostDirect("alice", "bob", "d1", "hi", r));
    assertRejected("room_not_found", dmWrite(dm, r -> new Post("carol", "c1", "psst", false, r)).reply());
    assertRejected("room_not_found", dmWrite(dm, r -> new Join("carol", r)).reply());
    assertRejected("forbidden", dmWrite(dm, r -> new Invite("alice", "carol", r)).reply());
  }

  @Test
  void directMessageAfterTheRecipientLeftBringsThemBack() {
    EventSourcedBehaviorTestKit<Command, Event, State> dm = kit(DM, settings);
    dmWrite(dm, r -> new PostDirect("alice", "bob", "d1", "hi", r));
    dmWrite(dm, r -> new Leave("bob", r));

    CommandResultWithReply<Command, Event, State, WriteReply> again =
        dmWrite(dm, r -> new PostDirect("alice", "bob", "d2", "still there?", r));

    assertEquals(new Written(DM, 6, T0, "d2", false), again.reply());
    assertEquals(List.of(
        new MemberJoined(DM, "bob", T0),
        new MessagePosted(DM, "alice", "d2", "still there?", T0)), again.events());
  }

  // ---------------------------------------------------------------------------------------
  // Owner-only changes

  @Test
  void onlyTheOwnerRemovesMembersAndSetsTheTopic() {
    create("alice", "public", "old");
    join("bob");
    join("carol");

    CommandResultWithReply<Command, Event, State, WriteReply> bobRemoves = write(r -> new RemoveMember("bob", "carol", r));
    assertRejected("forbidden", bobRemoves.reply());
    assertTrue(bobRemoves.hasNoEvents());
    CommandResultWithReply<Command, Event, State, WriteReply> bobSets = write(r -> new SetTopic("bob", "mine", null, r));
    assertRejected("forbidden", bobSets.reply());
    assertTrue(bobSets.hasNoEvents());

    CommandResultWithReply<Command, Event, State, WriteReply> removed = write(r -> new RemoveMember("alice", "carol", r));
    assertEquals(new Written(ROOM, 4, T0, null, false), removed.reply());
    assertEquals(List.of(new MemberRemoved(ROOM, "carol", "alice", T0)), removed.events());
    assertFalse(removed.state().isMember("carol"));
    assertRejected("not_a_member", write(r -> new RemoveMember("alice", "carol", r)).reply());

    CommandResultWithReply<Command, Event, State, WriteReply> topic = write(r -> new SetTopic("alice", "new", null, r));
    assertEquals(new Written(ROOM, 5, T0, null, false), topic.reply());
    assertEquals(List.of(new TopicChanged(ROOM, "new", "alice", T0)), topic.events());
    assertEquals("new", topic.state().topic());
  }

  /** Contention by optimistic versions: a topic change names the settings version it read. */
  @Test
  void aTopicChangeWithAStaleSettingsVersionIsRefusedAndChangesNothing() {
    create("alice", "public", null);
    join("bob");
    assertEquals(1, info("alice").settingsVersion(), "the created event's seq");

    CommandResultWithReply<Command, Event, State, WriteReply> first = write(r -> new SetTopic("alice", "first", 1L, r));
    assertEquals(new Written(ROOM, 3, T0, null, false), first.reply());
    assertEquals(3, info("alice").settingsVersion(), "the topic event's seq");

    CommandResultWithReply<Command, Event, State, WriteReply> stale = write(r -> new SetTopic("alice", "second", 1L, r));
    assertRejected("version_mismatch", stale.reply());
    assertTrue(stale.hasNoEvents());
    assertEquals("first", stale.state().topic());

    write(r -> new Post("bob", "m1", "chat goes on", false, r));
    assertEquals(3, info("alice").settingsVersion(), "messages do not change the settings' version");
    assertEquals(new Written(ROOM, 5, T0, null, false), write(r -> new SetTopic("alice", "second", 3L, r)).reply());
  }

  private Info info(String user) {
    return (Info) room.<InfoReply>runCommand(r -> new GetInfo(user, r)).reply();
  }

  @Test
  void anOwnerWhoLeftIsNoLongerOwner() {
    create("alice", "public", null);
    join("bob");
    write(r -> new Leave("alice", r));

    assertRejected("forbidden", write(r -> new SetTopic("alice", "still mine?", null, r)).reply());

    join("alice");
    assertEquals(RoomEntity.OWNER, room.getState().members().get("alice"), "rejoining restores the role");
  }

  // ---------------------------------------------------------------------------------------
  // Reads

  @Test
  void getEventsServesRangesFromTheRecentWindow() {
    ChatSettings small = withRecentWindow(5);
    EventSourcedBehaviorTestKit<Command, Event, State> r5 = kit("small", small);
    r5.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Create("alice", "public", null, r))));
    for (int i = 2; i <= 9; i++) {
      String id = "c" + i;
      r5.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Post("alice", id, "m" + id, false, r))));
    }
    State state = r5.getState();
    assertEquals(9, state.seq());
    assertEquals(5, state.recent().size());
    assertEquals(5, state.firstRecentSeq());

    Events window = events(r5, "alice", 5, Long.MAX_VALUE, 50);
    assertEquals(List.of(5L, 6L, 7L, 8L, 9L), window.events().stream().map(TimelineEvent::seq).toList());
    assertEquals(9, window.lastSeq());
    assertEquals("mc5", window.events().get(0).body());
    assertEquals(List.of(7L, 8L), events(r5, "alice", 7, Long.MAX_VALUE, 2).events().stream().map(TimelineEvent::seq).toList());
    assertEquals(List.of(6L, 7L), events(r5, "alice", 6, 7, 50).events().stream().map(TimelineEvent::seq).toList());
    assertEquals(List.of(9L), events(r5, "alice", 9, 9, 1).events().stream().map(TimelineEvent::seq).toList());
    assertEquals(List.of(8L, 9L), events(r5, "alice", 0, Long.MAX_VALUE, 2).events().stream().map(TimelineEvent::seq).toList(),
        "from 0 asks for the newest");
    assertEquals(List.of(6L, 7L), events(r5, "alice", 0, 7, 2).events().stream().map(TimelineEvent::seq).toList());

    Events after = events(r5, "alice", 10, Long.MAX_VALUE, 50);
    assertEquals(List.of(), after.events());
    assertEquals(9, after.lastSeq());
    assertEquals(List.of(), events(r5, "alice", 8, 7, 50).events(), "an empty range");
    assertRejected("not_a_member",
        r5.<EventsReply>runCommand(r -> new GetEvents("mallory", 5, 9, 50, r)).reply());
  }

  @Test
  void theRecentWindowBoundsEditsAndRetryRecognition() {
    ChatSettings small = withRecentWindow(5);
    EventSourcedBehaviorTestKit<Command, Event, State> r5 = kit("small", small);
    r5.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Create("alice", "public", null, r))));
    for (int i = 2; i <= 9; i++) {
      String id = "c" + i;
      r5.<WriteReply>runCommand(r -> new WriteBatch(List.of(new Post("alice", id, "m" + id, false, r))));
    }

    // seq 5 is the oldest the window holds; seq 4 has left it.
    assertEquals(new Written("small", 5, T0, "c5", true), windowWrite(r5, r -> new Post("alice", "c5", "mc5", false, r)).reply());
    assertRejected("message_not_found", windowWrite(r5, r -> new Edit("alice", 4, "e1", "x", r)).reply());
    CommandResultWithReply<Command, Event, State, WriteReply> edit = windowWrite(r5, r -> new Edit("alice", 5, "e2", "x", r));
    assertEquals(new Written("small", 10, T0, "e2", false), edit.reply());
    // Now seq 6 is the oldest: a clientMsgId older than the window is no longer recognised.
    CommandResultWithReply<Command, Event, State, WriteReply> old = windowWrite(r5, r -> new Post("alice", "c5", "mc5", false, r));
    assertEquals(new Written("small", 11, T0, "c5", false), old.reply());
  }

  @Test
  void privateRoomInfoIsForMembersOnly() {
    create("alice", "private", "Secret plans");

    assertRejected("room_not_found", room.<InfoReply>runCommand(r -> new GetInfo("carol", r)).reply());
    assertEquals(
        new Info(ROOM, RoomEntity.PRIVATE, "Secret plans", "alice", Map.of("alice", RoomEntity.OWNER), 1, false, 1),
        room.<InfoReply>runCommand(r -> new GetInfo("alice", r)).reply());
  }

  @Test
  void isMemberAnswersFromTheCurrentMembersWithoutWriting() {
    assertRejected("room_not_found", isMember("alice"), "no room yet");
    create("alice", "private", null);
    write(r -> new Invite("alice", "bob", r));
    join("bob");

    assertEquals(new Membership(ROOM, "alice", true), isMember("alice"));
    assertEquals(new Membership(ROOM, "bob", true), isMember("bob"));
    // Of a private room, whoever is not in it hears what no room at all would say.
    assertRejected("room_not_found", isMember("carol"));

    write(r -> new Leave("bob", r));
    assertRejected("room_not_found", isMember("bob"), "a member who left is not one");
    CommandResultWithReply<Command, Event, State, MembershipReply> asked =
        room.runCommand(r -> new IsMember("alice", r));
    assertTrue(asked.hasNoEvents());
  }

  @Test
  void publicRoomInfoIsForAnyone() {
    create("alice", "public", null);
    join("bob");

    assertEquals(
        new Info(ROOM, RoomEntity.PUBLIC, null, "alice",
            Map.of("alice", RoomEntity.OWNER, "bob", RoomEntity.MEMBER), 2, false, 1),
        room.<InfoReply>runCommand(r -> new GetInfo("carol", r)).reply());
  }

  // ---------------------------------------------------------------------------------------
  // Pushes

  @Test
  void aSubscribedHubHearsTheEventAfterTheSenderHasItsReply() {
    create("alice", "public", null);
    // One probe for reply and push: one sender to one receiver keeps order.
    TestProbe<Object> both = testKit.createTestProbe();
    Subscribed subscribed = room.<Subscribed>runCommand(r -> new Subscribe(both.<RoomPush>ref().narrow(), r)).reply();
    assertEquals(new Subscribed(ROOM, 1), subscribed);

    room.runCommand(new WriteBatch(List.of(new Post("alice", "c1", "hi all", false, both.<WriteReply>ref().narrow()))));

    assertEquals(new Written(ROOM, 2, T0, "c1", false), both.receiveMessage());
    RoomPush.Published published = assertInstanceOf(RoomPush.Published.class, both.receiveMessage());
    assertEquals(ROOM, published.room());
    assertEquals(
        List.of(new TimelineEvent(ROOM, 2, T0, TimelineEvent.MESSAGE, "alice", null, "hi all", "c1", null, null, null, false, false)),
        published.events());
  }

  @Test
  void oneBatchIsOnePushWithItsEventsInSeqOrder() {
    create("alice", "public", null);
    join("bob");
    TestProbe<RoomPush> hub = testKit.createTestProbe();
    room.<Subscribed>runCommand(r -> new Subscribe(hub.ref(), r));
    TestProbe<WriteReply> replies = testKit.createTestProbe();

    room.runCommand(new WriteBatch(List.of(
        new Post("alice", "a1", "one", false, replies.ref()),
        new Post("mallory", "m1", "spam", false, replies.ref()),
        new Post("bob", "b1", "two", false, replies.ref()))));

    RoomPush.Published published = assertInstanceOf(RoomPush.Published.class, hub.receiveMessage());
    assertEquals(List.of(3L, 4L), published.events().stream().map(TimelineEvent::seq).toList());
    assertEquals(List.of("a1", "b1"), published.events().stream().map(TimelineEvent::clientMsgId).toList());
    hub.expectNoMessage(Duration.ofMillis(50));
  }

  @Test
  void refusedAndRetriedWritesPushNothing() {
    create("alice", "public", null);
    post("alice", "c1", "hi");
    TestProbe<RoomPush> hub = testKit.createTestProbe();
    room.<Subscribed>runCommand(r -> new Subscribe(hub.ref(), r));

    post("alice", "c1", "hi");
    post("mallory", "m1", "spam");

    hub.expectNoMessage(Duration.ofMillis(100));
  }

  @Test
  void typingFromAMemberIsPushedAndFromANonMemberIsNot() {
    create("alice", "public", null);
    TestProbe<RoomPush> hub = testKit.createTestProbe();
    room.<Subscribed>runCommand(r -> new Subscribe(hub.ref(), r));

    CommandResult<Command, Event, State> typing = room.runCommand(new Typing("alice"));
    assertTrue(typing.hasNoEvents());
    assertEquals(new RoomPush.Ephemeral(ROOM, "typing", "alice", 1, null, T0), hub.receiveMessage());

    room.runCommand(new Typing("mallory"));
    hub.expectNoMessage(Duration.ofMillis(100));
    assertEquals(1, room.getState().seq());
  }

  @Test
  void relayedEphemeralPushesReachTheHubs() {
    create("alice", "public", null);
    TestProbe<RoomPush> hub = testKit.createTestProbe();
    room.<Subscribed>runCommand(r -> new Subscribe(hub.ref(), r));
    RoomPush.Ephemeral read = new RoomPush.Ephemeral(ROOM, "read", "alice", 1, null, T0);

    assertTrue(room.runCommand(new Relay(read)).hasNoEvents());

    assertEquals(read, hub.receiveMessage());
  }

  @Test
  void aHubWhoseLeaseRanOutHearsNothingUntilItRenews() {
    create("alice", "public", null);
    TestProbe<RoomPush> hub = testKit.createTestProbe();
    room.<Subscribed>runCommand(r -> new Subscribe(hub.ref(), r));
    clock.advance(settings.hubLease().plusMillis(1));

    post("alice", "c1", "anyone?");
    hub.expectNoMessage(Duration.ofMillis(100));

    assertEquals(new Subscribed(ROOM, 2), room.<Subscribed>runCommand(r -> new Subscribe(hub.ref(), r)).reply());
    post("alice", "c2", "there you are");
    RoomPush.Published published = assertInstanceOf(RoomPush.Published.class, hub.receiveMessage());
    assertEquals(3, published.events().get(0).seq());
  }

  @Test
  void aStoppedHubIsForgotten() {
    create("alice", "public", null);
    TestProbe<RoomPush> gone = testKit.createTestProbe();
    TestProbe<RoomPush> hub = testKit.createTestProbe();
    room.<Subscribed>runCommand(r -> new Subscribe(gone.ref(), r));
    room.<Subscribed>runCommand(r -> new Subscribe(hub.ref(), r));
    gone.stop();

    assertEquals(new Written(ROOM, 2, T0, "c1", false), post("alice", "c1", "hi").reply());
    assertInstanceOf(RoomPush.Published.class, hub.receiveMessage());
  }

  // ---------------------------------------------------------------------------------------
  // Recovery

  @Test
  void recoveryKeepsMembersSeqAndTheRetryWindow() {
    create("alice", "private", "Logo");
    write(r -> new Invite("alice", "bob", r));
    write(r -> new Invite("alice", "carol", r));
    join("bob");
    post("bob", "b1", "draft attached");
    write(r -> new Edit("bob", 5, "b2", "draft v2 attached", r));
    State before = room.getState();

    State after = room.restart().state();

    assertEquals(before, after);
    assertEquals(6, after.seq());
    assertEquals(Map.of("alice", RoomEntity.OWNER, "bob", RoomEntity.MEMBER), after.members());
    assertEquals(Set.of("carol"), after.invited());
    assertEquals(new Written(ROOM, 5, T0, "b1", true), post("bob", "b1", "draft attached").reply());
    assertEquals(new Written(ROOM, 7, T0, "b3", false), post("bob", "b3", "thoughts?").reply());
    assertEquals("draft v2 attached", events("bob", 5, 5).get(0).body());
  }

  @Test
  void aSnapshotAloneRestoresTheRoom() {
    // Snapshots are taken every 500 events: creation, 498 messages and a delete in one batch.
    create("alice", "public", null);
    TestProbe<WriteReply> replies = testKit.createTestProbe();
    List<Write> writes = new ArrayList<>();
    for (int i = 2; i <= 499; i++) {
      writes.add(new Post("alice", "c" + i, "message " + i, false, replies.ref()));
    }
    writes.add(new Delete("alice", 7, "d1", replies.ref()));
    room.runCommand(new WriteBatch(writes));
    replies.receiveSeveralMessages(499);
    State before = room.getState();
    assertEquals(500, before.seq());
    String pid = RoomEntity.persistenceId(ROOM).id();
    assertEquals(1, room.snapshotTestKit().orElseThrow().persistedInStorage(pid).size());

    // With the events gone, only the snapshot can bring the room back.
    room.persistenceTestKit().clearByIdPreservingSeqNumbers(pid);
    State recovered = room.restart().state();

    assertEquals(before, recovered);
    assertEquals(new Written(ROOM, 300, T0, "c300", true), post("alice", "c300", "message 300").reply());
    assertTrue(events("alice", 7, 7).get(0).deleted());
    assertEquals(new Written(ROOM, 501, T0, "c501", false), post("alice", "c501", "after").reply());
  }

  // ---------------------------------------------------------------------------------------
  // Wire messages

  @Test
  void snapshotStateRoundTripsThroughCborAndStillRecognisesRetries() {
    create("alice", "public", "Logo");
    join("bob");
    write(r -> new Post("bob", "c1", "hi", false, r));
    write(r -> new Edit("bob", 3, "c2", "hi!", r));
    State state = room.getState();

    State copy = new SerializationTestKit(testKit.system()).verifySerialization(state, true);

    assertEquals(state, copy, "the retry index is rebuilt from the window, not stored");
    assertEquals(Optional.of(3L), copy.findWrite("bob", "c1").map(TimelineEvent::seq));
    assertEquals(Optional.of(4L), copy.findWrite("bob", "c2").map(TimelineEvent::seq));
    assertEquals(Optional.empty(), copy.findWrite("alice", "c1"), "retries are recognised per user");
  }

  @Test
  void wireMessagesRoundTripThroughCbor() {
    SerializationTestKit serialization = new SerializationTestKit(testKit.system());
    ActorRef<WriteReply> replyTo = testKit.<WriteReply>createTestProbe().ref();
    ActorRef<RoomPush> hub = testKit.<RoomPush>createTestProbe().ref();
    TimelineEvent message =
        new TimelineEvent(ROOM, 2, T0, TimelineEvent.MESSAGE, "alice", null, "héllo", "c1", null, null, null, true, false);
    TimelineEvent deleted =
        new TimelineEvent(ROOM, 3, T0, TimelineEvent.MESSAGE, "alice", null, null, "c2", null, null, null, false, true);
    TimelineEvent created =
        new TimelineEvent(ROOM, 1, T0, TimelineEvent.CREATED, "alice", null, null, null, null, "Logo", "private", false, false);
    TimelineEvent edited =
        new TimelineEvent(ROOM, 4, T0, TimelineEvent.EDITED, "alice", null, "x", "c3", 2L, null, null, false, false);
    List<Object> messages = List.of(
        new Create("alice", "private", "Logo", replyTo),
        new Join("bob", replyTo),
        new Leave("bob", replyTo),
        new Invite("alice", "bob", replyTo),
        new RemoveMember("alice", "bob", replyTo),
        new SetTopic("alice", "t", null, replyTo),
        new Post("alice", "c1", "hi", false, replyTo),
        new PostDirect("alice", "bob", "c1", "hi", replyTo),
        new Edit("alice", 2, "c2", "hi!", replyTo),
        new Delete("alice", 2, "c3", replyTo),
        new Subscribe(hub, testKit.<Subscribed>createTestProbe().ref()),
        new GetEvents("alice", 1, Long.MAX_VALUE, 50, testKit.<EventsReply>createTestProbe().ref()),
        new GetInfo("alice", testKit.<InfoReply>createTestProbe().ref()),
        new IsMember("bob", testKit.<MembershipReply>createTestProbe().ref()),
        new Membership(ROOM, "bob", true),
        new Typing("alice"),
        new RoomEntity.KeepAwake(),
        new MembershipOutbox.Enqueued(ROOM, List.of(new MembershipOutbox.Notice("bob", true, 2)), 2),
        new MembershipOutbox.Delivered(ROOM, "bob", 2),
        new MembershipOutbox.State(2, Map.of("bob", new MembershipOutbox.Notice("bob", false, 5))),
        new Relay(new RoomPush.Ephemeral(ROOM, "receipt", "bob", 7, "delivered", T0)),
        new Written(ROOM, 2, T0, "c1", true),
        new Written(ROOM, 2, 0, null, true),
        new Rejected("not_a_member", "bob is not a member of room general"),
        new Subscribed(ROOM, 41),
        new Events(ROOM, List.of(created, message, deleted, edited), 4, created.ts()),
        new Info(ROOM, "private", null, "alice", Map.of("alice", "owner", "bob", "member"), 4, false, 3),
        new RoomPush.Published(ROOM, List.of(message, edited)),
        new RoomPush.Ephemeral(ROOM, "typing", "bob", 4, null, T0));
    for (Object m : messages) {
      assertEquals(m, serialization.verifySerialization(m, true), m.getClass().getSimpleName());
    }
  }

  // ---------------------------------------------------------------------------------------

  private EventSourcedBehaviorTestKit<Command, Event, State> kit(String roomId, ChatSettings s) {
    EventSourcedBehaviorTestKit<Command, Event, State> kit =
        EventSourcedBehaviorTestKit.create(
            testKit.system(), RoomEntity.journal(roomId, s, front.ref(), clock), SERIALIZATION);
    kit.clear();
    return kit;
  }

  private static ChatSettings withRecentWindow(int window) {
    ChatSettings s = settings;
    return new ChatSettings(s.maxFrameBytes(), s.maxBodyBytes(), window, s.maxBatch(), s.maxBatchBytes(),
        s.hubLease(), s.hubRenewInterval(), s.pageSize(), s.ratePerSecond(), s.rateBurst(),
        s.floodDisconnectAfter(), s.typingInterval(), s.outboundBuffer(), s.askTimeout(),
        s.heartbeatInterval(), s.heartbeatTimeout(), s.maxTopicBytes(), s.presenceListLimit(),
        s.userRatePerSecond(), s.userRateBurst(), s.maxConnectionsPerUser(), s.roomsPerMinute(),
        s.offlineGrace(), s.sessionRenewInterval(), s.maxStartingSessions());
  }

  private CommandResultWithReply<Command, Event, State, WriteReply> write(Function<ActorRef<WriteReply>, Write> write) {
    return room.runCommand(replyTo -> new WriteBatch(List.of(write.apply(replyTo))));
  }

  private static CommandResultWithReply<Command, Event, State, WriteReply> dmWrite(
      EventSourcedBehaviorTestKit<Command, Event, State> kit, Function<ActorRef<WriteReply>, Write> write) {
    return kit.runCommand(replyTo -> new WriteBatch(List.of(write.apply(replyTo))));
  }

  private static CommandResultWithReply<Command, Event, State, WriteReply> windowWrite(
      EventSourcedBehaviorTestKit<Command, Event, State> kit, Function<ActorRef<WriteReply>, Write> write) {
    return dmWrite(kit, write);
  }

  private CommandResultWithReply<Command, Event, State, WriteReply> create(String user, String visibility, String topic) {
    return write(r -> new Create(user, visibility, topic, r));
  }

  private CommandResultWithReply<Command, Event, State, WriteReply> join(String user) {
    return write(r -> new Join(user, r));
  }

  private CommandResultWithReply<Command, Event, State, WriteReply> post(String user, String clientMsgId, String body) {
    return write(r -> new Post(user, clientMsgId, body, false, r));
  }

  private CommandResultWithReply<Command, Event, State, EventsReply> getEvents(String user, long from, long to) {
    return room.runCommand(r -> new GetEvents(user, from, to, 200, r));
  }

  private MembershipReply isMember(String user) {
    return room.<MembershipReply>runCommand(r -> new IsMember(user, r)).reply();
  }

  private List<TimelineEvent> events(String user, long from, long to) {
    return assertInstanceOf(Events.class, getEvents(user, from, to).reply()).events();
  }

  private static Events events(
      EventSourcedBehaviorTestKit<Command, Event, State> kit, String user, long from, long to, int limit) {
    return assertInstanceOf(Events.class, kit.<EventsReply>runCommand(r -> new GetEvents(user, from, to, limit, r)).reply());
  }

  private static void assertRejected(String code, Object reply) {
    assertRejected(code, reply, null);
  }

  private static void assertRejected(String code, Object reply, String why) {
    Rejected rejected = assertInstanceOf(Rejected.class, reply, why);
    assertEquals(code, rejected.code(), rejected.message());
  }

  /** Records the number of events in each atomic write of one persistence id. */
  static final class WriteSizes implements ProcessingPolicy<JournalOperation> {
    final List<Integer> sizes = new CopyOnWriteArrayList<>();
    private final String persistenceId;

    WriteSizes(String persistenceId) {
      this.persistenceId = persistenceId;
    }

    @Override
    public ProcessingResult tryProcess(String pid, JournalOperation operation) {
      if (pid.equals(persistenceId) && operation instanceof WriteEvents write) {
        sizes.add(write.getBatch().size());
      }
      return ProcessingSuccess.getInstance();
    }
  }

  /** A clock the test moves by hand. */
  static final class TestClock extends Clock {
    private final AtomicLong millis;

    TestClock(long start) {
      this.millis = new AtomicLong(start);
    }

    void advance(Duration by) {
      millis.addAndGet(by.toMillis());
    }

    @Override
    public long millis() {
      return millis.get();
    }

    @Override
    public Instant instant() {
      return Instant.ofEpochMilli(millis.get());
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
}
