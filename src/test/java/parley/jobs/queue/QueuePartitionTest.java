package parley.jobs.queue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.SerializationTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.testkit.PersistenceTestKitSnapshotPlugin;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit.CommandResultWithReply;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import parley.chat.user.UserEntity;
import parley.jobs.Job;
import parley.protocol.Codec;
import parley.jobs.JobSettings;
import parley.jobs.queue.QueuePartition.Answer;
import parley.jobs.queue.QueuePartition.Command;
import parley.jobs.queue.QueuePartition.Event;
import parley.jobs.queue.QueuePartition.State;
import parley.testing.ManualClock;

/** Every transition of a queue partition, with time moved by hand (lease expiry, delays, backoff). */
class QueuePartitionTest {

  private static final long START = 1_800_000_000_000L;

  /** One partition holding the whole queue, concurrency 2, two finished jobs of each kind kept. */
  private static final JobSettings.Queue QUEUE =
      new JobSettings.Queue("q", 1, 2, 0, 3, new Job.Backoff("exponential", 1000, 0.5), 2, 2, 600_000, 600_000, true, true);

  private static final JobSettings SETTINGS = new JobSettings(
      Map.of("q", QUEUE), 1024, 1024, 1024, Duration.ofSeconds(30), Duration.ofMinutes(10), 10,
      Duration.ofSeconds(30), 10, 20, "", Duration.ofSeconds(5), 5, 256);

  private static ActorTestKit testKit;
  private static final ManualClock clock = new ManualClock(START);
  /** The random part of the backoff's jitter: 0.5 takes a quarter off a jitter of 0.5. */
  private static final double RANDOM = 0.5;
  private static EventSourcedBehaviorTestKit<Command, Event, State> partition;
  /** Every submitter's user entity, as the partition reaches it. */
  private static TestProbe<UserEntity.Command> users;

  @BeforeAll
  static void start() {
    testKit = ActorTestKit.create(
        "QueuePartitionTest",
        ConfigFactory.parseString("pekko.actor.provider = local\npekko.coordinated-shutdown.exit-jvm = off")
            .withFallback(EventSourcedBehaviorTestKit.config())
            .withFallback(PersistenceTestKitSnapshotPlugin.config())
            .withFallback(ConfigFactory.load()));
    users = testKit.createTestProbe();
    partition = EventSourcedBehaviorTestKit.create(testKit.system(), QueuePartition.journal("q:0", SETTINGS, userId -> users.ref(), testKit.system().ignoreRef(), clock, () -> RANDOM),
        // WriteBatch holds List<Write> of a sealed interface without Jackson type information
        // and never leaves the JVM (the front hands it to its own child); the commands that do
        // cross nodes are checked by commandsThatCrossNodesRoundTripThroughCbor.
        EventSourcedBehaviorTestKit.enabledSerializationSettings().withVerifyCommands(false));
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  @BeforeEach
  void clear() {
    partition.clear();
  }

  // ---------------------------------------------------------------------------------------
  // Submitting

  @Test
  void aSubmittedJobWaitsWithVersionOneAndIsJournaledFirst() {
    CommandResultWithReply<Command, Event, State, Answer> result = submitRun(job("a"));

    Job job = assertInstanceOf(QueuePartition.Done.class, result.reply()).job();
    assertInstanceOf(QueuePartition.Submitted.class, result.event());
    assertEquals("waiting", job.state(clock.millis()));
    assertEquals(1, job.version());
    assertEquals(job, get("a", "alice"));
  }

  @Test
  void anExactRepeatOfAnIdempotentSubmissionIsTheSameJobAndADifferentOneIsRefused() {
    submit(job("a"));

    CommandResultWithReply<Command, Event, State, Answer> repeat = submitRun(job("a"));
    assertTrue(assertInstanceOf(QueuePartition.Done.class, repeat.reply()).repeated());
    assertTrue(repeat.hasNoEvents());

    Job other = with(job("a"), "other-digest");
    assertRefused(QueuePartition.IDEMPOTENCY_CONFLICT, submitRun(other).reply());
  }

  @Test
  void oneLiveJobPerKey() {
    submit(keyed("a", "export-room-1"));
    CommandResultWithReply<Command, Event, State, Answer> second = submitRun(keyed("b", "export-room-1"));
    QueuePartition.Refused refused = assertRefused(QueuePartition.JOB_KEY_TAKEN, second.reply());
    assertEquals("q:0:a", refused.jobId());
    assertTrue(second.hasNoEvents());

    Job leased = lease(1).get(0);
    complete(leased);
    submit(keyed("b", "export-room-1"));
  }

  @Test
  void othersCannotSeeOrCancelAJob() {
    submit(job("a"));
    assertRefused(QueuePartition.JOB_NOT_FOUND, partition.<Answer>runCommand(r -> new QueuePartition.Get("q:0:a", "mallory", r)).reply());
    assertRefused(QueuePartition.JOB_NOT_FOUND, write(r -> new QueuePartition.Cancel("q:0:a", "mallory", -1, r)).reply());
    // The server (no requester) sees every job.
    assertEquals("q:0:a", ((QueuePartition.Done) partition.<Answer>runCommand(r -> new QueuePartition.Get("q:0:a", null, r)).reply()).job().id());
  }

  @Test
  void theSubmitterHearsOfEveryChangeInVersionOrder() throws Exception {
    drainUsers();
    submit(job("a"));
    Job leased = lease(1).get(0);
    progress(leased, "7");
    complete(leased);

    List<JsonNode> pushed = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      UserEntity.Relay relay = (UserEntity.Relay) users.receiveMessage();
      JsonNode frame = Codec.JSON.readTree(relay.frame());
      // The user entity files the push by the id and version the relay names beside the frame.
      assertEquals(frame.path("job").path("id").asText(), relay.jobId());
      assertEquals(frame.path("job").path("version").asLong(), relay.version());
      pushed.add(frame);
    }
    assertEquals(List.of(1L, 2L, 3L, 4L), pushed.stream().map(p -> p.path("job").path("version").asLong()).toList());
    assertEquals(List.of("waiting", "active", "active", "completed"), pushed.stream().map(p -> p.path("job").path("state").asText()).toList());
    assertTrue(pushed.stream().allMatch(p -> p.path("type").asText().equals("job")));
    assertTrue(pushed.stream().noneMatch(p -> p.path("job").has("leaseId")), "the lease is the worker's");
  }

  // ---------------------------------------------------------------------------------------
  // Leasing

  @Test
  void leasesHighestPriorityFirstThenInOrderOfSubmission() {
    submit(prioritized("low-1", 0));
    submit(prioritized("high", 5));
    submit(prioritized("low-2", 0));

    assertEquals(List.of("q:0:high", "q:0:low-1"), lease(2).stream().map(Job::id).toList());
  }

  @Test
  void concurrencyLimitsJobsLeasedAtOnce() {
    submit(job("a"));
    submit(job("b"));
    submit(job("c"));
    assertEquals(2, lease(10).size(), "concurrency 2");
    assertEquals(0, lease(10).size());
  }

  @Test
  void aDelayedJobIsLeasedOnlyOnceItsTimeHasCome() {
    submit(delayed("later", 10_000));
    assertEquals("delayed", get("later", "alice").state(clock.millis()));
    assertEquals(0, lease(1).size());

    clock.advance(Duration.ofSeconds(10));
    assertEquals("q:0:later", lease(1).get(0).id());
  }

  @Test
  void aPausedPartitionLeasesNothingUntilResumed() {
    submit(job("a"));
    write(r -> new QueuePartition.SetPaused(true, r));
    assertEquals(0, lease(1).size());
    write(r -> new QueuePartition.SetPaused(false, r));
    assertEquals(1, lease(1).size());
  }

  @Test
  void aWatchingFetchIsToldOnceAJobCanBeLeased() {
    TestProbe<Answer> watcher = testKit.createTestProbe();
    partition.runCommand(new QueuePartition.Watch(clock.millis() + 30_000, watcher.ref()));
    watcher.expectNoMessage(Duration.ofMillis(50));

    submit(job("a"));
    watcher.expectMessage(new QueuePartition.Available());
  }

  @Test
  void aFollowerIsAnsweredAtTheJobsNextChange() {
    submit(job("a"));
    TestProbe<Answer> follower = testKit.createTestProbe();
    partition.runCommand(new QueuePartition.Follow("q:0:a", "alice", 1, clock.millis() + 30_000, follower.ref()));
    follower.expectNoMessage(Duration.ofMillis(50));

    lease(1);
    Job seen = assertInstanceOf(QueuePartition.Done.class, follower.receiveMessage()).job();
    assertEquals("active", seen.state(clock.millis()));
    assertEquals(2, seen.version());
  }

  // ---------------------------------------------------------------------------------------
  // Outcomes

  @Test
  void aCompletedJobKeepsItsResultAndFreesItsSlot() {
    submit(job("a"));
    Job leased = lease(1).get(0);
    progress(leased, "{\"pct\":50}");
    Job done = complete(leased);

    assertEquals("completed", done.state(clock.millis()));
    assertEquals("{\"ok\":true}", done.result());
    assertEquals("{\"pct\":50}", done.progress());
    assertEquals(1, done.attemptsMade());
    assertEquals(4, done.version(), "submitted, leased, progress, completed");
  }

  @Test
  void aReportUnderALostLeaseIsRefusedSoEachAttemptHasOneOutcome() {
    submit(job("a"));
    Job leased = lease(1).get(0);
    assertRefused(QueuePartition.LEASE_LOST, write(r -> new QueuePartition.Complete(leased.id(), "not-the-lease", "1", r)).reply());

    complete(leased);
    assertRefused(QueuePartition.LEASE_LOST, write(r -> new QueuePartition.Fail(leased.id(), leased.lease().id(), "late", r)).reply());
    assertEquals("completed", get("a", "alice").state(clock.millis()));
  }

  @Test
  void aFailedAttemptIsRetriedAfterItsBackoffUntilNoAttemptIsLeft() {
    submit(job("a"));
    Job first = lease(1).get(0);
    Job retrying = fail(first, "boom");
    assertEquals("delayed", retrying.state(clock.millis()));
    // Exponential from 1 s, jitter 0.5 at random 0.5: 1000 - 250.
    assertEquals(clock.millis() + 750, retrying.runAt());
    assertEquals("boom", retrying.error());

    clock.advance(Duration.ofMillis(750));
    Job second = lease(1).get(0);
    assertEquals(clock.millis() + 1500, fail(second, "boom").runAt(), "doubled: 2000 - 500");

    clock.advance(Duration.ofMillis(1500));
    Job dead = fail(lease(1).get(0), "boom for good");
    assertEquals("failed", dead.state(clock.millis()));
    assertEquals(3, dead.attemptsMade());
    assertEquals(0, lease(1).size());
  }

  @Test
  void anExpiredLeaseSpendsTheAttemptAndReturnsTheJobToWaiting() {
    submit(job("a"));
    Job leased = lease(1).get(0);
    clock.advance(Duration.ofSeconds(31));
    partition.runCommand(new QueuePartition.Wake());

    Job back = get("a", "alice");
    assertEquals("waiting", back.state(clock.millis()));
    assertEquals(1, back.attemptsMade());
    assertEquals(QueuePartition.LEASE_EXPIRED, back.error());
    assertRefused(QueuePartition.LEASE_LOST, write(r -> new QueuePartition.Complete(leased.id(), leased.lease().id(), "1", r)).reply());
    assertEquals(1, lease(1).size(), "leased again");
  }

  @Test
  void extendingALeaseMovesItsDeadlineButNeverPastTheJobsTimeout() {
    submit(new Job("q:0:t", "q", "alice", null, 0, clock.millis(), 1, 0, Job.Backoff.NONE, 40_000, null,
        Job.Status.WAITING, null, null, null, null, 1, clock.millis(), 0, 0, 0, "t"));
    Job leased = lease(1).get(0);
    long started = clock.millis();
    clock.advance(Duration.ofSeconds(20));
    Job extended = ((QueuePartition.Done) write(r -> new QueuePartition.Extend(leased.id(), leased.lease().id(), 30_000, r)).reply()).job();
    assertEquals(started + 40_000, extended.lease().deadline(), "capped by the 40 s timeout");

    clock.advance(Duration.ofSeconds(20));
    partition.runCommand(new QueuePartition.Wake());
    Job timedOut = get("t", "alice");
    assertEquals("failed", timedOut.state(clock.millis()), "its one attempt is spent");
    assertEquals(QueuePartition.TIMED_OUT, timedOut.error());
  }

  @Test
  void cancellingARunningJobEndsItsLeaseAndAFinishedJobCannotBeCancelled() {
    submit(job("a"));
    Job leased = lease(1).get(0);
    Job cancelled = ((QueuePartition.Done) write(r -> new QueuePartition.Cancel("q:0:a", "alice", -1, r)).reply()).job();
    assertEquals("cancelled", cancelled.state(clock.millis()));
    assertRefused(QueuePartition.LEASE_LOST, write(r -> new QueuePartition.Complete(leased.id(), leased.lease().id(), "1", r)).reply());
    assertRefused(QueuePartition.JOB_FINISHED, write(r -> new QueuePartition.Cancel("q:0:a", "alice", -1, r)).reply());
  }

  @Test
  void aCancelNamingAStaleVersionIsRefused() {
    submit(job("a"));
    lease(1);
    assertRefused(QueuePartition.VERSION_MISMATCH, write(r -> new QueuePartition.Cancel("q:0:a", "alice", 1, r)).reply());
    assertEquals("active", get("a", "alice").state(clock.millis()));
  }

  @Test
  void onlyTheNewestFinishedJobsAreKept() {
    for (String id : List.of("a", "b", "c")) {
      submit(job(id));
      complete(lease(1).get(0));
    }
    assertRefused(QueuePartition.JOB_NOT_FOUND, partition.<Answer>runCommand(r -> new QueuePartition.Get("q:0:a", "alice", r)).reply());
    assertEquals("completed", get("c", "alice").state(clock.millis()));
  }

  @Test
  void finishedJobsOlderThanTheQueueKeepsThemGoAtTheNextChange() {
    submit(job("a"));
    complete(lease(1).get(0));
    submit(job("b"));
    write(r -> new QueuePartition.Cancel("q:0:b", "alice", -1, r));
    clock.advance(Duration.ofMinutes(11));
    // Removal is lazy: nothing has happened in the partition since they aged out.
    assertEquals("completed", get("a", "alice").state(clock.millis()));

    submit(job("c"));
    for (String gone : List.of("q:0:a", "q:0:b")) {
      assertRefused(QueuePartition.JOB_NOT_FOUND, partition.<Answer>runCommand(r -> new QueuePartition.Get(gone, "alice", r)).reply());
    }
    partition.restart();
    assertRefused(QueuePartition.JOB_NOT_FOUND, partition.<Answer>runCommand(r -> new QueuePartition.Get("q:0:a", "alice", r)).reply());
    assertEquals("waiting", get("c", "alice").state(clock.millis()));
  }

  @Test
  void aBatchIsDecidedInOrderEachWriteSeeingTheOnesBeforeIt() {
    List<TestProbe<Answer>> probes = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      probes.add(testKit.createTestProbe());
    }
    Job a = job("a");
    Job b = job("b");
    var result = partition.runCommand(new QueuePartition.WriteBatch(List.of(
        new QueuePartition.Submit(a, probes.get(0).ref()),
        new QueuePartition.Submit(a, probes.get(1).ref()),
        new QueuePartition.Submit(b, probes.get(2).ref()),
        new QueuePartition.Lease("w1", 1, 30_000, probes.get(3).ref()),
        new QueuePartition.Lease("w2", 5, 30_000, probes.get(4).ref()),
        new QueuePartition.Complete(a.id(), "not-a-lease", "1", probes.get(5).ref()))));

    // One write for the batch: both submissions and both leases, nothing for the repeat or the refusal.
    assertEquals(
        List.of(QueuePartition.Submitted.class, QueuePartition.Submitted.class, QueuePartition.LeasedTo.class, QueuePartition.LeasedTo.class),
        result.events().stream().map(Object::getClass).toList());
    assertEquals(1, assertInstanceOf(QueuePartition.Done.class, probes.get(0).receiveMessage()).job().version());
    QueuePartition.Done repeat = assertInstanceOf(QueuePartition.Done.class, probes.get(1).receiveMessage());
    assertTrue(repeat.repeated());
    assertEquals(a.id(), repeat.job().id());
    assertEquals(b.id(), assertInstanceOf(QueuePartition.Done.class, probes.get(2).receiveMessage()).job().id());
    // The second lease sees the first: each gets a different job, and the concurrency of 2 holds.
    Job first = assertInstanceOf(QueuePartition.Leased.class, probes.get(3).receiveMessage()).jobs().get(0);
    List<Job> second = assertInstanceOf(QueuePartition.Leased.class, probes.get(4).receiveMessage()).jobs();
    assertEquals(a.id(), first.id());
    assertEquals(List.of(b.id()), second.stream().map(Job::id).toList());
    assertEquals("w1", first.lease().worker());
    assertRefused(QueuePartition.LEASE_LOST, probes.get(5).receiveMessage());
  }

  @Test
  void commandsThatCrossNodesRoundTripThroughCbor() {
    SerializationTestKit serialization = new SerializationTestKit(testKit.system());
    ActorRef<Answer> replyTo = testKit.<Answer>createTestProbe().ref();
    List<Command> commands = List.of(
        new QueuePartition.Submit(job("a"), replyTo),
        new QueuePartition.Get("q:0:a", "alice", replyTo),
        new QueuePartition.Follow("q:0:a", "alice", 1, START, replyTo),
        new QueuePartition.Lease("w1", 5, 30_000, replyTo),
        new QueuePartition.Watch(START, replyTo),
        new QueuePartition.Extend("q:0:a", "l", 30_000, replyTo),
        new QueuePartition.Progress("q:0:a", "l", "{\"p\":1}", replyTo),
        new QueuePartition.Complete("q:0:a", "l", null, replyTo),
        new QueuePartition.Fail("q:0:a", "l", "boom", replyTo),
        new QueuePartition.Cancel("q:0:a", null, -1, replyTo),
        new QueuePartition.SetPaused(true, replyTo),
        new QueuePartition.GetCounts(replyTo),
        new QueuePartition.Wake());
    for (Command command : commands) {
      serialization.verifySerialization(command, true);
    }
  }

  @Test
  void everythingSurvivesARestart() {
    submit(job("a"));
    submit(delayed("b", 5_000));
    Job leased = lease(1).get(0);
    partition.restart();

    assertEquals(leased, get("a", "alice"));
    assertEquals("delayed", get("b", "alice").state(clock.millis()));
    assertEquals(0, lease(1).size());
    complete(leased);
  }

  // ---------------------------------------------------------------------------------------

  private Job job(String name) {
    return new Job("q:0:" + name, "q", "alice", "{\"n\":1}", 0, clock.millis(), 3, 0, QUEUE.backoff(), 0, null,
        Job.Status.WAITING, null, null, null, null, 1, clock.millis(), 0, 0, 0, "digest-" + name);
  }

  private Job keyed(String name, String key) {
    Job j = job(name);
    return new Job(j.id(), j.queue(), j.submitter(), j.data(), 0, j.runAt(), 3, 0, j.backoff(), 0, key,
        j.status(), null, null, null, null, 1, j.createdAt(), 0, 0, 0, j.digest());
  }

  private Job prioritized(String name, int priority) {
    Job j = job(name);
    return new Job(j.id(), j.queue(), j.submitter(), j.data(), priority, j.runAt(), 3, 0, j.backoff(), 0, null,
        j.status(), null, null, null, null, 1, j.createdAt(), 0, 0, 0, j.digest());
  }

  private Job delayed(String name, long delayMs) {
    Job j = job(name);
    return new Job(j.id(), j.queue(), j.submitter(), j.data(), 0, j.runAt() + delayMs, 3, 0, j.backoff(), 0, null,
        j.status(), null, null, null, null, 1, j.createdAt(), 0, 0, 0, j.digest());
  }

  private static Job with(Job j, String digest) {
    return new Job(j.id(), j.queue(), j.submitter(), j.data(), 0, j.runAt(), 3, 0, j.backoff(), 0, null,
        j.status(), null, null, null, null, 1, j.createdAt(), 0, 0, 0, digest);
  }

  /** One write, as the front hands it over: a batch of one. */
  private static CommandResultWithReply<Command, Event, State, Answer> write(
      java.util.function.Function<ActorRef<Answer>, QueuePartition.Write> write) {
    return partition.runCommand(r -> new QueuePartition.WriteBatch(List.of(write.apply(r))));
  }

  private CommandResultWithReply<Command, Event, State, Answer> submitRun(Job job) {
    return write(r -> new QueuePartition.Submit(job, r));
  }

  private void submit(Job job) {
    assertInstanceOf(QueuePartition.Done.class, submitRun(job).reply());
  }

  private Job get(String name, String requester) {
    return assertInstanceOf(QueuePartition.Done.class, partition.<Answer>runCommand(r -> new QueuePartition.Get("q:0:" + name, requester, r)).reply()).job();
  }

  private List<Job> lease(int max) {
    return assertInstanceOf(QueuePartition.Leased.class, write(r -> new QueuePartition.Lease("w1", max, 30_000, r)).reply()).jobs();
  }

  private Job progress(Job leased, String progress) {
    return assertInstanceOf(QueuePartition.Done.class, write(r -> new QueuePartition.Progress(leased.id(), leased.lease().id(), progress, r)).reply()).job();
  }

  private Job complete(Job leased) {
    return assertInstanceOf(QueuePartition.Done.class, write(r -> new QueuePartition.Complete(leased.id(), leased.lease().id(), "{\"ok\":true}", r)).reply()).job();
  }

  private Job fail(Job leased, String error) {
    return assertInstanceOf(QueuePartition.Done.class, write(r -> new QueuePartition.Fail(leased.id(), leased.lease().id(), error, r)).reply()).job();
  }

  /** Forgets what earlier tests' jobs told their submitters. */
  private static void drainUsers() {
    while (true) {
      try {
        users.expectNoMessage(Duration.ofMillis(20));
        return;
      } catch (AssertionError more) {
        users.receiveMessage();
      }
    }
  }

  private static QueuePartition.Refused assertRefused(String code, Answer answer) {
    QueuePartition.Refused refused = assertInstanceOf(QueuePartition.Refused.class, answer);
    assertEquals(code, refused.code(), refused.message());
    return refused;
  }
}
