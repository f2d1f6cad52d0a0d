package parley.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * What operators see of the job queues on the management port, driven through the client API
 * against the real Cassandra: the per-queue gauges, counters and pickup histogram on
 * {@code /metrics}, the cluster-wide counts on {@code /queues}, and the queue partitions in
 * {@code /shard-distribution}.
 */
@ExtendWith(LogCapturingExtension.class)
class JobMetricsIT {

  private static final String WORKER_KEY = "metrics-worker-key";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final Duration PATIENCE = Duration.ofSeconds(20);
  private static InJvmNode node;

  @BeforeAll
  static void start() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("JobMetricsIT"), 0, 0, ConfigFactory.parseString("""
        parley.jobs.worker-key = "%s"
        parley.jobs.queues {
          metered { partitions = 2 }
          expiring { partitions = 1 }
        }
        """.formatted(WORKER_KEY)));
  }

  @AfterAll
  static void stop() throws Exception {
    node.close();
  }

  @Test
  void queueCountsTransitionsAndPickupLatencyShowOnMetricsAndQueues() throws Exception {
    for (int i = 0; i < 3; i++) {
      submit("metered", "{\"data\":" + i + ",\"attempts\":1}");
    }
    submit("metered", "{\"data\":\"later\",\"delay\":600000}");
    awaitMetric("parley_jobs{queue=\"metered\",state=\"waiting\"}", 3);
    awaitMetric("parley_jobs{queue=\"metered\",state=\"delayed\"}", 1);
    assertEquals(4, metric("parley_jobs_submitted_total{queue=\"metered\"}"));
    assertEquals(2, metric("parley_job_partitions{queue=\"metered\"}"), "both partitions run on this node");

    List<JsonNode> leased = new ArrayList<>();
    while (leased.size() < 3) {
      leased.addAll(lease("metered", "max=3&wait=5000"));
    }
    awaitMetric("parley_jobs{queue=\"metered\",state=\"active\"}", 3);
    assertEquals(0, metric("parley_jobs{queue=\"metered\",state=\"waiting\"}"));
    assertEquals(3, metric("parley_jobs_leased_total{queue=\"metered\"}"));
    assertEquals(3, metric("parley_jobs_pickup_seconds_count{queue=\"metered\"}"), "one pickup per lease");
    assertEquals(3, metric("parley_jobs_pickup_seconds_bucket{queue=\"metered\",le=\"300.0\"}"));
    double pickedUpWithin = metric("parley_jobs_pickup_seconds_sum{queue=\"metered\"}");
    assertTrue(pickedUpWithin > 0 && pickedUpWithin < 60, "submit to lease took seconds at most: " + pickedUpWithin);

    report(leased.get(0), "complete", "\"result\":{\"ok\":true}");
    report(leased.get(1), "complete", "\"result\":null");
    report(leased.get(2), "fail", "\"error\":\"no disk\"");
    awaitMetric("parley_jobs{queue=\"metered\",state=\"active\"}", 0);
    assertEquals(2, metric("parley_jobs_completed_total{queue=\"metered\"}"));
    assertEquals(1, metric("parley_jobs_failed_total{queue=\"metered\"}"), "its only attempt failed: failed for good");
    assertEquals(0, metric("parley_jobs_retried_total{queue=\"metered\"}"));

    JsonNode metered = get(node.management().resolve("/queues")).path("queues").path("metered");
    assertEquals(2, metered.path("partitions").asInt(), metered.toString());
    assertEquals(0, metered.path("waiting").asInt(), metered.toString());
    assertEquals(1, metered.path("delayed").asInt(), metered.toString());
    assertEquals(0, metered.path("active").asInt(), metered.toString());
    assertEquals(2, metered.path("completed").asInt(), metered.toString());
    assertEquals(1, metered.path("failed").asInt(), metered.toString());
    assertEquals(2, metered.path("byPartition").size(), metered.toString());
    assertEquals(0, metered.path("unanswered").size(), metered.toString());
    int delayedInPartitions = 0;
    for (JsonNode partition : metered.path("byPartition")) {
      delayedInPartitions += partition.path("delayed").asInt();
    }
    assertEquals(1, delayedInPartitions, "the partitions' counts add up to the queue's");

    JsonNode jobs = get(node.management().resolve("/shard-distribution")).path("types").path("jobs");
    assertTrue(jobs.path("entities").asInt() >= 3, "the queue partitions are listed: " + jobs);
  }

  @Test
  void aLeaseThatRunsOutIsCountedAsAnExpiryAndARetry() throws Exception {
    String id = submit("expiring", "{\"data\":\"slow\",\"attempts\":2}");
    List<JsonNode> leased = lease("expiring", "max=1&wait=5000&lease=1000");
    assertEquals(id, leased.get(0).path("id").asText());
    // Nobody reports: the partition's timer ends the lease and the job waits again.
    awaitMetric("parley_jobs_lease_expiries_total{queue=\"expiring\",reason=\"lease_expired\"}", 1);
    assertEquals(1, metric("parley_jobs_retried_total{queue=\"expiring\"}"));
    assertEquals(0, metric("parley_jobs_lease_expiries_total{queue=\"expiring\",reason=\"timeout\"}"));
    awaitMetric("parley_jobs{queue=\"expiring\",state=\"waiting\"}", 1);
    assertEquals(1, get(node.management().resolve("/queues")).path("queues").path("expiring").path("waiting").asInt());
  }

  private static String submit(String queue, String body) throws Exception {
    HttpResponse<String> response = call("POST", "/v1/queues/" + queue + "/jobs", InJvmNode.SERVER_KEY, body);
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

  private static void report(JsonNode job, String outcome, String field) throws Exception {
    String body = "{\"leaseId\":\"" + job.path("leaseId").asText() + "\"," + field + "}";
    HttpResponse<String> response = call("POST", "/v1/jobs/" + job.path("id").asText() + "/" + outcome, WORKER_KEY, body);
    assertEquals(200, response.statusCode(), response.body());
  }

  private static HttpResponse<String> call(String method, String path, String token, String body) throws Exception {
    HttpRequest request = HttpRequest.newBuilder(node.http().resolve(path))
        .header("Authorization", "Bearer " + token)
        .header("Content-Type", "application/json")
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
        .build();
    return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode get(URI uri) throws Exception {
    HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, response.statusCode(), response.body());
    return JSON.readTree(response.body());
  }

  /** A sample of the node's Prometheus text by its exact name and labels; NaN if absent. */
  private static double metric(String sample) throws Exception {
    HttpResponse<String> response = HTTP.send(
        HttpRequest.newBuilder(node.management().resolve("/metrics")).build(), HttpResponse.BodyHandlers.ofString());
    for (String line : response.body().split("\n")) {
      if (line.startsWith(sample + " ")) {
        return Double.parseDouble(line.substring(sample.length() + 1).strip());
      }
    }
    return Double.NaN;
  }

  /**
   * Waits for a sample to read {@code expected}: a partition shows its new state to the
   * metrics just after it answers the request that changed it.
   */
  private static void awaitMetric(String sample, double expected) throws Exception {
    long deadline = System.nanoTime() + PATIENCE.toNanos();
    double value = metric(sample);
    while (value != expected && System.nanoTime() < deadline) {
      Thread.sleep(20);
      value = metric(sample);
    }
    assertEquals(expected, value, sample);
  }
}
