package parley.chat.room;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.testkit.JournalOperation;
import org.apache.pekko.persistence.testkit.PersistenceTestKitPlugin;
import org.apache.pekko.persistence.testkit.PersistenceTestKitSnapshotPlugin;
import org.apache.pekko.persistence.testkit.ProcessingPolicy;
import org.apache.pekko.persistence.testkit.ProcessingResult;
import org.apache.pekko.persistence.testkit.ProcessingSuccess;
import org.apache.pekko.persistence.testkit.StorageFailure;
import org.apache.pekko.persistence.testkit.WriteEvents;
import org.apache.pekko.persistence.testkit.javadsl.PersistenceTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.chat.ChatSettings;
import parley.chat.room.RoomEntity.Command;
import parley.chat.room.RoomEntity.Create;
import parley.chat.room.RoomEntity.MessagePosted;
import parley.chat.room.RoomEntity.Post;
import parley.chat.room.RoomEntity.Rejected;
import parley.chat.room.RoomEntity.Subscribe;
import parley.chat.room.RoomEntity.Subscribed;
import parley.chat.room.RoomEntity.WriteReply;
import parley.chat.room.RoomEntity.Written;

/**
 * The whole room entity (group-commit front over the journal actor) on the in-memory journal:
 * writes that arrive while a journal write is in flight go out together as one atomic write
 * (design rule 3), and a failed write answers every sender waiting on it.
 */
class RoomGroupCommitTest {

  private static ActorTestKit testKit;
  private static ChatSettings settings;
  private static MembershipOutbox.Links links;
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
    testKit = ActorTestKit.create("RoomGroupCommitTest", config);
    settings = ChatSettings.from(config);
    journal = PersistenceTestKit.create(testKit.system());
    links = InMemoryLinks.acking(testKit);
  }

  @AfterAll
  static void stopTestKit() {
    testKit.shutdownTestKit();
  }

  @AfterEach
  void resetJournal() {
    journal.resetPolicy();
  }

  @Test
  void fortyPostsInATightLoopGoOutInAFewWrites() {
    // Bare in-memory journal first (for the record), then with a few milliseconds per write,
    // standing in for a Cassandra round trip (p50 6–9 ms measured here).
    for (Duration latency : List.of(Duration.ZERO, Duration.ofMillis(5))) {
      String roomId = "busy-" + latency.toMillis();
      String pid = RoomEntity.persistenceId(roomId).id();
      ActorRef<Command> room = testKit.spawn(RoomEntity.create(roomId, settings, links, testKit.system().ignoreRef()));
      createRoom(room, roomId);
      Writes writes = new Writes(pid).withLatency(latency);
      journal.withPolicy(writes);

      TestProbe<WriteReply> replies = testKit.createTestProbe();
      for (int i = 0; i < 40; i++) {
        room.tell(new Post("alice", "m" + i, "hello " + i, false, replies.ref()));
      }
      List<WriteReply> received = replies.receiveSeveralMessages(40, Duration.ofSeconds(10));
      journal.resetPolicy();

      for (int i = 0; i < 40; i++) {
        Written written = assertInstanceOf(Written.class, received.get(i));
        assertEquals(new Written(roomId, i + 2, written.ts(), "m" + i, false), written, "replies come in order");
      }
      System.out.println(
          "RoomGroupCommitTest: 40 posts, journal latency " + latency.toMillis() + " ms: "
              + writes.sizes.size() + " writes of " + writes.sizes);
      assertEquals(40, writes.sizes.stream().mapToInt(Integer::intValue).sum());
      if (!latency.isZero()) {
        assertTrue(writes.sizes.size() <= 5, "40 posts took " + writes.sizes.size() + " writes: " + writes.sizes);
      }
      assertEquals(41, journal.persistedInStorage(pid).size());
    }
  }

  @Test
  void aLoneSurrogateInABatchIsRefusedAloneAndItsBatchIsWritten() {
    String roomId = "mixed";
    String pid = RoomEntity.persistenceId(roomId).id();
    ActorRef<Command> room = testKit.spawn(RoomEntity.create(roomId, settings, links, testKit.system().ignoreRef()));
    createRoom(room, roomId);
    journal.withPolicy(new Writes(pid).withLatency(Duration.ofMillis(5)));
    TestProbe<WriteReply> replies = testKit.createTestProbe();
    for (int i = 0; i < 10; i++) {
      room.tell(new Post("alice", "m" + i, i == 4 ? "bad \ud800" : "good " + i, false, replies.ref()));
    }
    List<WriteReply> received = replies.receiveSeveralMessages(10, Duration.ofSeconds(10));
    journal.resetPolicy();

    assertEquals("bad_text", assertInstanceOf(RoomEntity.Rejected.class, received.get(4)).code());
    for (int i = 0; i < 10; i++) {
      if (i != 4) {
        assertInstanceOf(Written.class, received.get(i), "message " + i + " is written with its batch");
      }
    }
    assertEquals(10, journal.persistedInStorage(pid).size(), "created + nine messages");
  }

  @Test
  void writesWaitingForAWriteAreBatchedUpToMaxBatch() {
    ChatSettings ten = withBatch(10, settings.maxBatchBytes());
    String roomId = "bounded-count";
    ActorRef<Command> room = testKit.spawn(RoomEntity.create(roomId, ten, links, testKit.system().ignoreRef()));
    createRoom(room, roomId);
    Writes writes = new Writes(RoomEntity.persistenceId(roomId).id()).holdingFirst();
    journal.withPolicy(writes);

    TestProbe<WriteReply> replies = testKit.createTestProbe();
    room.tell(new Post("alice", "m0", "first", false, replies.ref()));
    writes.awaitFirst();
    for (int i = 1; i < 40; i++) {
      room.tell(new Post("alice", "m" + i, "more " + i, false, replies.ref()));
    }
    writes.release();

    List<WriteReply> received = replies.receiveSeveralMessages(40, Duration.ofSeconds(10));
    for (int i = 0; i < 40; i++) {
      assertEquals(i + 2, assertInstanceOf(Written.class, received.get(i)).seq());
    }
    assertEquals(List.of(1, 10, 10, 10, 9), writes.sizes);
  }

  @Test
  void writesWaitingForAWriteAreBatchedUpToMaxBatchBytes() {
    String roomId = "bounded-bytes";
    ActorRef<Command> room = testKit.spawn(RoomEntity.create(roomId, settings, links, testKit.system().ignoreRef()));
    createRoom(room, roomId);
    Writes writes = new Writes(RoomEntity.persistenceId(roomId).id()).holdingFirst();
    journal.withPolicy(writes);
    // A weight of 64 + 3 per character: 6,064 each, so five fit in max-batch-bytes (32 KiB).
    String body = "x".repeat(2000);

    TestProbe<WriteReply> replies = testKit.createTestProbe();
    room.tell(new Post("alice", "m0", body, false, replies.ref()));
    writes.awaitFirst();
    for (int i = 1; i < 12; i++) {
      room.tell(new Post("alice", "m" + i, body, false, replies.ref()));
    }
    writes.release();

    List<WriteReply> received = replies.receiveSeveralMessages(12, Duration.ofSeconds(10));
    for (int i = 0; i < 12; i++) {
      assertEquals(i + 2, assertInstanceOf(Written.class, received.get(i)).seq());
    }
    assertEquals(List.of(1, 5, 5, 1), writes.sizes);
  }

  @Test
  void aFailedWriteAnswersEverySenderUnavailableAndTheirRetriesSucceedOnce() {
    String roomId = "flaky";
    String pid = RoomEntity.persistenceId(roomId).id();
    ActorRef<Command> room = testKit.spawn(RoomEntity.create(roomId, settings, links, testKit.system().ignoreRef()));
    createRoom(room, roomId);
    TestProbe<RoomPush> hub = testKit.createTestProbe();
    TestProbe<Subscribed> subscribed = testKit.createTestProbe();
    room.tell(new Subscribe(hub.ref(), subscribed.ref()));
    subscribed.expectMessage(new Subscribed(roomId, 1));
    // The first post's write is held; the four that arrive meanwhile go out as the second
    // write, which fails.
    Writes writes = new Writes(pid).holdingFirst().failing(1);
    journal.withPolicy(writes);

    TestProbe<WriteReply> first = testKit.createTestProbe();
    room.tell(new Post("alice", "m1", "one", false, first.ref()));
    writes.awaitFirst();
    List<TestProbe<WriteReply>> waiting = new ArrayList<>();
    for (int i = 2; i <= 5; i++) {
      TestProbe<WriteReply> sender = testKit.createTestProbe();
      waiting.add(sender);
      room.tell(new Post("alice", "m" + i, "number " + i, false, sender.ref()));
    }
    writes.release();

    assertEquals(2, assertInstanceOf(Written.class, first.receiveMessage()).seq());
    for (TestProbe<WriteReply> sender : waiting) {
      Rejected rejected = assertInstanceOf(Rejected.class, sender.receiveMessage());
      assertEquals("unavailable", rejected.code());
    }
    assertEquals(List.of(1, 4), writes.sizes);
    TestProbe<Object> watcher = testKit.createTestProbe();
    watcher.expectTerminated(room, Duration.ofSeconds(5));
    RoomPush.Published published = assertInstanceOf(RoomPush.Published.class, hub.receiveMessage());
    assertEquals(2, published.events().get(0).seq());
    hub.expectNoMessage(Duration.ofMillis(100));
    journal.resetPolicy();
    assertEquals(2, journal.persistedInStorage(pid).size(), "nothing of the failed write is kept");

    // The entity starts afresh (as sharding would on the next message); the senders retry.
    ActorRef<Command> restarted = testKit.spawn(RoomEntity.create(roomId, settings, links, testKit.system().ignoreRef()));
    for (int round = 0; round < 2; round++) {
      for (int i = 2; i <= 5; i++) {
        TestProbe<WriteReply> sender = testKit.createTestProbe();
        restarted.tell(new Post("alice", "m" + i, "number " + i, false, sender.ref()));
        Written written = assertInstanceOf(Written.class, sender.receiveMessage());
        assertEquals(i + 1, written.seq());
        assertEquals(round == 1, written.duplicate());
      }
    }
    TestProbe<WriteReply> again = testKit.createTestProbe();
    restarted.tell(new Post("alice", "m1", "one", false, again.ref()));
    Written retried = assertInstanceOf(Written.class, again.receiveMessage());
    assertEquals(2, retried.seq());
    assertTrue(retried.duplicate());

    List<Object> persisted = journal.persistedInStorage(pid);
    assertEquals(6, persisted.size());
    List<String> ids = persisted.stream()
        .filter(MessagePosted.class::isInstance)
        .map(e -> ((MessagePosted) e).clientMsgId())
        .toList();
    assertEquals(List.of("m1", "m2", "m3", "m4", "m5"), ids, "each message exactly once");
    assertEquals(5, Set.copyOf(ids).size());
  }

  @Test
  void aRoomThatCannotRecoverAnswersWritesUnavailable() {
    String roomId = "unreadable";
    String pid = RoomEntity.persistenceId(roomId).id();
    ActorRef<Command> first = testKit.spawn(RoomEntity.create(roomId, settings, links, testKit.system().ignoreRef()));
    createRoom(first, roomId);
    testKit.stop(first);

    // The recovery's read fails only once the write has reached the room, so the write is
    // there to be answered, whatever the threads' timing.
    FailedRead read = new FailedRead(pid);
    journal.withPolicy(read);
    ActorRef<Command> room = testKit.spawn(RoomEntity.create(roomId, settings, links, testKit.system().ignoreRef()));
    TestProbe<WriteReply> sender = testKit.createTestProbe();
    room.tell(new Post("alice", "m1", "hello?", false, sender.ref()));
    read.release();

    assertEquals("unavailable", assertInstanceOf(Rejected.class, sender.receiveMessage()).code());
    testKit.createTestProbe().expectTerminated(room, Duration.ofSeconds(5));
    assertEquals(1, journal.persistedInStorage(pid).size());

    ActorRef<Command> again = testKit.spawn(RoomEntity.create(roomId, settings, links, testKit.system().ignoreRef()));
    again.tell(new Post("alice", "m1", "hello?", false, sender.ref()));
    Written written = assertInstanceOf(Written.class, sender.receiveMessage());
    assertEquals(new Written(roomId, 2, written.ts(), "m1", false), written);
    assertEquals(2, journal.persistedInStorage(pid).size());
  }

  // ---------------------------------------------------------------------------------------

  private static void createRoom(ActorRef<Command> room, String roomId) {
    TestProbe<WriteReply> created = testKit.createTestProbe();
    room.tell(new Create("alice", "public", null, created.ref()));
    assertEquals(1, assertInstanceOf(Written.class, created.receiveMessage(Duration.ofSeconds(10))).seq(), "room " + roomId);
  }

  private static ChatSettings withBatch(int maxBatch, int maxBatchBytes) {
    ChatSettings s = settings;
    return new ChatSettings(s.maxFrameBytes(), s.maxBodyBytes(), s.recentWindow(), maxBatch, maxBatchBytes,
        s.hubLease(), s.hubRenewInterval(), s.pageSize(), s.ratePerSecond(), s.rateBurst(),
        s.floodDisconnectAfter(), s.typingInterval(), s.outboundBuffer(), s.askTimeout(),
        s.heartbeatInterval(), s.heartbeatTimeout(), s.maxTopicBytes(), s.presenceListLimit(),
        s.userRatePerSecond(), s.userRateBurst(), s.maxConnectionsPerUser(), s.roomsPerMinute(),
        s.offlineGrace(), s.sessionRenewInterval(), s.maxStartingSessions());
  }

  /**
   * Records the size of each atomic write of one persistence id; optionally delays every
   * write, holds the first until released, or fails the write with a given index.
   */
  /** Fails the first read of one persistence id, once released. */
  private static final class FailedRead implements ProcessingPolicy<JournalOperation> {
    private final String persistenceId;
    private final CountDownLatch released = new CountDownLatch(1);
    private boolean failed;

    FailedRead(String persistenceId) {
      this.persistenceId = persistenceId;
    }

    void release() {
      released.countDown();
    }

    @Override
    public synchronized ProcessingResult tryProcess(String pid, JournalOperation operation) {
      if (failed || !pid.equals(persistenceId) || operation instanceof WriteEvents) {
        return ProcessingSuccess.getInstance();
      }
      failed = true;
      try {
        released.await(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return StorageFailure.create(new RuntimeException("simulated unreadable journal"));
    }
  }

  private static final class Writes implements ProcessingPolicy<JournalOperation> {
    final List<Integer> sizes = new CopyOnWriteArrayList<>();
    private final String persistenceId;
    private final CountDownLatch firstStarted = new CountDownLatch(1);
    private final CountDownLatch released = new CountDownLatch(1);
    private Duration latency = Duration.ZERO;
    private boolean holdFirst;
    private int failing = -1;

    Writes(String persistenceId) {
      this.persistenceId = persistenceId;
    }

    Writes withLatency(Duration latency) {
      this.latency = latency;
      return this;
    }

    Writes holdingFirst() {
      this.holdFirst = true;
      return this;
    }

    Writes failing(int index) {
      this.failing = index;
      return this;
    }

    void awaitFirst() {
      try {
        assertTrue(firstStarted.await(5, TimeUnit.SECONDS), "the first write never started");
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
    }

    void release() {
      released.countDown();
    }

    @Override
    public ProcessingResult tryProcess(String pid, JournalOperation operation) {
      if (!pid.equals(persistenceId) || !(operation instanceof WriteEvents write)) {
        return ProcessingSuccess.getInstance();
      }
      int index = sizes.size();
      sizes.add(write.getBatch().size());
      try {
        if (index == 0 && holdFirst) {
          firstStarted.countDown();
          released.await(10, TimeUnit.SECONDS);
        }
        if (!latency.isZero()) {
          Thread.sleep(latency.toMillis());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return index == failing
          ? StorageFailure.create(new RuntimeException("simulated storage outage"))
          : ProcessingSuccess.getInstance();
    }
  }
}
