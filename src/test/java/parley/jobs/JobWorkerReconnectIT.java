package parley.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.client.JobWorker;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * The Java worker against a real node that stops and starts again (docs/jobs.md, "The Java
 * worker"): it connects again by itself, the job it was running when the node went keeps its
 * lease and is completed over the new connection, and fetching resumes.
 */
@ExtendWith(LogCapturingExtension.class)
class JobWorkerReconnectIT {

  private static final String WORKER_KEY = "test-worker-key-reconnect";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Config KEYSPACES = TestCassandra.keyspacesFor("JobWorkerReconnectIT");
  private static InJvmNode node;

  @AfterAll
  static void stop() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  /** The restarted node keeps its ports (the WebSocket port's too, when the suite runs on it). */
  private static Config config(int httpPort) {
    return ConfigFactory.parseString("""
        parley.http.port = %d
        parley.http.websocket-port = %d
        parley.jobs.worker-key = "%s"
        parley.jobs.queues { reconnect { partitions = 1 } }
        """.formatted(httpPort, InJvmNode.NETTY_WEBSOCKETS ? WEBSOCKET_PORT : 0, WORKER_KEY));
  }

  private static final int WEBSOCKET_PORT = parley.testing.NodeProcess.freePort();

  @Test
  void aWorkerOutlivesItsNodesRestartFinishesWhatItRanAndFetchesAgain() throws Exception {
    int httpPort = parley.testing.NodeProcess.freePort();
    node = InJvmNode.start(KEYSPACES, 0, 0, config(httpPort));
    String frank = node.token("frank");
    CountDownLatch running = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    JobWorker worker = JobWorker.connect(node.ws(), WORKER_KEY,
        JobWorker.Options.of("reconnect", 2).withLease(Duration.ofSeconds(90)).withFetchWait(Duration.ofSeconds(5)), job -> {
          if (job.data().path("hold").asBoolean()) {
            running.countDown();
            assertTrue(release.await(120, TimeUnit.SECONDS));
          }
          return JSON.createObjectNode().put("n", job.data().path("n").asInt());
        }).get(30, TimeUnit.SECONDS);
    try {
      String held = submit(frank, "{\"data\":{\"hold\":true,\"n\":1}}");
      assertTrue(running.await(30, TimeUnit.SECONDS), "the worker started the job");

      // The node goes away while the handler runs, and comes back on the same address.
      long restartAt = System.nanoTime();
      node.close();
      node = InJvmNode.start(KEYSPACES, 0, 0, config(httpPort));
      frank = node.token("frank");
      awaitTrue(() -> worker.reconnects() >= 1, "the worker connected again");
      System.out.printf("JobWorkerReconnectIT: node down and up again, worker reconnected, in %d ms%n",
          TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - restartAt));

      // Its lease held across the restart: the outcome goes over the new connection.
      release.countDown();
      String token = frank;
      awaitTrue(() -> "completed".equals(job(token, held).path("state").asText()), "the held job completed");
      assertEquals(1, job(frank, held).path("result").path("n").asInt());

      // And it fetches again.
      String after = submit(frank, "{\"data\":{\"n\":2}}");
      awaitTrue(() -> "completed".equals(job(token, after).path("state").asText()), "a job submitted after the restart completed");
      awaitTrue(() -> worker.completed() == 2, "both completions acknowledged");
      assertEquals(0, worker.lost());
      assertTrue(worker.failure().isEmpty(), worker.failure().toString());
    } finally {
      release.countDown();
      worker.stop().get(60, TimeUnit.SECONDS);
    }
  }

  private static String submit(String token, String body) throws Exception {
    HttpResponse<String> answer = node.rest("POST", "/v1/queues/reconnect/jobs", token, body, null);
    assertEquals(202, answer.statusCode(), answer.body());
    return JSON.readTree(answer.body()).path("id").asText();
  }

  private static JsonNode job(String token, String id) {
    try {
      return JSON.readTree(node.rest("GET", "/v1/jobs/" + id, token, null, null).body());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not within 90 s: " + what);
      }
      Thread.sleep(50);
    }
  }
}
