package parley.collab.document;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.SerializationTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.persistence.testkit.JournalOperation;
import org.apache.pekko.persistence.testkit.PersistenceTestKitSnapshotPlugin;
import org.apache.pekko.persistence.testkit.ProcessingPolicy;
import org.apache.pekko.persistence.testkit.ProcessingResult;
import org.apache.pekko.persistence.testkit.ProcessingSuccess;
import org.apache.pekko.persistence.testkit.WriteEvents;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit.CommandResultWithReply;
import org.apache.pekko.persistence.testkit.javadsl.PersistenceTestKit;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.apache.pekko.serialization.Serializers;
import org.apache.pekko.serialization.jackson.JacksonObjectMapperProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import parley.collab.document.DocumentEntity.Acked;
import parley.collab.document.DocumentEntity.AddEditor;
import parley.collab.document.DocumentEntity.AddEditorReply;
import parley.collab.document.DocumentEntity.Command;
import parley.collab.document.DocumentEntity.Create;
import parley.collab.document.DocumentEntity.CreateReply;
import parley.collab.document.DocumentEntity.Created;
import parley.collab.document.DocumentEntity.Cursor;
import parley.collab.document.DocumentEntity.CursorMoved;
import parley.collab.document.DocumentEntity.CursorRemoved;
import parley.collab.document.DocumentEntity.DocumentClosed;
import parley.collab.document.DocumentEntity.DocumentCreated;
import parley.collab.document.DocumentEntity.EditorAdded;
import parley.collab.document.DocumentEntity.Editors;
import parley.collab.document.DocumentEntity.EditorsChanged;
import parley.collab.document.DocumentEntity.Event;
import parley.collab.document.DocumentEntity.GetOps;
import parley.collab.document.DocumentEntity.GetOpsReply;
import parley.collab.document.DocumentEntity.HistoryEntry;
import parley.collab.document.DocumentEntity.OpApplied;
import parley.collab.document.DocumentEntity.Open;
import parley.collab.document.DocumentEntity.OpenReply;
import parley.collab.document.DocumentEntity.Opened;
import parley.collab.document.DocumentEntity.OperationApplied;
import parley.collab.document.DocumentEntity.Ops;
import parley.collab.document.DocumentEntity.Push;
import parley.collab.document.DocumentEntity.Rejected;
import parley.collab.document.DocumentEntity.State;
import parley.collab.document.DocumentEntity.Submit;
import parley.collab.document.DocumentEntity.SubmitReply;
import parley.collab.document.DocumentEntity.Subscribe;
import parley.collab.document.DocumentEntity.Subscribed;
import parley.collab.document.DocumentEntity.UpdateCursor;
import parley.collab.ot.OtClient;
import parley.collab.ot.TextOperation;

class DocumentEntityTest {

  /** Small limits, so that windows, snapshots and the size limit are reached in a few steps. */
  private static final DocumentSettings SETTINGS =
      new DocumentSettings(5, 4, 200, 8, Duration.ofSeconds(10), Duration.ofSeconds(3), 1 << 20);

  /** These documents belong to no room, so they never ask one (DocumentRoomAccessTest does). */
  private static final DocumentEntity.Rooms NO_ROOMS =
      roomId -> {
        throw new AssertionError("a document without a room asked room " + roomId);
      };

  private static final String DOC = "d1";
  private static final String PID = "doc|" + DOC;

  private static ActorTestKit testKit;
  private static EventSourcedBehaviorTestKit<Command, Event, State> doc;

  @BeforeAll
  static void startTestKit() {
    testKit =
        ActorTestKit.create(
            "DocumentEntityTest",
            ConfigFactory.parseString(
                    """
                    pekko.actor.provider = local
                    pekko.coordinated-shutdown.exit-jvm = off
                    """)
                .withFallback(EventSourcedBehaviorTestKit.config())
                .withFallback(PersistenceTestKitSnapshotPlugin.config())
                .withFallback(ConfigFactory.load()));
    doc = EventSourcedBehaviorTestKit.create(testKit.system(), DocumentEntity.create(DOC, SETTINGS, NO_ROOMS));
  }

  @AfterAll
  static void stopTestKit() {
    testKit.shutdownTestKit();
  }

  @BeforeEach
  void clearJournal() {
    doc.clear();
  }

  @Test
  void createsThenOpensDocument() {
    CommandResultWithReply<Command, Event, State, CreateReply> created = create("hello", "bob");

    assertEquals(new Created(DOC, 0), created.reply());
    assertEquals(new DocumentCreated(DOC, "alice", "hello", List.of("bob"), null), created.event());

    CommandResultWithReply<Command, Event, State, OpenReply> opened =
        doc.runCommand(replyTo -> new Open("bob", replyTo));
    assertEquals(new Opened(DOC, "hello", 0, "alice", null, List.of("bob"), List.of()), opened.reply());
    assertTrue(opened.hasNoEvents());
  }

  @Test
  void refusesToCreateTwice() {
    create("hello");

    CommandResultWithReply<Command, Event, State, CreateReply> again = create("other");

    assertRejected(DocumentEntity.ALREADY_EXISTS, again.reply());
    assertTrue(again.hasNoEvents());
    assertEquals("hello", doc.getState().text());
  }

  @Test
  void refusesInitialTextOverTheSizeLimit() {
    CommandResultWithReply<Command, Event, State, CreateReply> created = create("x".repeat(101));

    assertRejected(DocumentEntity.DOCUMENT_TOO_LARGE, created.reply());
    assertTrue(created.hasNoEvents());
  }

  @Test
  void refusesInitialTextWithALoneSurrogate() {
    // Sent locally: CBOR could not carry this command between nodes, so the testkit cannot either.
    ActorRef<Command> entity = testKit.spawn(DocumentEntity.create("d-surrogate", SETTINGS, NO_ROOMS));
    TestProbe<CreateReply> replies = testKit.createTestProbe();

    entity.tell(new Create("alice", "a\uD800b", List.of(), null, replies.ref()));

    assertRejected(DocumentEntity.BAD_TEXT, replies.receiveMessage());
    assertEquals(List.of(), PersistenceTestKit.create(testKit.system()).persistedInStorage("doc|d-surrogate"));
  }

  @Test
  void unknownDocumentIsNotFound() {
    assertRejected(DocumentEntity.NOT_FOUND, doc.<OpenReply>runCommand(r -> new Open("alice", r)).reply());
    CommandResultWithReply<Command, Event, State, SubmitReply> submitted = submit("alice", "c1", 0, op("x"));
    assertRejected(DocumentEntity.NOT_FOUND, submitted.reply());
    assertTrue(submitted.hasNoEvents());
    assertRejected(DocumentEntity.NOT_FOUND, getOps("alice", 0));
  }

  /** One doc_ops answer is a page, whatever the client asks: bounded by count and by weight. */
  @Test
  void docOpsAnswersAPageBoundedByCountAndByWeight() {
    List<HistoryEntry> small = new ArrayList<>();
    for (int i = 1; i <= 500; i++) {
      small.add(new HistoryEntry(i, op("x"), "alice", "c" + i));
    }
    List<HistoryEntry> page = DocumentEntity.page(small);
    assertEquals(DocumentEntity.OPS_PAGE, page.size());
    assertEquals(small.subList(0, DocumentEntity.OPS_PAGE), page);

    List<HistoryEntry> large = new ArrayList<>();
    for (int i = 1; i <= 10; i++) {
      large.add(new HistoryEntry(i, op("y".repeat(8_000)), "alice", "c" + i));
    }
    // 8 + 3 * 8,000 = 24,008 counted bytes each: two fit in 64 KiB, not three.
    assertEquals(2, DocumentEntity.page(large).size());
    List<HistoryEntry> huge = List.of(new HistoryEntry(1, op("z".repeat(40_000)), "alice", "c1"));
    assertEquals(huge, DocumentEntity.page(huge), "one operation always goes, whatever it weighs");
    assertEquals(List.of(), DocumentEntity.page(List.of()));
  }

  @Test
  void onlyOwnerAndEditorsMayOpenOrEdit() {
    create("hello", "bob");

    // A stranger hears what no document at all would say (docs/protocol.md, Privacy).
    assertRejected(DocumentEntity.NOT_FOUND, doc.<OpenReply>runCommand(r -> new Open("mallory", r)).reply());
    CommandResultWithReply<Command, Event, State, SubmitReply> submitted = submit("mallory", "m1", 0, op(5, "!"));
    assertRejected(DocumentEntity.NOT_FOUND, submitted.reply());
    assertTrue(submitted.hasNoEvents());
    assertRejected(DocumentEntity.NOT_FOUND, getOps("mallory", 0));
    TestProbe<Push> pushes = testKit.createTestProbe();
    assertRejected(DocumentEntity.NOT_FOUND, subscribe("mallory", "m", pushes.ref()));
    assertRejected(DocumentEntity.NOT_FOUND, addEditor("mallory", "eve").reply());
    // An editor may see the document, and is told what they may not do.
    assertRejected(DocumentEntity.FORBIDDEN, addEditor("bob", "mallory").reply());
    assertEquals("hello", doc.getState().text());
  }

  @Test
  void ownerAddsEditors() {
    create("hello");
    TestProbe<Push> pushes = testKit.createTestProbe();
    subscribe("alice", "a1", pushes.ref());

    CommandResultWithReply<Command, Event, State, AddEditorReply> added = addEditor("alice", "bob");

    assertEquals(new Editors(DOC, "alice", List.of("bob")), added.reply());
    assertEquals(new EditorAdded(DOC, "bob"), added.event());
    pushes.expectMessage(new EditorsChanged(DOC, "alice", List.of("bob")));
    assertInstanceOf(Opened.class, doc.<OpenReply>runCommand(r -> new Open("bob", r)).reply());
    assertTrue(addEditor("alice", "bob").hasNoEvents(), "adding an editor twice changes nothing");
  }

  @Test
  void concurrentSubmissionsAtOneBaseAreTransformedAndConverge() {
    create("abc", "bob");
    TextOperation alices = op("X", 3);
    TextOperation bobs = op(1, -1, 1, "Y");

    CommandResultWithReply<Command, Event, State, SubmitReply> first = submit("alice", "a1", 0, alices);
    CommandResultWithReply<Command, Event, State, SubmitReply> second = submit("bob", "b1", 0, bobs);

    assertEquals(new Acked(DOC, 1, "a1"), first.reply());
    assertEquals(new OperationApplied(DOC, 1, alices, "alice", "a1"), first.event());
    assertEquals(new Acked(DOC, 2, "b1"), second.reply());
    TextOperation bobsTransformed = TextOperation.transform(bobs, alices).aPrime();
    assertEquals(new OperationApplied(DOC, 2, bobsTransformed, "bob", "b1"), second.event());
    assertEquals("XacY", second.state().text());

    // Alice hears her ack, then Bob's operation; Bob hears Alice's while his own is in flight.
    OtClient alice = OtClient.synced().applyClient(alices).state().serverAck().state();
    String alicesText = alice.applyServer(bobsTransformed).apply().apply(alices.apply("abc"));
    OtClient.Incoming bobHears = OtClient.synced().applyClient(bobs).state().applyServer(alices);
    String bobsText = bobHears.apply().apply(bobs.apply("abc"));
    assertEquals("XacY", alicesText);
    assertEquals("XacY", bobsText);
  }

  @Test
  void retriedSubmissionGetsItsOriginalAckAfterRestart() {
    create("abc", "bob");
    assertEquals(new Acked(DOC, 1, "c1"), submit("alice", "c1", 0, op(3, "!")).reply());
    assertEquals(new Acked(DOC, 2, "c1"), submit("bob", "c1", 1, op("?", 4)).reply(), "ids are per user");

    doc.restart();
    CommandResultWithReply<Command, Event, State, SubmitReply> retried = submit("alice", "c1", 0, op(3, "!"));

    assertEquals(new Acked(DOC, 1, "c1"), retried.reply());
    assertTrue(retried.hasNoEvents());
    assertEquals("?abc!", retried.state().text());
  }

  @Test
  void dedupWindowIsBounded() {
    create("");
    for (int i = 1; i <= 10; i++) {
      submit("alice", "c" + i, i - 1, i == 1 ? op("a") : op(i - 1, "a"));
    }

    List<DocumentEntity.DedupEntry> remembered = doc.getState().recentClientOps();

    assertEquals(SETTINGS.dedupWindow(), remembered.size());
    assertEquals("c3", remembered.get(0).clientOpId());
    assertEquals("c10", remembered.get(remembered.size() - 1).clientOpId());
  }

  @Test
  void dedupWindowForgetsOnlyWhatLeftIt() {
    create("");
    for (int i = 1; i <= 10; i++) {
      submit("alice", "c" + i, i - 1, i == 1 ? op("a") : op(i - 1, "a"));
    }
    State state = doc.getState();

    assertEquals(Optional.empty(), state.revisionOf("alice", "c2"), "c2 has left the window");
    assertEquals(Optional.of(3L), state.revisionOf("alice", "c3"));
    assertEquals(Optional.of(10L), state.revisionOf("alice", "c10"));
    assertEquals(Optional.empty(), state.revisionOf("bob", "c10"), "ids are per user");
  }

  @Test
  void snapshotStateRoundTripsThroughCborWithItsRetryIndex() {
    create("");
    submit("alice", "c1", 0, op("a"));
    submit("alice", "c2", 1, op(1, "b"));
    State state = doc.getState();

    State copy = new SerializationTestKit(testKit.system()).verifySerialization(state, true);

    assertEquals(state, copy, "the retry index is rebuilt from the dedup window, not stored");
    assertEquals(Optional.of(2L), copy.revisionOf("alice", "c2"));
    assertEquals("ab", copy.text());
  }

  @Test
  void baseOlderThanRetainedWindowNeedsResync() {
    create("");
    for (int i = 1; i <= 6; i++) {
      submit("alice", "c" + i, i - 1, i == 1 ? op("a") : op(i - 1, "a"));
    }

    CommandResultWithReply<Command, Event, State, SubmitReply> stale = submit("alice", "late", 1, op(1, "b"));

    assertRejected(DocumentEntity.RESYNC_REQUIRED, stale.reply());
    assertTrue(stale.hasNoEvents());
    assertRejected(DocumentEntity.RESYNC_REQUIRED, getOps("alice", 1));
    Ops missed = (Ops) getOps("alice", 2);
    assertEquals(List.of(3L, 4L, 5L, 6L), missed.ops().stream().map(HistoryEntry::revision).toList());
    assertEquals(6, missed.revision());
    assertEquals(new Acked(DOC, 7, "oldest"), submit("alice", "oldest", 2, op("b", 2)).reply());
    assertEquals("baaaaaa", doc.getState().text());
  }

  @Test
  void baseAheadOfDocumentIsBadRevision() {
    create("abc");

    CommandResultWithReply<Command, Event, State, SubmitReply> ahead = submit("alice", "c1", 1, op(3, "!"));

    assertRejected(DocumentEntity.BAD_REVISION, ahead.reply());
    assertTrue(ahead.hasNoEvents());
    assertRejected(DocumentEntity.BAD_REVISION, submit("alice", "c2", -1, op(3, "!")).reply());
    assertRejected(DocumentEntity.BAD_REVISION, getOps("alice", 5));
  }

  @Test
  void baseLengthMismatchLeavesDocumentUnchanged() {
    create("abc");
    submit("alice", "c1", 0, op(3, "d"));

    CommandResultWithReply<Command, Event, State, SubmitReply> wrong = submit("alice", "c2", 1, op(3, "!"));

    assertRejected(DocumentEntity.BASE_LENGTH_MISMATCH, wrong.reply());
    assertTrue(wrong.hasNoEvents());
    assertEquals("abcd", wrong.state().text());
    assertEquals(1, wrong.state().revision());
    assertRejected(DocumentEntity.BASE_LENGTH_MISMATCH, submit("alice", "c3", 0, op(2, "!")).reply());
  }

  @Test
  void operationCuttingASurrogatePairIsBadOperation() {
    create("a\uD83D\uDE00b");

    CommandResultWithReply<Command, Event, State, SubmitReply> cut = submit("alice", "c1", 0, op(2, "x", 2));

    assertRejected(DocumentEntity.BAD_OPERATION, cut.reply());
    assertTrue(cut.hasNoEvents());
  }

  @Test
  void growingPastSizeLimitIsRefusedAndShrinkingStillWorks() {
    create("x".repeat(98));

    CommandResultWithReply<Command, Event, State, SubmitReply> tooBig = submit("alice", "c1", 0, op(98, "abc"));

    assertRejected(DocumentEntity.DOCUMENT_TOO_LARGE, tooBig.reply());
    assertTrue(tooBig.hasNoEvents());
    assertEquals(98, tooBig.state().text().length());
    assertEquals(new Acked(DOC, 1, "c2"), submit("alice", "c2", 0, op(98, "ab")).reply(), "exactly at the limit");
    assertEquals(new Acked(DOC, 2, "c3"), submit("alice", "c3", 1, op(-1, 99)).reply());
  }

  @Test
  void subscribersHearPersistedOperationsInRevisionOrder() {
    create("", "bob");
    TestProbe<Push> pushes = testKit.createTestProbe();
    Opened opened = ((Subscribed) subscribe("alice", "a1", pushes.ref())).document();
    assertEquals(0, opened.revision());

    submit("bob", "b1", 0, op("x"));
    submit("bob", "b2", 1, op(1, "y"));
    submit("alice", "a1", 1, op("z", 1));

    List<Object> journal = doc.persistenceTestKit().persistedInStorage(PID);
    for (long revision = 1; revision <= 3; revision++) {
      OpApplied push = pushes.expectMessageClass(OpApplied.class);
      assertEquals(revision, push.revision());
      OperationApplied event = (OperationApplied) journal.get((int) revision);
      assertEquals(
          new OpApplied(DOC, revision, event.op(), event.author(), event.clientOpId()),
          push,
          "the push is the journal's event");
    }
    assertEquals("zxy", doc.getState().text());
  }

  @Test
  void failedWriteIsRefusedAsUnavailableAndNeverPushed() {
    String docId = "d-fails";
    ActorRef<Command> entity = testKit.spawn(DocumentEntity.create(docId, SETTINGS, NO_ROOMS));
    TestProbe<CreateReply> createReply = testKit.createTestProbe();
    entity.tell(new Create("alice", "abc", List.of(), null, createReply.ref()));
    createReply.expectMessage(new Created(docId, 0));
    TestProbe<Push> pushes = testKit.createTestProbe();
    TestProbe<OpenReply> subscribed = testKit.createTestProbe();
    entity.tell(new DocumentEntity.Subscribe("alice", "a1", pushes.ref(), subscribed.ref(), true));
    assertEquals(entity, subscribed.expectMessageClass(Subscribed.class).entity(), "the entity to watch");

    PersistenceTestKit journal = PersistenceTestKit.create(testKit.system());
    journal.failNextPersisted("doc|" + docId);
    TestProbe<SubmitReply> submitter = testKit.createTestProbe();
    entity.tell(new Submit("alice", "c1", 0, op(3, "!"), submitter.ref()));

    assertRejected(DocumentEntity.UNAVAILABLE, submitter.receiveMessage());
    // The entity stopped: its subscribers, who watch it, learn of that from the stop itself.
    subscribed.expectTerminated(entity);
    pushes.expectNoMessage(Duration.ofMillis(200));

    ActorRef<Command> recovered = testKit.spawn(DocumentEntity.create(docId, SETTINGS, NO_ROOMS));
    TestProbe<OpenReply> reader = testKit.createTestProbe();
    recovered.tell(new Open("alice", reader.ref()));
    assertEquals(new Opened(docId, "abc", 0, "alice", null, List.of(), List.of()), reader.receiveMessage());
  }

  /**
   * While a rolling upgrade runs old and new nodes side by side, a session of an old node
   * subscribes without watching: it gets Opened, as it expects, and is told when the entity
   * stops. A watching subscriber is not told: the stop itself tells it.
   */
  @Test
  void aSubscriberThatDoesNotWatchGetsOpenedAndIsToldOfTheStop() {
    String docId = "d-mixed";
    ActorRef<Command> entity = testKit.spawn(DocumentEntity.create(docId, SETTINGS, NO_ROOMS));
    TestProbe<CreateReply> createReply = testKit.createTestProbe();
    entity.tell(new Create("alice", "abc", List.of("bob"), null, createReply.ref()));
    createReply.expectMessage(new Created(docId, 0));
    TestProbe<Push> older = testKit.createTestProbe();
    TestProbe<Push> watching = testKit.createTestProbe();
    TestProbe<OpenReply> replies = testKit.createTestProbe();

    entity.tell(new Subscribe("bob", "b1", older.ref(), replies.ref(), false));
    assertEquals(new Opened(docId, "abc", 0, "alice", null, List.of("bob"), List.of()), replies.receiveMessage());
    entity.tell(new Subscribe("alice", "a1", watching.ref(), replies.ref(), true));
    replies.expectMessageClass(Subscribed.class);

    testKit.stop(entity);
    older.expectMessage(new DocumentClosed(docId));
    watching.expectNoMessage(Duration.ofMillis(200));
  }

  @Test
  void subscriptionsCrossNodesAndAnOlderNodesSubscribeReadsAsNotWatching() throws Exception {
    SerializationTestKit serialization = new SerializationTestKit(testKit.system());
    ActorRef<Command> entity = testKit.<Command>createTestProbe().ref();
    ActorRef<Push> pushes = testKit.<Push>createTestProbe().ref();
    ActorRef<OpenReply> replyTo = testKit.<OpenReply>createTestProbe().ref();
    Subscribe subscribe = new Subscribe("alice", "a1", pushes, replyTo, true);
    serialization.verifySerialization(subscribe, true);
    serialization.verifySerialization(
        new Subscribed(new Opened("d", "abc", 3, "alice", null, List.of("bob"), List.of(new Cursor("bob", "b1", 1, 2))), entity), true);

    // An older node's Subscribe has no "watching" field: take it out of the bytes.
    Serialization pekko = SerializationExtension.get(Adapter.toClassic(testKit.system()));
    Serializer serializer = pekko.findSerializerFor(subscribe);
    ObjectMapper cbor = JacksonObjectMapperProvider.get(testKit.system()).getOrCreate("jackson-cbor", Optional.empty());
    ObjectNode older = (ObjectNode) cbor.readTree(pekko.serialize(subscribe).get());
    assertTrue(older.remove("watching").asBoolean());
    Object read = pekko.deserialize(cbor.writeValueAsBytes(older), serializer.identifier(), Serializers.manifestFor(serializer, subscribe)).get();
    assertEquals(new Subscribe("alice", "a1", pushes, replyTo, false), read);
  }

  @Test
  void submissionsArrivingDuringAWriteAreWrittenTogether() throws InterruptedException {
    String docId = "d-batch";
    ActorRef<Command> entity = createdEntity(docId, SETTINGS);
    PersistenceTestKit journal = PersistenceTestKit.create(testKit.system());
    HeldWrites writes = new HeldWrites("doc|" + docId);
    journal.withPolicy(writes);
    try {
      TestProbe<SubmitReply> acks = firstWriteHeld(entity, writes);
      // The first write is in flight: these wait for it, then go out as one write.
      for (int i = 2; i <= 5; i++) {
        entity.tell(new Submit("alice", "c" + i, 0, op("b"), acks.ref()));
      }
      writes.release.countDown();

      List<SubmitReply> replies = acks.receiveSeveralMessages(5);
      assertEquals(
          List.of(new Acked(docId, 1, "c1"), new Acked(docId, 2, "c2"), new Acked(docId, 3, "c3"),
              new Acked(docId, 4, "c4"), new Acked(docId, 5, "c5")),
          replies);
      assertEquals(List.of(1, 4), writes.batchSizes);
    } finally {
      journal.resetPolicy();
    }
  }

  @Test
  void largeSubmissionsGatheredDuringAWriteStayUnderTheBatchByteBound() throws InterruptedException {
    String docId = "d-big-batch";
    DocumentSettings roomy = new DocumentSettings(100, 100, 1 << 20, 100, Duration.ofSeconds(10), Duration.ofSeconds(3), 1 << 20);
    ActorRef<Command> entity = createdEntity(docId, roomy);
    PersistenceTestKit journal = PersistenceTestKit.create(testKit.system());
    HeldWrites writes = new HeldWrites("doc|" + docId);
    journal.withPolicy(writes);
    try {
      TestProbe<SubmitReply> acks = firstWriteHeld(entity, writes);
      // Five 8,000-character pastes (24 KB each as UTF-8 at worst) arrive during the write:
      // one journal batch of them would pass Cassandra's 50 KiB batch limit.
      String paste = "x".repeat(8000);
      for (int i = 2; i <= 6; i++) {
        entity.tell(new Submit("alice", "c" + i, 0, op(paste), acks.ref()));
      }
      writes.release.countDown();

      List<SubmitReply> replies = acks.receiveSeveralMessages(6, Duration.ofSeconds(10));
      assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L),
          replies.stream().map(r -> ((Acked) r).revision()).toList());
      assertEquals(List.of(1, 1, 1, 1, 1, 1), writes.batchSizes,
          "each paste alone is under the bound, two together are over it");
    } finally {
      journal.resetPolicy();
    }
  }

  @Test
  void cursorsMoveWithOperationsAndLeaveWithTheirSession() {
    create("hello world", "bob");
    TestProbe<Push> alices = testKit.createTestProbe();
    TestProbe<Push> bobs = testKit.createTestProbe();
    subscribe("alice", "a1", alices.ref());
    subscribe("bob", "b1", bobs.ref());

    doc.runCommand(new UpdateCursor("bob", "b1", 0, 6, 11));
    CursorMoved moved = new CursorMoved(DOC, "bob", "b1", 0, 6, 11);
    alices.expectMessage(moved);
    bobs.expectMessage(moved);

    submit("alice", "a1", 0, op("Hi ", 11));
    alices.expectMessageClass(OpApplied.class);
    assertEquals(List.of(new Cursor("bob", "b1", 9, 14)), openAsAlice().cursors());

    doc.runCommand(new UpdateCursor("bob", "not-subscribed", 1, 0, 0));
    doc.runCommand(new UpdateCursor("bob", "b1", 0, 0, 0));
    alices.expectMessage(new CursorMoved(DOC, "bob", "b1", 1, 3, 3));
    alices.expectNoMessage(Duration.ofMillis(100));

    bobs.stop();
    alices.expectMessage(new CursorRemoved(DOC, "bob", "b1"));
    assertEquals(List.of(), openAsAlice().cursors());
  }

  @Test
  void snapshotAloneRestoresTextHistoryAndDedup() {
    create("");
    // Creation plus nine operations: ten events, so the newest snapshot is at the last one.
    for (int i = 1; i <= 9; i++) {
      submit("alice", "c" + i, i - 1, i == 1 ? op("a") : op(i - 1, "" + i));
    }
    State before = doc.getState();
    assertEquals(2, doc.snapshotTestKit().orElseThrow().persistedInStorage(PID).size(), "two snapshots are kept");

    // With the events gone, only the snapshot can bring the state back.
    doc.persistenceTestKit().clearByIdPreservingSeqNumbers(PID);
    State recovered = doc.restart().state();

    assertEquals(before, recovered);
    assertEquals("a23456789", recovered.text());
    assertEquals(new Acked(DOC, 9, "c9"), submit("alice", "c9", 8, op(8, "9")).reply());
    assertEquals(new Acked(DOC, 10, "c10"), submit("alice", "c10", 6, op(6, "!")).reply());
    assertEquals("a23456!789", doc.getState().text());
  }

  @Test
  void transformIndexFollowsInsertsAndDeletesBeforeIt() {
    assertEquals(5, DocumentEntity.transformIndex(2, op("abc", 4)));
    assertEquals(5, DocumentEntity.transformIndex(2, op(2, "abc", 2)), "an insert at the cursor pushes it on");
    assertEquals(1, DocumentEntity.transformIndex(3, op(1, -3)));
    assertEquals(2, DocumentEntity.transformIndex(3, op(-1, 3)));
    assertEquals(2, DocumentEntity.transformIndex(2, op(3, "x")));
  }

  // ---------------------------------------------------------------------------------------

  /** Holds the writes of one persistence id until released, recording each write's size. */
  private static final class HeldWrites implements ProcessingPolicy<JournalOperation> {
    final CountDownLatch firstWriteStarted = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);
    final List<Integer> batchSizes = new CopyOnWriteArrayList<>();
    private final String persistenceId;

    HeldWrites(String persistenceId) {
      this.persistenceId = persistenceId;
    }

    @Override
    public ProcessingResult tryProcess(String pid, JournalOperation operation) {
      if (pid.equals(persistenceId) && operation instanceof WriteEvents write) {
        batchSizes.add(write.getBatch().size());
        firstWriteStarted.countDown();
        try {
          release.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      return ProcessingSuccess.getInstance();
    }
  }

  @Test
  void retainedOperationsAreBoundedByTheirWeightTooSoACatchUpCannotBeHuge() {
    DocumentSettings light = new DocumentSettings(100, 100, 1 << 20, 100, Duration.ofSeconds(10), Duration.ofSeconds(3), 300);
    EventSourcedBehaviorTestKit<Command, Event, State> pastes =
        EventSourcedBehaviorTestKit.create(testKit.system(), DocumentEntity.create("pastes", light, NO_ROOMS));
    pastes.runCommand((ActorRef<CreateReply> r) -> new Create("alice", "", List.of(), null, r));
    String paste = "x".repeat(60);
    for (int i = 0; i < 4; i++) {
      long base = i;
      TextOperation op = i == 0 ? op(paste) : op(60 * i, paste);
      assertInstanceOf(Acked.class, pastes.runCommand((ActorRef<SubmitReply> r) -> new Submit("alice", "p" + base, base, op, r)).reply());
    }

    State state = pastes.getState();
    assertEquals(4, state.revision());
    // A paste weighs 8 + 8 + 3 x 60 = 196 at most: two would be over 300.
    assertEquals(1, state.history().size());
    assertTrue(state.historySize() <= 300, "retained " + state.historySize());
    assertRejected(DocumentEntity.RESYNC_REQUIRED, pastes.<GetOpsReply>runCommand(r -> new GetOps("alice", 2, r)).reply());
    assertEquals(1, ((Ops) pastes.<GetOpsReply>runCommand(r -> new GetOps("alice", 3, r)).reply()).ops().size());
    State copy = new SerializationTestKit(testKit.system()).verifySerialization(state, true);
    assertEquals(state.historySize(), copy.historySize(), "the weight is derived again from a snapshot");
  }

  /** A spawned document entity with an empty document created by alice. */
  private static ActorRef<Command> createdEntity(String docId, DocumentSettings settings) {
    ActorRef<Command> entity = testKit.spawn(DocumentEntity.create(docId, settings, NO_ROOMS));
    TestProbe<CreateReply> createReply = testKit.createTestProbe();
    entity.tell(new Create("alice", "", List.of(), null, createReply.ref()));
    createReply.expectMessageClass(Created.class);
    return entity;
  }

  /** Submits alice's first operation and waits until its write is in flight, held by {@code writes}. */
  private static TestProbe<SubmitReply> firstWriteHeld(ActorRef<Command> entity, HeldWrites writes)
      throws InterruptedException {
    TestProbe<SubmitReply> acks = testKit.createTestProbe();
    entity.tell(new Submit("alice", "c1", 0, op("a"), acks.ref()));
    assertTrue(writes.firstWriteStarted.await(5, TimeUnit.SECONDS));
    return acks;
  }

  private static TextOperation op(Object... wire) {
    return TextOperation.fromWire(Arrays.asList(wire));
  }

  private static CommandResultWithReply<Command, Event, State, CreateReply> create(String text, String... editors) {
    return doc.runCommand(replyTo -> new Create("alice", text, List.of(editors), null, replyTo));
  }

  private static CommandResultWithReply<Command, Event, State, SubmitReply> submit(
      String user, String clientOpId, long base, TextOperation op) {
    return doc.runCommand(replyTo -> new Submit(user, clientOpId, base, op, replyTo));
  }

  private static GetOpsReply getOps(String user, long from) {
    return doc.<GetOpsReply>runCommand(replyTo -> new GetOps(user, from, replyTo)).reply();
  }

  private static OpenReply subscribe(String user, String session, ActorRef<Push> subscriber) {
    return doc.<OpenReply>runCommand(replyTo -> new Subscribe(user, session, subscriber, replyTo, true)).reply();
  }

  private static CommandResultWithReply<Command, Event, State, AddEditorReply> addEditor(String by, String editor) {
    return doc.runCommand(replyTo -> new AddEditor(by, editor, replyTo));
  }

  private static Opened openAsAlice() {
    return (Opened) doc.<OpenReply>runCommand(replyTo -> new Open("alice", replyTo)).reply();
  }

  private static void assertRejected(String code, Object reply) {
    Rejected rejected = assertInstanceOf(Rejected.class, reply);
    assertEquals(code, rejected.code(), rejected.message());
  }
}
