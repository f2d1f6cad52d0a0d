package parley.collab.document;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import com.typesafe.config.ConfigFactory;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.persistence.testkit.PersistenceTestKitSnapshotPlugin;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import parley.chat.room.RoomEntity;
import parley.chat.room.RoomEntity.IsMember;
import parley.chat.room.RoomEntity.Membership;
import parley.collab.document.DocumentEntity.Acked;
import parley.collab.document.DocumentEntity.Command;
import parley.collab.document.DocumentEntity.Create;
import parley.collab.document.DocumentEntity.CreateReply;
import parley.collab.document.DocumentEntity.Created;
import parley.collab.document.DocumentEntity.DocumentClosed;
import parley.collab.document.DocumentEntity.DocumentCreated;
import parley.collab.document.DocumentEntity.Event;
import parley.collab.document.DocumentEntity.GetOps;
import parley.collab.document.DocumentEntity.GetOpsReply;
import parley.collab.document.DocumentEntity.Open;
import parley.collab.document.DocumentEntity.OpenReply;
import parley.collab.document.DocumentEntity.Opened;
import parley.collab.document.DocumentEntity.OperationApplied;
import parley.collab.document.DocumentEntity.Push;
import parley.collab.document.DocumentEntity.Rejected;
import parley.collab.document.DocumentEntity.State;
import parley.collab.document.DocumentEntity.Submit;
import parley.collab.document.DocumentEntity.SubmitReply;
import parley.collab.document.DocumentEntity.Subscribe;
import parley.collab.ot.TextOperation;

/**
 * A document created in a room: the room's members may use it, as the room answers when asked
 * (a {@link TestProbe} plays the room, so each test decides what and when it answers), and a
 * "member" answer is trusted for the TTL only.
 */
class DocumentRoomAccessTest {

  private static final Duration TTL = Duration.ofSeconds(10);
  private static final DocumentSettings SETTINGS = new DocumentSettings(5, 4, 200, 8, TTL, Duration.ofSeconds(1), 1 << 20);
  private static final String ROOM = "design";
  private static final AtomicInteger DOC_IDS = new AtomicInteger();

  private static ActorTestKit testKit;

  private String docId;
  private TestProbe<RoomEntity.Command> room;
  private ManualClock clock;
  private EventSourcedBehaviorTestKit<Command, Event, State> doc;

  @BeforeAll
  static void startTestKit() {
    testKit =
        ActorTestKit.create(
            "DocumentRoomAccessTest",
            ConfigFactory.parseString(
                    """
                    pekko.actor.provider = local
                    pekko.coordinated-shutdown.exit-jvm = off
                    """)
                .withFallback(EventSourcedBehaviorTestKit.config())
                .withFallback(PersistenceTestKitSnapshotPlugin.config())
                .withFallback(ConfigFactory.load()));
  }

  @AfterAll
  static void stopTestKit() {
    testKit.shutdownTestKit();
  }

  @BeforeEach
  void newDocument() {
    docId = "room-doc-" + DOC_IDS.incrementAndGet();
    room = testKit.createTestProbe();
    clock = new ManualClock();
    doc =
        EventSourcedBehaviorTestKit.create(
            testKit.system(), DocumentEntity.create(docId, SETTINGS, roomId -> room.ref(), clock));
  }

  // ---------------------------------------------------------------------------------------
  // Creating in a room

  @Test
  void aMemberCreatesTheDocumentInTheRoomAndItIsJournaledAndShown() {
    TestProbe<CreateReply> created = testKit.createTestProbe();
    doc.runCommand(new Create("alice", "hello", List.of(), ROOM, created.ref()));

    answer("alice", true);
    assertEquals(new Created(docId, 0), created.receiveMessage());
    assertEquals(
        List.of(new DocumentCreated(docId, "alice", "hello", List.of(), ROOM)),
        doc.persistenceTestKit().persistedInStorage("doc|" + docId));
    assertEquals(ROOM, doc.restart().state().room(), "the room comes back from the journal");
    Opened opened = assertInstanceOf(Opened.class, open("alice"));
    assertEquals(ROOM, opened.room());
    room.expectNoMessage(Duration.ofMillis(50));
  }

  @Test
  void creatingInARoomIsRefusedToANonMemberAndForAnUnknownRoom() {
    TestProbe<CreateReply> created = testKit.createTestProbe();

    doc.runCommand(new Create("carol", "", List.of(), ROOM, created.ref()));
    answer("carol", false);
    assertRejected(DocumentEntity.NOT_A_MEMBER, created.receiveMessage());

    doc.runCommand(new Create("carol", "", List.of(), "nowhere", created.ref()));
    room.expectMessageClass(IsMember.class)
        .replyTo()
        .tell(new RoomEntity.Rejected("room_not_found", "room nowhere does not exist"));
    assertRejected(DocumentEntity.ROOM_NOT_FOUND, created.receiveMessage());

    assertEquals(List.of(), doc.persistenceTestKit().persistedInStorage("doc|" + docId));
    assertEquals(false, doc.getState().exists());
  }

  @Test
  void creatingInASilentRoomIsUnavailableAndCreatesNothing() {
    TestProbe<CreateReply> created = testKit.createTestProbe();

    doc.runCommand(new Create("alice", "", List.of(), ROOM, created.ref()));
    room.expectMessageClass(IsMember.class);

    assertRejected(DocumentEntity.UNAVAILABLE, created.receiveMessage(Duration.ofSeconds(3)));
    assertEquals(false, doc.getState().exists());
  }

  // ---------------------------------------------------------------------------------------
  // Using a document of a room

  @Test
  void aRoomMemberIsAskedForOnceAndTrustedUntilTheTtlEnds() {
    createInRoom("ab");

    TestProbe<OpenReply> opened = testKit.createTestProbe();
    doc.runCommand(new Open("bob", opened.ref()));
    answer("bob", true);
    assertEquals(new Opened(docId, "ab", 0, "alice", ROOM, List.of(), List.of()), opened.receiveMessage());

    assertEquals(new Acked(docId, 1, "b1"), submitNow("bob", "b1", 0, op(2, "c")));
    assertEquals(new Acked(docId, 2, "b2"), submitNow("bob", "b2", 1, op(3, "d")));
    room.expectNoMessage(Duration.ofMillis(100));

    clock.advance(TTL);
    TestProbe<SubmitReply> later = testKit.createTestProbe();
    doc.runCommand(new Submit("bob", "b3", 2, op(4, "e"), later.ref()));
    answer("bob", true);
    assertEquals(new Acked(docId, 3, "b3"), later.receiveMessage());
    assertEquals("abcde", doc.getState().text());
  }

  @Test
  void aNonMemberIsRefusedEverythingAndTheDocumentStaysAsItWas() {
    createInRoom("ab");

    TestProbe<OpenReply> opened = testKit.createTestProbe();
    doc.runCommand(new Open("carol", opened.ref()));
    answer("carol", false);
    assertRejected(DocumentEntity.NOT_FOUND, opened.receiveMessage());

    TestProbe<SubmitReply> submitted = testKit.createTestProbe();
    doc.runCommand(new Submit("carol", "c1", 0, op(2, "!"), submitted.ref()));
    answer("carol", false);
    assertRejected(DocumentEntity.NOT_FOUND, submitted.receiveMessage());

    TestProbe<GetOpsReply> ops = testKit.createTestProbe();
    doc.runCommand(new GetOps("carol", 0, ops.ref()));
    answer("carol", false);
    assertRejected(DocumentEntity.NOT_FOUND, ops.receiveMessage());

    assertEquals("ab", doc.getState().text());
    assertEquals(0, doc.getState().revision());
  }

  @Test
  void aMemberWhoLeftIsRefusedOnceTheTtlEndsAndLosesTheSubscription() {
    createInRoom("ab");
    TestProbe<Push> bobsPushes = testKit.createTestProbe();
    TestProbe<OpenReply> subscribed = testKit.createTestProbe();
    doc.runCommand(new Subscribe("bob", "b-session", bobsPushes.ref(), subscribed.ref(), true));
    answer("bob", true);
    assertInstanceOf(DocumentEntity.Subscribed.class, subscribed.receiveMessage());

    // Bob leaves the room; until the TTL ends the document does not ask again.
    clock.advance(TTL.minusMillis(1));
    assertEquals(new Acked(docId, 1, "b1"), submitNow("bob", "b1", 0, op(2, "c")));
    bobsPushes.expectMessageClass(DocumentEntity.OpApplied.class);
    clock.advance(Duration.ofMillis(1));
    TestProbe<SubmitReply> refused = testKit.createTestProbe();
    doc.runCommand(new Submit("bob", "b2", 1, op(3, "d"), refused.ref()));
    answer("bob", false);

    assertRejected(DocumentEntity.NOT_FOUND, refused.receiveMessage());
    bobsPushes.expectMessage(new DocumentClosed(docId));
    assertEquals(new Acked(docId, 2, "a1"), submitNow("alice", "a1", 1, op("A", 3)));
    bobsPushes.expectNoMessage(Duration.ofMillis(100));
    assertEquals("Aabc", doc.getState().text());
    room.expectNoMessage(Duration.ofMillis(50));
  }

  @Test
  void aUsersCommandsWaitForTheRoomInOrderWhileOthersGoOn() {
    createInRoom("");
    TestProbe<SubmitReply> bobs = testKit.createTestProbe();
    doc.runCommand(new Submit("bob", "b1", 0, op("x"), bobs.ref()));
    IsMember asked = room.expectMessageClass(IsMember.class);
    doc.runCommand(new Submit("bob", "b2", 0, op("y"), bobs.ref()));
    TestProbe<OpenReply> bobOpens = testKit.createTestProbe();
    doc.runCommand(new Open("bob", bobOpens.ref()));

    assertEquals(new Acked(docId, 1, "a1"), submitNow("alice", "a1", 0, op("a")), "the owner does not wait");
    room.expectNoMessage(Duration.ofMillis(100));
    bobs.expectNoMessage(Duration.ofMillis(50));

    asked.replyTo().tell(new Membership(ROOM, "bob", true));
    assertEquals(new Acked(docId, 2, "b1"), bobs.receiveMessage());
    assertEquals(new Acked(docId, 3, "b2"), bobs.receiveMessage());
    assertInstanceOf(Opened.class, bobOpens.receiveMessage());
    List<String> order =
        doc.persistenceTestKit().persistedInStorage("doc|" + docId).stream()
            .filter(OperationApplied.class::isInstance)
            .map(e -> ((OperationApplied) e).clientOpId())
            .toList();
    assertEquals(List.of("a1", "b1", "b2"), order);
    assertEquals("yxa", doc.getState().text(), "b2, based on 0 too, was transformed past a1 and b1");
  }

  @Test
  void aSilentRoomMakesTheRequestUnavailableAndGrantsNothing() {
    createInRoom("ab");
    TestProbe<SubmitReply> submitted = testKit.createTestProbe();

    doc.runCommand(new Submit("bob", "b1", 0, op(2, "!"), submitted.ref()));
    room.expectMessageClass(IsMember.class);
    assertRejected(DocumentEntity.UNAVAILABLE, submitted.receiveMessage(Duration.ofSeconds(3)));
    assertEquals("ab", doc.getState().text());

    doc.runCommand(new Submit("bob", "b1", 0, op(2, "!"), submitted.ref()));
    answer("bob", true);
    assertEquals(new Acked(docId, 1, "b1"), submitted.receiveMessage(), "the retry asks again");
  }

  // ---------------------------------------------------------------------------------------

  /** Creates the document in {@link #ROOM}, by alice, a member. */
  private void createInRoom(String text) {
    TestProbe<CreateReply> created = testKit.createTestProbe();
    doc.runCommand(new Create("alice", text, List.of(), ROOM, created.ref()));
    answer("alice", true);
    created.expectMessage(new Created(docId, 0));
  }

  /** The room is asked whether {@code user} is a member, and answers. */
  private void answer(String user, boolean member) {
    IsMember asked = room.expectMessageClass(IsMember.class);
    assertEquals(user, asked.user());
    asked.replyTo().tell(new Membership(ROOM, user, member));
  }

  private OpenReply open(String user) {
    return doc.<OpenReply>runCommand(replyTo -> new Open(user, replyTo)).reply();
  }

  /** A submission that must be answered without asking the room. */
  private SubmitReply submitNow(String user, String clientOpId, long base, TextOperation op) {
    return doc.<SubmitReply>runCommand(replyTo -> new Submit(user, clientOpId, base, op, replyTo)).reply();
  }

  private static TextOperation op(Object... wire) {
    return TextOperation.fromWire(Arrays.asList(wire));
  }

  private static void assertRejected(String code, Object reply) {
    Rejected rejected = assertInstanceOf(Rejected.class, reply);
    assertEquals(code, rejected.code(), rejected.message());
  }

  /** A clock the test moves by hand: membership answers expire without waiting. */
  private static final class ManualClock extends Clock {
    private final AtomicLong millis = new AtomicLong(1_800_000_000_000L);

    void advance(Duration by) {
      millis.addAndGet(by.toMillis());
    }

    @Override
    public long millis() {
      return millis.get();
    }

    @Override
    public Instant instant() {
      return Instant.ofEpochMilli(millis());
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
