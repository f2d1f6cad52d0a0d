package parley.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.client.JobWorker;
import parley.client.ParleyClient;
import parley.client.ParleyException;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * Jobs over real WebSockets against the real Cassandra: users submit, follow and cancel with
 * {@code job_*} frames, workers connect with the worker key and work through the Java {@link
 * JobWorker} (concurrency, lease heartbeats, progress, outcomes, graceful stop), a held
 * {@code job_fetch} holds up nothing else on its connection, and each bad input gets its code.
 */
@ExtendWith(LogCapturingExtension.class)
class JobsWebSocketIT {

  private static final String WORKER_KEY = "test-worker-key-ws";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static InJvmNode node;
  private static ParleyClient alice;
  private static ParleyClient bob;

  @BeforeAll
  static void start() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("JobsWebSocketIT"), 0, 0, ConfigFactory.parseString("""
        parley.jobs.worker-key = "%s"
        # These tests poll job_status in tight loops and submit in bursts; the request and
        # submit limits are not what they test (ProtocolContractIT and JobsIT do).
        parley.chat.rate-per-second = 100000
        parley.chat.rate-burst = 100000
        parley.chat.user-rate-per-second = 100000
        parley.chat.user-rate-burst = 100000
        parley.jobs.submit-rate-per-second = 100000
        parley.jobs.submit-rate-burst = 100000
        parley.jobs.queues {
          work { partitions = 2 }
          held { partitions = 2 }
          heartbeat { partitions = 1 }
          bad { partitions = 1 }
          stopping { partitions = 1 }
        }
        """.formatted(WORKER_KEY)));
    alice = ParleyClient.connect(node.ws(), node.token("alice")).get(30, TimeUnit.SECONDS);
    bob = ParleyClient.connect(node.ws(), node.token("bob")).get(30, TimeUnit.SECONDS);
  }

  @AfterAll
  static void stop() throws Exception {
    alice.close();
    bob.close();
    node.close();
  }

  @Test
  void jobsSubmittedOverTheSocketAreWorkedConcurrentlyAndTheirSubmitterIsPushedEveryChange() throws Exception {
    int jobs = 8;
    int concurrency = 4;
    // Each handler waits until four run at once: the test passes only with real concurrency.
    CountDownLatch together = new CountDownLatch(concurrency);
    AtomicInteger atOnce = new AtomicInteger();
    AtomicInteger mostAtOnce = new AtomicInteger();
    try (ParleyClient connection = worker()) {
      assertEquals("worker", connection.userId());
      JobWorker worker = JobWorker.start(connection, JobWorker.Options.of("work", concurrency), job -> {
        mostAtOnce.accumulateAndGet(atOnce.incrementAndGet(), Math::max);
        try {
          together.countDown();
          assertTrue(together.await(30, TimeUnit.SECONDS), "four handlers at once");
          job.progress(JSON.createObjectNode().put("pct", 50)).join();
          return JSON.createObjectNode().put("twice", job.data().path("n").asInt() * 2);
        } finally {
          atOnce.decrementAndGet();
        }
      });

      List<String> ids = new ArrayList<>();
      long submittedAt = System.nanoTime();
      for (int n = 0; n < jobs; n++) {
        JsonNode submitted = submit("work", JSON.createObjectNode().set("data", JSON.createObjectNode().put("n", n)), "w-" + n).join();
        assertEquals("waiting", submitted.path("job").path("state").asText(), submitted.toString());
        assertFalse(submitted.has("duplicate"));
        ids.add(submitted.path("job").path("id").asText());
      }

      // The submitter's own connection is pushed each job's changes, in version order, up to its result.
      for (int n = 0; n < jobs; n++) {
        String id = ids.get(n);
        alice.awaitPush(p -> isJob(p, id) && p.path("job").path("state").asText().equals("completed"), Duration.ofSeconds(30));
        List<JsonNode> seen = alice.pushes().stream().filter(p -> isJob(p, id)).toList();
        long version = 0;
        for (JsonNode push : seen) {
          assertTrue(push.path("job").path("version").asLong() > version, "versions grow: " + seen);
          version = push.path("job").path("version").asLong();
        }
        assertTrue(seen.stream().anyMatch(p -> p.path("job").path("progress").path("pct").asInt() == 50), "progress pushed: " + seen);
        assertEquals(n * 2, seen.get(seen.size() - 1).path("job").path("result").path("twice").asInt());
      }
      System.out.printf("JobsWebSocketIT: %d jobs submitted, worked (concurrency %d) and completed in %d ms%n",
          jobs, concurrency, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - submittedAt));
      awaitTrue(() -> worker.completed() == jobs, "the worker counted every completion");
      assertEquals(concurrency, mostAtOnce.get());
      assertEquals(0, worker.failed());

      // A repeated submission answers the job it made, as it is now.
      JsonNode again = submit("work", JSON.createObjectNode().set("data", JSON.createObjectNode().put("n", 0)), "w-0").join();
      assertEquals(ids.get(0), again.path("job").path("id").asText());
      assertTrue(again.path("duplicate").asBoolean());
      assertEquals("completed", again.path("job").path("state").asText());

      worker.stop().get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void aHeldFetchIsAnsweredWhenAJobArrivesAndHoldsUpNothingElseOnItsConnection() throws Exception {
    try (ParleyClient connection = worker()) {
      CompletableFuture<JsonNode> fetch = connection.request(
          frame("job_fetch").put("queue", "held").put("max", 2).put("waitMs", 20_000), Duration.ofSeconds(30));
      // The same connection answers other requests while the fetch is held.
      connection.ping().get(10, TimeUnit.SECONDS);
      assertFalse(fetch.isDone(), "the fetch waits for a job");
      JsonNode status = request(alice, frame("job_status").put("job", "held:0:" + "0".repeat(32)));
      assertEquals("job_not_found", status.path("code").asText());

      long submitted = System.nanoTime();
      String id = submit("held", JSON.createObjectNode(), null).join().path("job").path("id").asText();
      JsonNode leased = fetch.get(20, TimeUnit.SECONDS);
      long pickupMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - submitted);
      System.out.printf("JobsWebSocketIT: a held job_fetch was answered %d ms after the submission%n", pickupMs);
      assertEquals(1, leased.path("jobs").size(), leased.toString());
      JsonNode job = leased.path("jobs").get(0);
      assertEquals(id, job.path("id").asText());
      assertEquals("active", job.path("state").asText());
      assertTrue(job.path("leaseUntil").asLong() > System.currentTimeMillis());

      JsonNode done = request(connection, frame("job_complete").put("job", id).put("leaseId", job.path("leaseId").asText()));
      assertEquals("completed", done.path("job").path("state").asText(), done.toString());

      // An empty queue answers an empty list once the wait runs out.
      JsonNode empty = request(connection, frame("job_fetch").put("queue", "held").put("waitMs", 200));
      assertEquals(0, empty.path("jobs").size());
    }
  }

  @Test
  void aWorkerExtendsItsLeasesWhileItsHandlerRuns() throws Exception {
    CountDownLatch proceed = new CountDownLatch(1);
    try (ParleyClient connection = worker()) {
      // A 1 s lease and a handler that runs past three of them: without heartbeats the lease
      // would expire and the completion be refused (lease_lost).
      JobWorker worker = JobWorker.start(connection, JobWorker.Options.of("heartbeat", 1).withLease(Duration.ofSeconds(1)), job -> {
        assertTrue(proceed.await(30, TimeUnit.SECONDS));
        return null;
      });
      String id = submit("heartbeat", JSON.createObjectNode(), null).join().path("job").path("id").asText();
      awaitTrue(() -> worker.running() == 1, "the job runs");
      long started = System.nanoTime();
      // Three lease lengths, measured by the server's own versions: each extension is one.
      awaitTrue(() -> version(id) >= 5 && System.nanoTime() - started > TimeUnit.SECONDS.toNanos(3), "the lease was extended, and outlived");
      proceed.countDown();
      awaitTrue(() -> worker.completed() == 1, "the job completed under its extended lease");
      assertEquals(0, worker.lost());
      JsonNode job = request(alice, frame("job_status").put("job", id)).path("job");
      assertEquals("completed", job.path("state").asText());
      assertEquals(1, job.path("attemptsMade").asInt());
      worker.stop().get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void badInputGetsItsCodeAndChangesNothing() throws Exception {
    assertEquals("queue_not_found", request(alice, frame("job_submit").put("queue", "nope")).path("code").asText());
    assertEquals("queue_not_found", request(alice, frame("job_submit").put("queue", "x".repeat(65))).path("code").asText());
    ObjectNode badBackoff = frame("job_submit").put("queue", "bad");
    badBackoff.putObject("job").putObject("backoff").put("type", "sometimes").put("delay", 1);
    assertEquals("bad_field", request(alice, badBackoff).path("code").asText());
    ObjectNode negativeDelay = frame("job_submit").put("queue", "bad");
    negativeDelay.putObject("job").put("delay", -5);
    assertEquals("bad_field", request(alice, negativeDelay).path("code").asText());
    ObjectNode tooBig = frame("job_submit").put("queue", "bad");
    tooBig.putObject("job").put("data", "x".repeat(70_000));
    assertEquals("frame_too_large", request(alice, tooBig).path("code").asText());

    // Worker requests need a worker connection; a worker connection does nothing else.
    assertEquals("forbidden", request(alice, frame("job_fetch").put("queue", "bad")).path("code").asText());
    assertEquals("forbidden", request(alice, frame("job_complete").put("job", "bad:0:" + "0".repeat(32)).put("leaseId", "x")).path("code").asText());
    try (ParleyClient connection = worker()) {
      assertEquals("forbidden", request(connection, frame("job_submit").put("queue", "bad")).path("code").asText());
      assertEquals("forbidden", request(connection, frame("join").put("room", "lobby")).path("code").asText());
      assertEquals("bad_timeout", request(connection, frame("job_fetch").put("queue", "bad").put("waitMs", 999_999)).path("code").asText());
      assertEquals("bad_field", request(connection, frame("job_fetch").put("queue", "bad").put("max", 0)).path("code").asText());
      assertEquals("queue_not_found", request(connection, frame("job_fetch").put("queue", "nope")).path("code").asText());

      // A key held by a live job: the refusal names the holder.
      ObjectNode keyed = frame("job_submit").put("queue", "bad");
      keyed.putObject("job").put("key", "report-q3");
      String holder = request(alice, keyed).path("job").path("id").asText();
      JsonNode taken = request(alice, keyed.deepCopy().put("idempotencyKey", "another"));
      assertEquals("job_key_taken", taken.path("code").asText(), taken.toString());
      assertEquals(holder, taken.path("jobId").asText());

      // Only its submitter sees a job.
      assertEquals("job_not_found", request(bob, frame("job_status").put("job", holder)).path("code").asText());
      assertEquals("job_not_found", request(bob, frame("job_cancel").put("job", holder)).path("code").asText());

      JsonNode leased = request(connection, frame("job_fetch").put("queue", "bad").put("waitMs", 5_000)).path("jobs").get(0);
      assertEquals(holder, leased.path("id").asText());
      String leaseId = leased.path("leaseId").asText();
      assertEquals("lease_lost", request(connection, frame("job_complete").put("job", holder).put("leaseId", "not-the-lease")).path("code").asText());
      assertEquals("missing_field", request(connection, frame("job_fail").put("job", holder).put("leaseId", leaseId)).path("code").asText());
      ObjectNode bigProgress = frame("job_progress").put("job", holder).put("leaseId", leaseId);
      bigProgress.put("progress", "p".repeat(5_000));
      assertEquals("body_too_large", request(connection, bigProgress).path("code").asText());

      // A stale version does not cancel; the current one does, and the worker's lease is lost.
      JsonNode stale = request(alice, frame("job_cancel").put("job", holder).put("ifVersion", 1));
      assertEquals("version_mismatch", stale.path("code").asText(), stale.toString());
      long version = leased.path("version").asLong();
      assertEquals("cancelled", request(alice, frame("job_cancel").put("job", holder).put("ifVersion", version)).path("job").path("state").asText());
      assertEquals("lease_lost", request(connection, frame("job_complete").put("job", holder).put("leaseId", leaseId)).path("code").asText());
      assertEquals("job_finished", request(alice, frame("job_cancel").put("job", holder)).path("code").asText());
      JsonNode after = request(alice, frame("job_status").put("job", holder)).path("job");
      assertEquals("cancelled", after.path("state").asText());
      assertEquals(version + 1, after.path("version").asLong(), "the refused requests changed nothing");
    }
  }

  @Test
  void aStoppingWorkerFinishesWhatItRunsAndFailsBackWhatItHasNotStarted() throws Exception {
    CountDownLatch proceed = new CountDownLatch(1);
    try (ParleyClient connection = worker()) {
      JobWorker worker = JobWorker.start(connection, JobWorker.Options.of("stopping", 3), job -> {
        assertTrue(proceed.await(30, TimeUnit.SECONDS));
        return JSON.createObjectNode().put("done", true);
      });
      String first = submit("stopping", JSON.createObjectNode(), null).join().path("job").path("id").asText();
      String second = submit("stopping", JSON.createObjectNode(), null).join().path("job").path("id").asText();
      // Two run; the third slot's fetch is held on the server, for a job yet to come.
      awaitTrue(() -> worker.running() == 2 && worker.fetching(), "two jobs run and a fetch is held");

      CompletableFuture<Void> stopped = worker.stop();
      String third = submit("stopping", JSON.createObjectNode(), null).join().path("job").path("id").asText();
      assertFalse(stopped.isDone(), "running jobs hold the stop");
      proceed.countDown();
      stopped.get(30, TimeUnit.SECONDS);

      for (String id : List.of(first, second)) {
        assertEquals("completed", request(alice, frame("job_status").put("job", id)).path("job").path("state").asText());
      }
      JsonNode released = request(alice, frame("job_status").put("job", third)).path("job");
      assertEquals(JobWorker.RELEASED, released.path("error").asText(), released.toString());
      assertTrue(List.of("waiting", "delayed").contains(released.path("state").asText()), released.toString());
      assertEquals(1, released.path("attemptsMade").asInt());
      assertEquals(2, worker.completed());
      assertEquals(1, worker.released());
    }
  }

  // ---------------------------------------------------------------------------------------

  private static ParleyClient worker() throws Exception {
    return ParleyClient.connect(node.ws(), WORKER_KEY).get(30, TimeUnit.SECONDS);
  }

  private static CompletableFuture<JsonNode> submit(String queue, ObjectNode job, String idempotencyKey) {
    ObjectNode frame = frame("job_submit").put("queue", queue);
    frame.set("job", job);
    if (idempotencyKey != null) {
      frame.put("idempotencyKey", idempotencyKey);
    }
    return alice.request(frame);
  }

  private static long version(String id) {
    return request(alice, frame("job_status").put("job", id)).path("job").path("version").asLong();
  }

  /** The reply frame, ok or error. */
  private static JsonNode request(ParleyClient client, ObjectNode frame) {
    try {
      return client.request(frame).join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof ParleyException refused && refused.frame().isPresent()) {
        return refused.frame().get();
      }
      throw e;
    }
  }

  private static ObjectNode frame(String type) {
    return JSON.createObjectNode().put("type", type);
  }

  private static boolean isJob(JsonNode push, String id) {
    return push.path("type").asText().equals("job") && push.path("job").path("id").asText().equals(id);
  }

  private static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not within 30 s: " + what);
      }
      Thread.sleep(20);
    }
  }
}
