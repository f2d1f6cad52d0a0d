package parley.jobs.export;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.client.ParleyClient;
import parley.client.ParleyException;
import parley.protocol.Codec;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * The export of a room's history end to end, over a real WebSocket and real HTTP against the
 * real Cassandra: asked for by a member, run by the node's own export worker through the job
 * queue, followed by {@code job} pushes, and streamed back from the exports table.
 */
@ExtendWith(LogCapturingExtension.class)
class ExportIT {

  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static InJvmNode node;

  @BeforeAll
  static void start() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("ExportIT"), 0, 0, ConfigFactory.parseString("""
        parley.chat.rate-per-second = 100000
        parley.chat.rate-burst = 100000
        parley.chat.user-rate-per-second = 100000
        parley.chat.user-rate-burst = 100000
        # Small pages and chunks, and every progress reported: a few thousand messages make
        # many of each.
        parley.jobs.export { page-size = 200, chunk-size = 8 KiB, progress-interval = 0s }
        """));
  }

  @AfterAll
  static void stop() throws Exception {
    node.close();
  }

  @Test
  void aMembersExportHoldsEveryEventOnceInSeqOrderAndTheyFollowItsProgressInOrder() throws Exception {
    String aliceToken = node.token("alice");
    try (ParleyClient alice = ParleyClient.connect(node.ws(), aliceToken).get(20, TimeUnit.SECONDS)) {
      alice.createRoom("history", "public", "exported").get(20, TimeUnit.SECONDS);
      Set<String> sent = post(alice, "history", 3000);

      // Paused, the queue leases nothing: the export waits, and its result is not there yet.
      pause(true);
      JsonNode started = alice.request("export_room", Map.of("room", "history")).get(20, TimeUnit.SECONDS);
      String jobId = started.path("jobId").asText();
      assertEquals("history", started.path("room").asText());
      assertEquals("waiting", started.path("job").path("state").asText());
      assertEquals(jobId, alice.request("export_room", Map.of("room", "history")).get(20, TimeUnit.SECONDS).path("jobId").asText(),
          "asking again while the export waits answers the same job");
      assertError(409, "job_not_completed", get("/v1/jobs/" + jobId + "/result", aliceToken));
      pause(false);

      JsonNode completed = alice.awaitPush(p -> isJob(p, jobId) && p.path("job").path("state").asText().equals("completed"), WAIT);
      List<JsonNode> pushes = alice.pushes().stream().filter(p -> isJob(p, jobId)).map(p -> p.path("job")).toList();
      long version = 0;
      long lines = 0;
      int progressed = 0;
      for (JsonNode job : pushes) {
        assertTrue(job.path("version").asLong() > version, "job pushes come in version order: " + pushes);
        version = job.path("version").asLong();
        if (job.path("progress").has("lines")) {
          assertTrue(job.path("progress").path("lines").asLong() >= lines, "progress never goes back");
          lines = job.path("progress").path("lines").asLong();
          progressed++;
        }
      }
      assertTrue(progressed >= 5, "progress is reported as the export goes: " + progressed + " reports");
      JsonNode result = completed.path("job").path("result");
      long lastSeq = result.path("lastSeq").asLong();
      assertEquals(3001, lastSeq, "the room's creation and 3000 messages");
      assertEquals(lastSeq, result.path("lines").asLong());
      assertTrue(result.path("chunks").asInt() > 10, "written in chunks: " + result);

      HttpResponse<InputStream> download = HTTP.send(
          HttpRequest.newBuilder(node.http().resolve("/v1/jobs/" + jobId + "/result")).header("Authorization", "Bearer " + aliceToken).build(),
          HttpResponse.BodyHandlers.ofInputStream());
      assertEquals(200, download.statusCode());
      assertEquals("application/x-ndjson", download.headers().firstValue("Content-Type").orElse("").split(";")[0].trim());
      Set<String> exported = new HashSet<>();
      long seq = 0;
      long bytes = 0;
      try (BufferedReader reader = new BufferedReader(new InputStreamReader(download.body(), StandardCharsets.UTF_8))) {
        for (String line = reader.readLine(); line != null; line = reader.readLine()) {
          bytes += line.getBytes(StandardCharsets.UTF_8).length + 1;
          JsonNode event = Codec.JSON.readTree(line);
          assertEquals(++seq, event.path("seq").asLong(), "every event once, in seq order");
          assertEquals("history", event.path("room").asText());
          if (event.path("kind").asText().equals("message")) {
            assertTrue(exported.add(event.path("body").asText()), "a message exported twice: " + line);
          }
        }
      }
      assertEquals(lastSeq, seq);
      assertEquals(sent, exported, "every message sent is in the export");
      assertEquals(result.path("bytes").asLong(), bytes);

      assertEquals(200, get("/v1/jobs/" + jobId + "/result", InJvmNode.SERVER_KEY).statusCode(), "a backend may read it");
    }
  }

  @Test
  void onlyMembersMayExportAndOnlyTheRequesterMayReadIt() throws Exception {
    String carol = node.token("carol");
    String dave = node.token("dave");
    try (ParleyClient carolSocket = ParleyClient.connect(node.ws(), carol).get(20, TimeUnit.SECONDS);
        ParleyClient daveSocket = ParleyClient.connect(node.ws(), dave).get(20, TimeUnit.SECONDS)) {
      carolSocket.createRoom("carols", "public", null).get(20, TimeUnit.SECONDS);
      carolSocket.createRoom("secret", "private", null).get(20, TimeUnit.SECONDS);
      post(carolSocket, "carols", 20);

      assertEquals("not_a_member", refusal(daveSocket.request("export_room", Map.of("room", "carols"))));
      // A private room a stranger cannot see answers as one that does not exist (protocol.md, Privacy).
      assertEquals("room_not_found", refusal(daveSocket.request("export_room", Map.of("room", "secret"))));
      assertEquals("room_not_found", refusal(daveSocket.request("export_room", Map.of("room", "nowhere"))));
      assertEquals("bad_room_id", refusal(daveSocket.request("export_room", Map.of("room", "no spaces"))));
      assertError(403, "not_a_member", node.rest("POST", "/v1/rooms/carols/export", dave, null, null));
      assertError(404, "room_not_found", node.rest("POST", "/v1/rooms/nowhere/export", dave, null, null));
      assertError(403, "forbidden", node.rest("POST", "/v1/queues/parley.export/jobs", carol, "{\"data\":{\"room\":\"secret\"}}", null));

      HttpResponse<String> accepted = node.rest("POST", "/v1/rooms/carols/export", carol, null, null);
      assertEquals(202, accepted.statusCode(), accepted.body());
      String jobId = Codec.JSON.readTree(accepted.body()).path("jobId").asText();
      assertEquals("/v1/jobs/" + jobId, accepted.headers().firstValue("Location").orElse(""));
      carolSocket.awaitPush(p -> isJob(p, jobId) && p.path("job").path("state").asText().equals("completed"), WAIT);

      assertError(404, "job_not_found", get("/v1/jobs/" + jobId + "/result", dave));
      assertError(404, "job_not_found", get("/v1/jobs/parley.export:0:00000000000000000000000000000000/result", carol));
      assertError(404, "job_not_found", get("/v1/jobs/not-a-job/result", carol));
      assertError(401, "token_missing", HTTP.send(HttpRequest.newBuilder(node.http().resolve("/v1/jobs/" + jobId + "/result")).build(), HttpResponse.BodyHandlers.ofString()));
      HttpResponse<String> download = get("/v1/jobs/" + jobId + "/result", carol);
      assertEquals(200, download.statusCode());
      assertEquals(21, download.body().lines().count());
    }
  }

  /**
   * A large room exported while the node's heap is watched, on a node of its own with the
   * export's default settings: run by hand with {@code -Dparley.export.bench.messages=100000}
   * (and, to show the bound, {@code -DargLine=-Xmx512m}); prints the time and the heap.
   */
  @Test
  void aLargeRoomExportsInBoundedMemory() throws Exception {
    int messages = Integer.getInteger("parley.export.bench.messages", 0);
    assumeTrue(messages > 0, "a measurement: run with -Dparley.export.bench.messages=100000");
    try (InJvmNode defaults = InJvmNode.start(TestCassandra.keyspacesFor("ExportITLarge"), 0, 0, ConfigFactory.parseString("""
        parley.chat.rate-per-second = 100000
        parley.chat.rate-burst = 100000
        parley.chat.user-rate-per-second = 100000
        parley.chat.user-rate-burst = 100000
        """))) {
      measureLargeExport(defaults, messages);
    }
  }

  private static void measureLargeExport(InJvmNode node, int messages) throws Exception {
    String token = node.token("erin");
    try (ParleyClient erin = ParleyClient.connect(node.ws(), token).get(20, TimeUnit.SECONDS)) {
      erin.createRoom("large", "public", null).get(20, TimeUnit.SECONDS);
      long postStart = System.nanoTime();
      post(erin, "large", messages);
      System.out.printf("export bench: posted %d messages in %.1f s%n", messages, (System.nanoTime() - postStart) / 1e9);
      System.gc();
      long before = liveHeapAfterGc();
      long peakUsed = 0;
      long start = System.nanoTime();
      JsonNode started = erin.request("export_room", Map.of("room", "large")).get(20, TimeUnit.SECONDS);
      String jobId = started.path("jobId").asText();
      JsonNode done = null;
      long peakLive = before;
      while (done == null && System.nanoTime() - start < TimeUnit.MINUTES.toNanos(20)) {
        peakUsed = Math.max(peakUsed, usedHeap());
        peakLive = Math.max(peakLive, liveHeapAfterGc());
        try {
          JsonNode push = erin.awaitPush(p -> isJob(p, jobId), Duration.ofMillis(500));
          String state = push.path("job").path("state").asText();
          assertTrue(!state.equals("failed") && !state.equals("cancelled"), push.toString());
          done = state.equals("completed") ? push : null;
        } catch (ParleyException quiet) {
          // No change within the half second: sample the heap again.
        }
      }
      double exportSeconds = (System.nanoTime() - start) / 1e9;
      assertTrue(done != null, "the export completed");
      long downloadStart = System.nanoTime();
      HttpResponse<InputStream> download = HTTP.send(
          HttpRequest.newBuilder(node.http().resolve("/v1/jobs/" + jobId + "/result")).header("Authorization", "Bearer " + token).build(),
          HttpResponse.BodyHandlers.ofInputStream());
      long lines = 0;
      try (BufferedReader reader = new BufferedReader(new InputStreamReader(download.body(), StandardCharsets.UTF_8))) {
        while (reader.readLine() != null) {
          lines++;
          if (lines % 10_000 == 0) {
            peakUsed = Math.max(peakUsed, usedHeap());
          }
        }
      }
      double downloadSeconds = (System.nanoTime() - downloadStart) / 1e9;
      JsonNode result = done.path("job").path("result");
      System.out.printf(
          "export bench: %d events, %d bytes, %d chunks: export %.1f s (%.0f events/s), download %.1f s;"
              + " live heap after GC before %d MiB, peak during %d MiB; peak used heap %d MiB%n",
          result.path("lines").asLong(), result.path("bytes").asLong(), result.path("chunks").asInt(),
          exportSeconds, result.path("lines").asLong() / exportSeconds, downloadSeconds,
          before >> 20, peakLive >> 20, peakUsed >> 20);
      assertEquals(messages + 1, lines);
    }
  }

  // ---------------------------------------------------------------------------------------

  /** Posts {@code count} messages, 200 in flight at a time; the bodies sent. */
  private static Set<String> post(ParleyClient client, String room, int count) throws Exception {
    Set<String> bodies = new HashSet<>();
    List<CompletableFuture<?>> window = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      String body = room + " message " + i + " ✓";
      bodies.add(body);
      window.add(client.send(room, room + "-" + i, body));
      if (window.size() == 200 || i == count - 1) {
        CompletableFuture.allOf(window.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
        window.clear();
      }
    }
    return bodies;
  }

  private static void pause(boolean paused) throws Exception {
    HttpResponse<String> answer = node.rest("POST", "/v1/queues/parley.export/" + (paused ? "pause" : "resume"), InJvmNode.SERVER_KEY, null, null);
    assertEquals(200, answer.statusCode(), answer.body());
  }

  private static boolean isJob(JsonNode push, String jobId) {
    return push.path("type").asText().equals("job") && push.path("job").path("id").asText().equals(jobId);
  }

  private static HttpResponse<String> get(String path, String token) throws Exception {
    return HTTP.send(HttpRequest.newBuilder(node.http().resolve(path)).header("Authorization", "Bearer " + token).build(), HttpResponse.BodyHandlers.ofString());
  }

  private static String refusal(CompletableFuture<JsonNode> request) {
    try {
      return "no refusal: " + request.get(20, TimeUnit.SECONDS);
    } catch (Exception e) {
      Throwable cause = e.getCause() instanceof CompletionException c && c.getCause() != null ? c.getCause() : e.getCause();
      return cause instanceof ParleyException p ? p.code() : String.valueOf(cause);
    }
  }

  private static void assertError(int status, String code, HttpResponse<String> response) throws Exception {
    assertEquals(status, response.statusCode(), response.body());
    assertEquals(code, Codec.JSON.readTree(response.body()).path("code").asText(), response.body());
  }

  private static long usedHeap() {
    return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
  }

  /** The heap that survived the last collection of each pool: what is live, not garbage waiting. */
  private static long liveHeapAfterGc() {
    long live = 0;
    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      if (pool.getType() == MemoryType.HEAP && pool.getCollectionUsage() != null) {
        live += pool.getCollectionUsage().getUsed();
      }
    }
    return live;
  }
}
