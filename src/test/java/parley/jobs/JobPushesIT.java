package parley.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.URLEncoder;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.testing.InJvmNode;
import parley.testing.SseClient;
import parley.testing.TestCassandra;

/**
 * A submitter's job pushes on the connections that resume by cursor (docs/transports.md, "Job
 * pushes"), against the real Cassandra: a long-poll loop sees every change of its jobs, between
 * polls and during a held one, in version order and none twice; an SSE stream that reconnects
 * with {@code Last-Event-ID} is sent what changed while it was away; and a cursor that outlived
 * the user's entity (the node restarted) is told to re-read its jobs instead of missing them.
 */
@ExtendWith(LogCapturingExtension.class)
class JobPushesIT {

  private static final String WORKER_KEY = "test-worker-key-pushes";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Config KEYSPACES = TestCassandra.keyspacesFor("JobPushesIT");
  private static final Config CONFIG = ConfigFactory.parseString("""
      parley.jobs.worker-key = "%s"
      parley.jobs.queues {
        polled { partitions = 2 }
        streamed { partitions = 1 }
        restarted { partitions = 1 }
      }
      """.formatted(WORKER_KEY));
  private static InJvmNode node;

  @BeforeAll
  static void start() throws Exception {
    node = InJvmNode.start(KEYSPACES, 0, 0, CONFIG);
  }

  @AfterAll
  static void stop() throws Exception {
    node.close();
  }

  @Test
  void aPollLoopSeesEveryChangeOfItsJobsBetweenAndDuringPollsInVersionOrderAndNoneTwice() throws Exception {
    String carol = node.token("carol");
    JsonNode first = poll(carol, null, "0");
    assertEquals(0, first.path("events").size(), first.toString());
    String cursor = first.path("cursor").asText();

    // Between two polls: three jobs submitted, leased, and taken to three different states.
    List<String> ids = new ArrayList<>();
    for (int n = 0; n < 3; n++) {
      ids.add(submit(carol, "polled", "{\"data\":{\"n\":" + n + "},\"attempts\":1}").path("id").asText());
    }
    List<JsonNode> leased = leaseAll("polled", 3);
    Map<String, String> leases = new HashMap<>();
    leased.forEach(job -> leases.put(job.path("id").asText(), job.path("leaseId").asText()));
    report(ids.get(0), "progress", leases.get(ids.get(0)), "\"progress\":{\"pct\":50}");
    report(ids.get(1), "complete", leases.get(ids.get(1)), "\"result\":{\"ok\":true}");
    report(ids.get(2), "fail", leases.get(ids.get(2)), "\"error\":\"boom\"");

    Map<String, Long> seen = new HashMap<>();
    Set<String> versionsSeen = new HashSet<>();
    // A poll loop: the last change may still be on its way from the partition to the user.
    Map<String, Long> now = new HashMap<>();
    for (String id : ids) {
      now.put(id, version(carol, id));
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!seen.equals(now) && System.nanoTime() < deadline) {
      cursor = record(poll(carol, cursor, "2s"), seen, versionsSeen);
    }
    assertEquals(now, seen, "the loop saw each job's newest version");

    // During a held poll: the push answers it, long before its timeout.
    long heldAt = System.nanoTime();
    CompletableFuture<JsonNode> held = CompletableFuture.supplyAsync(pollQuietly(carol, cursor, "25s"));
    report(ids.get(0), "complete", leases.get(ids.get(0)), "\"result\":{\"n\":0}");
    JsonNode answered = held.get(30, TimeUnit.SECONDS);
    long heldMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - heldAt);
    cursor = record(answered, seen, versionsSeen);
    assertEquals(version(carol, ids.get(0)), seen.get(ids.get(0)), answered.toString());
    assertTrue(heldMs < 20_000, "the held poll answered when the push came, after " + heldMs + " ms");
    System.out.printf("JobPushesIT: a held poll answered %d ms after it was sent, with the job's completion%n", heldMs);

    // Nothing is sent twice: the next poll has no job push.
    JsonNode after = poll(carol, cursor, "0");
    record(after, seen, versionsSeen);
    assertFalse(after.toString().contains("\"type\":\"job\""), after.toString());
  }

  @Test
  void anSseStreamReconnectingWithItsLastEventIdIsSentWhatChangedMeanwhile() throws Exception {
    String dave = node.token("dave");
    String lastId;
    String id;
    try (SseClient sse = SseClient.connect(node.http(), dave, null)) {
      assertEquals(200, sse.status);
      sse.await(e -> e.type().equals("welcome"), Duration.ofSeconds(15));
      id = submit(dave, "streamed", "{\"data\":{}}").path("id").asText();
      SseClient.Event pushed = sse.await(e -> e.type().equals("job") && e.data().path("job").path("id").asText().equals(id), Duration.ofSeconds(15));
      assertTrue(pushed.id() != null && !pushed.id().isBlank(), "a job push carries the cursor after it: " + pushed);
      lastId = pushed.id();
    }
    // While the stream is away, the job is leased and completed.
    JsonNode job = leaseAll("streamed", 1).get(0);
    report(id, "complete", job.path("leaseId").asText(), "\"result\":{\"done\":1}");
    long completed = version(dave, id);

    try (SseClient again = SseClient.connect(node.http(), dave, lastId)) {
      SseClient.Event caughtUp = again.await(e -> e.type().equals("job") && e.data().path("job").path("version").asLong() == completed, Duration.ofSeconds(15));
      assertEquals("completed", caughtUp.data().path("job").path("state").asText());
      List<Long> versions = again.events().stream().filter(e -> e.type().equals("job")).map(e -> e.data().path("job").path("version").asLong()).toList();
      assertTrue(versions.get(0) > 1, "nothing it had seen: " + versions);
      for (int i = 1; i < versions.size(); i++) {
        assertTrue(versions.get(i) > versions.get(i - 1), "in version order, once: " + versions);
      }
    }
  }

  @Test
  void aCursorThatOutlivedTheUsersEntityIsToldToReadItsJobsAgainThenGoesOn() throws Exception {
    String erin = node.token("erin");
    String cursor = poll(erin, null, "0").path("cursor").asText();
    String before = submit(erin, "restarted", "{\"data\":{}}").path("id").asText();
    cursor = poll(erin, cursor, "0").path("cursor").asText();

    int httpPort = node.httpPort;
    node.close();
    node = InJvmNode.start(KEYSPACES, 0, 0, ConfigFactory.parseString("parley.http.port = " + httpPort).withFallback(CONFIG));
    // The job changed while nobody remembered who was told what.
    JsonNode job = leaseAll("restarted", 1).get(0);
    assertEquals(before, job.path("id").asText());

    JsonNode reset = poll(erin, cursor, "0");
    JsonNode firstFrame = reset.path("events").path(0);
    assertEquals("jobs_reset", firstFrame.path("type").asText(), reset.toString());
    assertEquals("jobs_restarted", firstFrame.path("code").asText());
    // The client reads its job again, and the cursor goes on from the new incarnation.
    assertEquals("active", get(erin, before).path("state").asText());
    cursor = reset.path("cursor").asText();

    report(before, "complete", job.path("leaseId").asText(), "\"result\":null");
    JsonNode next = poll(erin, cursor, "5s");
    List<String> types = new ArrayList<>();
    next.path("events").forEach(e -> types.add(e.path("type").asText()));
    assertFalse(types.contains("jobs_reset"), "reset once: " + next);
    assertEquals(version(erin, before), lastVersion(next, before), next.toString());
  }

  // ---------------------------------------------------------------------------------------

  /** Checks each job's pushes grow in version and none repeats; the answer's cursor. */
  private static String record(JsonNode answer, Map<String, Long> seen, Set<String> versionsSeen) {
    for (JsonNode frame : answer.path("events")) {
      if (!frame.path("type").asText().equals("job")) {
        continue;
      }
      String id = frame.path("job").path("id").asText();
      long version = frame.path("job").path("version").asLong();
      assertTrue(versionsSeen.add(id + "@" + version), "pushed twice: " + id + " version " + version);
      assertTrue(version > seen.getOrDefault(id, 0L), "in version order: " + answer);
      seen.put(id, version);
    }
    assertTrue(answer.path("cursor").asText().length() <= 1024);
    return answer.path("cursor").asText();
  }

  private static long lastVersion(JsonNode answer, String id) {
    long version = 0;
    for (JsonNode frame : answer.path("events")) {
      if (frame.path("job").path("id").asText().equals(id)) {
        version = frame.path("job").path("version").asLong();
      }
    }
    return version;
  }

  private static JsonNode poll(String token, String cursor, String timeout) throws Exception {
    String query = "?timeout=" + timeout + (cursor == null ? "" : "&cursor=" + URLEncoder.encode(cursor, StandardCharsets.UTF_8));
    HttpResponse<String> answer = node.rest("GET", "/v1/poll" + query, token, null, null);
    assertEquals(200, answer.statusCode(), answer.body());
    return JSON.readTree(answer.body());
  }

  private static java.util.function.Supplier<JsonNode> pollQuietly(String token, String cursor, String timeout) {
    return () -> {
      try {
        return poll(token, cursor, timeout);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    };
  }

  private static JsonNode submit(String token, String queue, String body) throws Exception {
    HttpResponse<String> answer = node.rest("POST", "/v1/queues/" + queue + "/jobs", token, body, null);
    assertEquals(202, answer.statusCode(), answer.body());
    return JSON.readTree(answer.body());
  }

  private static JsonNode get(String token, String id) throws Exception {
    HttpResponse<String> answer = node.rest("GET", "/v1/jobs/" + id, token, null, null);
    assertEquals(200, answer.statusCode(), answer.body());
    return JSON.readTree(answer.body());
  }

  private static long version(String token, String id) throws Exception {
    return get(token, id).path("version").asLong();
  }

  /** Leases {@code count} jobs of {@code queue}, fetching (held) until that many came. */
  private static List<JsonNode> leaseAll(String queue, int count) throws Exception {
    List<JsonNode> jobs = new ArrayList<>();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (jobs.size() < count && System.nanoTime() < deadline) {
      HttpResponse<String> answer = node.rest("POST", "/v1/queues/" + queue + "/lease?max=" + (count - jobs.size()) + "&wait=5000", WORKER_KEY, null, null);
      assertEquals(200, answer.statusCode(), answer.body());
      JSON.readTree(answer.body()).path("jobs").forEach(jobs::add);
    }
    assertEquals(count, jobs.size(), "leased");
    return jobs;
  }

  private static void report(String id, String what, String leaseId, String fields) {
    HttpResponse<String> answer = node.rest("POST", "/v1/jobs/" + id + "/" + what, WORKER_KEY, "{\"leaseId\":\"" + leaseId + "\"," + fields + "}", null);
    assertEquals(200, answer.statusCode(), answer.body());
  }
}
