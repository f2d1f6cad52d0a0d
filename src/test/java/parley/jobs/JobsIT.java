package parley.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import java.time.Duration;
import parley.client.ParleyClient;
import parley.testing.InJvmNode;
import parley.testing.SseClient;
import parley.testing.TestCassandra;

/**
 * Jobs through the wire against the real Cassandra: submit, fetch, progress, complete, status
 * by polling and long-polling, retries, delays, priorities, limits, cancel, idempotency, keys,
 * If-Match, and each bad input's code.
 */
@ExtendWith(LogCapturingExtension.class)
class JobsIT {

  private static final String WORKER_KEY = "test-worker-key";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static InJvmNode node;
  private static String alice;
  private static String bob;

  @BeforeAll
  static void start() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("JobsIT"), 0, 0, ConfigFactory.parseString("""
        parley.jobs.worker-key = "%s"
        parley.jobs.queues {
          flow { partitions = 3 }
          pushed { partitions = 2 }
          waiting { partitions = 3 }
          race { partitions = 1 }
          retry { partitions = 2 }
          expiry { partitions = 2 }
          single { partitions = 1, concurrency = 1 }
          slow { partitions = 1, rate-per-second = 2 }
          delay { partitions = 1 }
          pausing { partitions = 3 }
          idem { partitions = 3 }
          bad { partitions = 1 }
          backend-only { submit-by = [server] }
          rated { partitions = 1 }
        }
        """.formatted(WORKER_KEY)));
    alice = node.token("alice");
    bob = node.token("bob");
  }

  @AfterAll
  static void stop() throws Exception {
    node.close();
  }

  @Test
  void aJobGoesFromSubmittedThroughProgressToCompletedAndItsSubmitterFollowsIt() throws Exception {
    HttpResponse<String> submitted = call("POST", "/v1/queues/flow/jobs", alice, "{\"data\":{\"report\":\"q3\"}}");
    assertEquals(202, submitted.statusCode(), submitted.body());
    JsonNode job = JSON.readTree(submitted.body());
    String id = job.path("id").asText();
    assertEquals("/v1/jobs/" + id, submitted.headers().firstValue("Location").orElseThrow());
    assertEquals("\"1\"", submitted.headers().firstValue("ETag").orElseThrow());
    assertEquals("waiting", job.path("state").asText());

    JsonNode leased = lease("flow", "max=1&wait=5000").get(0);
    assertEquals(id, leased.path("id").asText());
    assertEquals("q3", leased.path("data").path("report").asText());
    String leaseId = leased.path("leaseId").asText();

    // A long poll from the version the submitter saw is answered at the next change.
    CompletableFuture<HttpResponse<String>> following = callAsync("GET", "/v1/jobs/" + id + "?after=2&wait=20000", alice, null);
    assertEquals(200, call("POST", "/v1/jobs/" + id + "/progress", WORKER_KEY, "{\"leaseId\":\"" + leaseId + "\",\"progress\":{\"pct\":40}}").statusCode());
    JsonNode progressed = JSON.readTree(following.get(20, TimeUnit.SECONDS).body());
    assertEquals(40, progressed.path("progress").path("pct").asInt());
    assertEquals("active", progressed.path("state").asText());

    HttpResponse<String> completed = call("POST", "/v1/jobs/" + id + "/complete", WORKER_KEY, "{\"leaseId\":\"" + leaseId + "\",\"result\":{\"rows\":12}}");
    assertEquals(200, completed.statusCode(), completed.body());
    JsonNode done = JSON.readTree(call("GET", "/v1/jobs/" + id, alice, null).body());
    assertEquals("completed", done.path("state").asText());
    assertEquals(12, done.path("result").path("rows").asInt());
    assertEquals(1, done.path("attemptsMade").asInt());

    assertError(404, "job_not_found", call("GET", "/v1/jobs/" + id, bob, null));
    assertEquals(200, call("GET", "/v1/jobs/" + id, InJvmNode.SERVER_KEY, null).statusCode(), "a backend sees every job");
  }

  @Test
  void theSubmittersWebSocketAndSseConnectionsGetEveryChangeInOrder() throws Exception {
    String carol = node.token("carol");
    try (ParleyClient socket = ParleyClient.connect(node.ws(), carol).get(20, TimeUnit.SECONDS);
        SseClient stream = SseClient.connect(node.http(), carol, null)) {
      stream.await(e -> e.type().equals("welcome"), Duration.ofSeconds(20));
      String id = submit("pushed", carol, "{\"data\":\"x\"}");
      JsonNode leased = leaseJob("pushed", id);
      call("POST", "/v1/jobs/" + id + "/progress", WORKER_KEY, "{\"leaseId\":\"" + leased.path("leaseId").asText() + "\",\"progress\":50}");
      finish(leased);

      socket.awaitPush(p -> p.path("type").asText().equals("job") && p.path("job").path("state").asText().equals("completed"), Duration.ofSeconds(20));
      List<Long> overSocket = socket.pushes().stream().filter(p -> p.path("type").asText().equals("job")).map(p -> p.path("job").path("version").asLong()).toList();
      assertEquals(List.of(1L, 2L, 3L, 4L), overSocket, "each change once, in order");
      stream.await(e -> e.type().equals("job") && e.data().path("job").path("state").asText().equals("completed"), Duration.ofSeconds(20));
      List<Long> overSse = stream.events().stream().filter(e -> e.type().equals("job")).map(e -> e.data().path("job").path("version").asLong()).toList();
      assertEquals(List.of(1L, 2L, 3L, 4L), overSse, "each change once, in order");
    }
  }

  @Test
  void aWaitingFetchGetsAJobSubmittedWhileItWaits() throws Exception {
    CompletableFuture<HttpResponse<String>> fetch = callAsync("POST", "/v1/queues/waiting/lease?max=1&wait=20000", WORKER_KEY, null);
    String id = submit("waiting", alice, "{\"data\":1}");
    HttpResponse<String> fetched = fetch.get(20, TimeUnit.SECONDS);
    assertEquals(200, fetched.statusCode(), fetched.body());
    JsonNode jobs = JSON.readTree(fetched.body()).path("jobs");
    assertEquals(1, jobs.size(), fetched.body());
    assertEquals(1, jobs.size());
    assertEquals(id, jobs.get(0).path("id").asText());
    finish(jobs.get(0));
  }

  @Test
  void manyWorkersRaceForOneJobAndExactlyOneLeaseWins() throws Exception {
    String id = submit("race", alice, "{}");
    List<CompletableFuture<HttpResponse<String>>> fetches = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      fetches.add(callAsync("POST", "/v1/queues/race/lease?max=1&worker=w" + i, WORKER_KEY, null));
    }
    List<JsonNode> won = new ArrayList<>();
    for (CompletableFuture<HttpResponse<String>> fetch : fetches) {
      JSON.readTree(fetch.get(20, TimeUnit.SECONDS).body()).path("jobs").forEach(won::add);
    }
    assertEquals(1, won.size(), "one lease of " + id);
    finish(won.get(0));
  }

  @Test
  void aFailedAttemptIsRetriedAfterItsBackoffAndThenFailsForGood() throws Exception {
    String id = submit("retry", alice, "{\"attempts\":2,\"backoff\":{\"type\":\"fixed\",\"delay\":300}}");
    JsonNode first = leaseJob("retry", id);
    HttpResponse<String> failed = call("POST", "/v1/jobs/" + id + "/fail", WORKER_KEY, "{\"leaseId\":\"" + first.path("leaseId").asText() + "\",\"error\":\"disk full\"}");
    JsonNode retrying = JSON.readTree(failed.body());
    assertEquals("delayed", retrying.path("state").asText(), failed.body());
    assertEquals("disk full", retrying.path("error").asText());

    JsonNode second = leaseJob("retry", id);
    assertEquals(1, second.path("attemptsMade").asInt());
    call("POST", "/v1/jobs/" + id + "/fail", WORKER_KEY, "{\"leaseId\":\"" + second.path("leaseId").asText() + "\",\"error\":\"disk still full\"}");
    JsonNode dead = JSON.readTree(call("GET", "/v1/jobs/" + id, alice, null).body());
    assertEquals("failed", dead.path("state").asText());
    assertEquals(2, dead.path("attemptsMade").asInt());
  }

  @Test
  void aLeaseThatRunsOutReturnsTheJobToWaitingAndItsWorkerCanNoLongerReport() throws Exception {
    String id = submit("expiry", alice, "{}");
    JsonNode leased = leaseJob("expiry", id, "lease=1000");
    long version = leased.path("version").asLong();
    JsonNode back = JSON.readTree(call("GET", "/v1/jobs/" + id + "?after=" + version + "&wait=20000", alice, null).body());
    assertEquals("waiting", back.path("state").asText());
    assertEquals("lease_expired", back.path("error").asText());
    assertEquals(1, back.path("attemptsMade").asInt());
    assertError(409, "lease_lost", call("POST", "/v1/jobs/" + id + "/complete", WORKER_KEY, "{\"leaseId\":\"" + leased.path("leaseId").asText() + "\"}"));
    finish(leaseJob("expiry", id));
  }

  @Test
  void priorityConcurrencyAndRateShapeWhatIsLeased() throws Exception {
    String low = submit("single", alice, "{\"priority\":1}");
    String high = submit("single", alice, "{\"priority\":9}");
    List<JsonNode> leased = lease("single", "max=2");
    assertEquals(1, leased.size(), "concurrency 1");
    assertEquals(high, leased.get(0).path("id").asText());
    finish(leased.get(0));
    finish(leaseJob("single", low));

    for (int i = 0; i < 5; i++) {
      submit("slow", alice, "{}");
    }
    List<JsonNode> started = lease("slow", "max=5");
    assertTrue(started.size() <= 2, "2 starts per second: " + started.size());
    for (JsonNode job : started) {
      finish(job);
    }
  }

  @Test
  void aDelayedJobWaitsForItsTime() throws Exception {
    String id = submit("delay", alice, "{\"delay\":1500}");
    assertEquals("delayed", JSON.readTree(call("GET", "/v1/jobs/" + id, alice, null).body()).path("state").asText());
    assertEquals(0, lease("delay", "max=1").size());
    finish(leaseJob("delay", id));
  }

  @Test
  void aPausedQueueLeasesNothingAndBackendsSeeItsCounts() throws Exception {
    assertEquals(200, call("POST", "/v1/queues/pausing/pause", InJvmNode.SERVER_KEY, null).statusCode());
    String id = submit("pausing", alice, "{}");
    assertEquals(0, lease("pausing", "max=10").size());
    JsonNode counts = JSON.readTree(call("GET", "/v1/queues/pausing", InJvmNode.SERVER_KEY, null).body());
    assertTrue(counts.path("paused").asBoolean());
    assertTrue(counts.path("waiting").asInt() >= 1, counts.toString());
    assertEquals(200, call("POST", "/v1/queues/pausing/resume", InJvmNode.SERVER_KEY, null).statusCode());
    finish(leaseJob("pausing", id));
  }

  @Test
  void idempotentSubmissionsUniqueKeysAndIfMatch() throws Exception {
    HttpResponse<String> first = call("POST", "/v1/queues/idem/jobs", alice, "{\"data\":7}", "idem-1");
    HttpResponse<String> repeat = call("POST", "/v1/queues/idem/jobs", alice, "{\"data\":7}", "idem-1");
    assertEquals(202, first.statusCode());
    assertEquals(200, repeat.statusCode(), "an exact repeat is the same job");
    String id = JSON.readTree(first.body()).path("id").asText();
    assertEquals(id, JSON.readTree(repeat.body()).path("id").asText());
    assertError(409, "idempotency_conflict", call("POST", "/v1/queues/idem/jobs", alice, "{\"data\":8}", "idem-1"));
    assertNotEquals(id, JSON.readTree(call("POST", "/v1/queues/idem/jobs", bob, "{\"data\":7}", "idem-1").body()).path("id").asText(), "keys are per submitter");

    String holder = submit("idem", alice, "{\"key\":\"export:general\"}");
    HttpResponse<String> taken = call("POST", "/v1/queues/idem/jobs", alice, "{\"key\":\"export:general\"}");
    assertError(409, "job_key_taken", taken);
    assertEquals(holder, JSON.readTree(taken.body()).path("jobId").asText());

    assertError(412, "version_mismatch", call("DELETE", "/v1/jobs/" + holder, alice, null, null, "\"7\""));
    HttpResponse<String> cancelled = call("DELETE", "/v1/jobs/" + holder, alice, null, null, "\"1\"");
    assertEquals("cancelled", JSON.readTree(cancelled.body()).path("state").asText(), cancelled.body());
    assertError(409, "job_finished", call("DELETE", "/v1/jobs/" + holder, alice, null));
    submit("idem", alice, "{\"key\":\"export:general\"}");
  }

  @Test
  void aUsersJobCallsCountTowardTheirOneRequestRate() throws Exception {
    String dora = node.token("dora-" + System.nanoTime());
    String id = submit("rated", dora, "{}");
    // 40 a second with bursts of 80, shared with the user's other calls: 200 reads at once
    // outrun it, and the ones past it are told how long to wait.
    List<CompletableFuture<HttpResponse<String>>> reads = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      reads.add(HTTP.sendAsync(
          HttpRequest.newBuilder(node.http().resolve("/v1/jobs/" + id)).header("Authorization", "Bearer " + dora).build(),
          HttpResponse.BodyHandlers.ofString()));
    }
    int limited = 0;
    for (var read : reads) {
      HttpResponse<String> response = read.get(60, TimeUnit.SECONDS);
      if (response.statusCode() == 429) {
        assertError(429, "rate_limited", response);
        assertTrue(response.headers().firstValue("Retry-After").isPresent(), "429 says when");
        limited++;
      } else {
        assertEquals(200, response.statusCode(), response.body());
      }
    }
    assertTrue(limited > 0, "200 reads at once, none over the user's rate");
  }

  @Test
  void badInputGetsItsCodeAndChangesNothing() throws Exception {
    assertError(404, "queue_not_found", call("POST", "/v1/queues/nope/jobs", alice, "{}"));
    assertError(404, "queue_not_found", call("POST", "/v1/queues/" + "x".repeat(65) + "/jobs", alice, "{}"));
    // A body over the frame limit is refused as the frame it stands for would be; within it,
    // data over its own 60 KiB is body_too_large.
    assertError(413, "frame_too_large", call("POST", "/v1/queues/bad/jobs", alice, "{\"data\":\"" + "x".repeat(70_000) + "\"}"));
    assertError(413, "body_too_large", call("POST", "/v1/queues/bad/jobs", alice, "{\"data\":\"" + "x".repeat(62_000) + "\"}"));
    assertError(400, "bad_field", call("POST", "/v1/queues/bad/jobs", alice, "{\"backoff\":{\"type\":\"sometimes\",\"delay\":1}}"));
    assertError(400, "bad_field", call("POST", "/v1/queues/bad/jobs", alice, "{\"delay\":-5}"));
    assertError(400, "bad_field", call("POST", "/v1/queues/bad/jobs", alice, "{\"attempts\":4294967297}"));
    assertError(400, "bad_field", call("POST", "/v1/queues/bad/jobs", alice, "{\"colour\":\"red\"}"));
    assertError(400, "bad_text", call("POST", "/v1/queues/bad/jobs", alice, "{\"data\":\"\\ud800\"}"));
    assertError(400, "bad_frame", call("POST", "/v1/queues/bad/jobs", alice, "{\"data\":1,\"data\":2}"));
    assertError(403, "forbidden", call("POST", "/v1/queues/backend-only/jobs", alice, "{}"));
    assertEquals(202, call("POST", "/v1/queues/backend-only/jobs", InJvmNode.SERVER_KEY, "{}").statusCode());

    assertError(401, "worker_key_missing", HTTP.send(HttpRequest.newBuilder(node.http().resolve("/v1/queues/bad/lease")).POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString()));
    assertError(401, "worker_key_invalid", call("POST", "/v1/queues/bad/lease", alice, null));
    assertError(400, "bad_field", call("POST", "/v1/queues/bad/lease?max=0", WORKER_KEY, null));
    assertError(400, "bad_timeout", call("POST", "/v1/queues/bad/lease?wait=999999", WORKER_KEY, null));

    String id = submit("bad", alice, "{}");
    JsonNode leased = leaseJob("bad", id);
    assertError(409, "lease_lost", call("POST", "/v1/jobs/" + id + "/complete", WORKER_KEY, "{\"leaseId\":\"someone-elses\"}"));
    assertError(400, "missing_field", call("POST", "/v1/jobs/" + id + "/complete", WORKER_KEY, "{}"));
    assertError(404, "job_not_found", call("POST", "/v1/jobs/bad:0:" + "0".repeat(32) + "/complete", WORKER_KEY, "{\"leaseId\":\"x\"}"));
    assertError(404, "job_not_found", call("GET", "/v1/jobs/not-a-job-id", alice, null));
    assertEquals("active", JSON.readTree(call("GET", "/v1/jobs/" + id, alice, null).body()).path("state").asText(), "nothing changed");
    finish(leased);
  }

  // ---------------------------------------------------------------------------------------

  private static String submit(String queue, String token, String body) throws Exception {
    HttpResponse<String> response = call("POST", "/v1/queues/" + queue + "/jobs", token, body);
    assertEquals(202, response.statusCode(), response.body());
    return JSON.readTree(response.body()).path("id").asText();
  }

  private static List<JsonNode> lease(String queue, String query) throws Exception {
    HttpResponse<String> response = call("POST", "/v1/queues/" + queue + "/lease?" + query, WORKER_KEY, null);
    assertEquals(200, response.statusCode(), response.body());
    List<JsonNode> jobs = new ArrayList<>();
    JSON.readTree(response.body()).path("jobs").forEach(jobs::add);
    return jobs;
  }

  /** Fetches until {@code id} comes (other tests' jobs of the queue are finished on the way). */
  private static JsonNode leaseJob(String queue, String id, String... query) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      for (JsonNode job : lease(queue, "max=1&wait=10000" + (query.length > 0 ? "&" + query[0] : ""))) {
        if (job.path("id").asText().equals(id)) {
          return job;
        }
        finish(job);
      }
    }
    throw new AssertionError("never leased " + id);
  }

  private static void finish(JsonNode leased) throws Exception {
    HttpResponse<String> done = call("POST", "/v1/jobs/" + leased.path("id").asText() + "/complete", WORKER_KEY, "{\"leaseId\":\"" + leased.path("leaseId").asText() + "\"}");
    assertEquals(200, done.statusCode(), done.body());
  }

  private static void assertError(int status, String code, HttpResponse<String> response) throws Exception {
    assertEquals(status, response.statusCode(), response.body());
    assertEquals(code, JSON.readTree(response.body()).path("code").asText(), response.body());
  }

  private static HttpResponse<String> call(String method, String path, String token, String body) throws Exception {
    return call(method, path, token, body, null, null);
  }

  private static HttpResponse<String> call(String method, String path, String token, String body, String idempotencyKey) throws Exception {
    return call(method, path, token, body, idempotencyKey, null);
  }

  private static HttpResponse<String> call(String method, String path, String token, String body, String idempotencyKey, String ifMatch) throws Exception {
    return callAsync(method, path, token, body, idempotencyKey, ifMatch).get(30, TimeUnit.SECONDS);
  }

  private static CompletableFuture<HttpResponse<String>> callAsync(String method, String path, String token, String body) {
    return callAsync(method, path, token, body, null, null);
  }

  private static CompletableFuture<HttpResponse<String>> callAsync(
      String method, String path, String token, String body, String idempotencyKey, String ifMatch) {
    HttpRequest.Builder request = HttpRequest.newBuilder(node.http().resolve(path))
        .header("Authorization", "Bearer " + token)
        .header("Content-Type", "application/json")
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    Map.of("Idempotency-Key", idempotencyKey == null ? "" : idempotencyKey, "If-Match", ifMatch == null ? "" : ifMatch)
        .forEach((name, value) -> {
          if (!value.isEmpty()) {
            request.header(name, value);
          }
        });
    return HTTP.sendAsync(request.build(), HttpResponse.BodyHandlers.ofString());
  }
}
