package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Scenario: jobs across a SIGKILL. Backends submit jobs to every node while workers on the
 * other nodes hold leases of jobs whose partitions live on the victim; the victim is killed
 * with -9. Its queue partitions start on the survivors from the journal: every acknowledged
 * submission is there afterwards, each job ends completed with exactly one successful
 * completion (a report on a lease that ran out during the failover is {@code lease_lost}, and
 * that job ran again), and the queue answers on every partition again within seconds.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class JobFailoverIT {

  private static final String QUEUE = "default";
  private static final int PARTITIONS = 4;
  private static final long LEASE_MS = 4_000;
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  /** Acknowledged submissions: job id → its Idempotency-Key. */
  private final Map<String, String> acknowledged = new ConcurrentHashMap<>();
  /** Successful completions per job, as the workers were answered. */
  private final Map<String, AtomicInteger> completions = new ConcurrentHashMap<>();
  /** Jobs a worker holds a lease on right now. */
  private final Set<String> leasedNow = ConcurrentHashMap.newKeySet();
  private final AtomicInteger lostReports = new AtomicInteger();
  private final AtomicLong firstVictimAckAfterKill = new AtomicLong();
  private volatile long killedAt;
  private volatile Set<Integer> victimPartitions = Set.of();
  private final AtomicBoolean submitting = new AtomicBoolean(true);
  private final AtomicBoolean working = new AtomicBoolean(true);

  @Test
  void acknowledgedJobsSurviveASigkillAndEveryJobCompletesOnce() throws Exception {
    TestCluster cluster = TestCluster.shared();
    cluster.ensureHealthy(3);
    ClusterNode first = cluster.running().get(0);
    // Counting asks every partition, so each has a home before the victim is chosen.
    awaitCounts(first, Duration.ofSeconds(60));
    Map<String, Set<Integer>> partitionsByNode = new ConcurrentHashMap<>();
    for (int p = 0; p < PARTITIONS; p++) {
      String host = TestCluster.hostOf(first, "jobs", QUEUE + ":" + p).orElseThrow(() -> new AssertionError("a partition has no home"));
      partitionsByNode.computeIfAbsent(host, h -> new HashSet<>()).add(p);
    }
    String victimAddress =
        partitionsByNode.entrySet().stream().max(Map.Entry.comparingByValue((a, b) -> a.size() - b.size())).orElseThrow().getKey();
    ClusterNode victim = cluster.byAddress(victimAddress);
    victimPartitions = Set.copyOf(partitionsByNode.get(victimAddress));
    List<ClusterNode> survivors = cluster.running().stream().filter(n -> n != victim).toList();

    List<Thread> threads = new ArrayList<>();
    for (int s = 0; s < 2; s++) {
      int submitter = s;
      threads.add(started("submitter-" + s, () -> submit(cluster, submitter)));
    }
    for (int w = 0; w < 4; w++) {
      ClusterNode node = survivors.get(w % survivors.size());
      String worker = "w" + w;
      threads.add(started("worker-" + w, () -> work(node, worker)));
    }

    // Kill under load, while a worker holds a lease of a job on the victim's partitions.
    awaitCondition("30 submissions acknowledged", Duration.ofSeconds(60), () -> acknowledged.size() >= 30);
    awaitCondition("a worker leases a job of the victim's partitions", Duration.ofSeconds(60),
        () -> leasedNow.stream().anyMatch(id -> victimPartitions.contains(partitionOf(id))));
    int before = acknowledged.size();
    killedAt = System.nanoTime();
    victim.signal("KILL");
    victim.awaitExit(Duration.ofSeconds(10));

    Duration serving = awaitCounts(survivors.get(0), Duration.ofSeconds(90));
    Measured.print("jobs-failover", "every partition answers again after SIGKILL in", serving);
    awaitCondition("a submission into a moved partition is acknowledged", Duration.ofSeconds(60),
        () -> firstVictimAckAfterKill.get() != 0);
    Duration submitted = Duration.ofNanos(firstVictimAckAfterKill.get() - killedAt);
    Measured.print("jobs-failover", "first submission sent after SIGKILL into a moved partition acknowledged after", submitted);
    assertTrue(serving.compareTo(Duration.ofSeconds(30)) < 0, "the queue serves again within 30 s: " + serving);

    int atRecovery = acknowledged.size();
    awaitCondition("submissions go on after the failover", Duration.ofSeconds(30), () -> acknowledged.size() >= atRecovery + 40);
    submitting.set(false);
    for (Thread t : threads.subList(0, 2)) {
      t.join(Duration.ofSeconds(30).toMillis());
    }

    // Every acknowledged job completes; then the workers stop.
    ClusterNode reader = survivors.get(0);
    awaitCondition("every acknowledged job is completed", Duration.ofSeconds(120),
        () -> completions.keySet().containsAll(acknowledged.keySet()) && queueIsDrained(reader));
    working.set(false);
    for (Thread t : threads.subList(2, threads.size())) {
      t.join(Duration.ofSeconds(30).toMillis());
    }

    int ranAgain = 0;
    for (String id : acknowledged.keySet()) {
      HttpResponse<String> status = send(reader, "GET", "/v1/jobs/" + id, TestCluster.SERVER_KEY, null, null);
      assertEquals(200, status.statusCode(), "acknowledged job " + id + " is there: " + status.body());
      JsonNode job = JSON.readTree(status.body());
      assertEquals("completed", job.path("state").asText(), "job " + id + ": " + job);
      assertEquals(1, completions.get(id).get(), "job " + id + " was completed successfully exactly once");
      if (job.path("attemptsMade").asInt() > 1) {
        ranAgain++;
      }
    }
    assertFalse(acknowledged.isEmpty());
    Measured.print("jobs-failover", "jobs acknowledged before the kill", before);
    Measured.print("jobs-failover", "jobs acknowledged (every one completed once)", acknowledged.size());
    Measured.print("jobs-failover", "reports refused lease_lost (the lease ran out in the failover)", lostReports.get());
    Measured.print("jobs-failover", "jobs run more than once (a lease ran out: its answer or its report was lost in the failover)", ranAgain);
    cluster.ensureHealthy(3);
  }

  /** Submits no-op jobs to any running node; a refusal or a dead node is retried with the same key. */
  private void submit(TestCluster cluster, int submitter) {
    for (int n = 0; submitting.get(); n++) {
      String key = "failover-" + submitter + "-" + n;
      boolean done = false;
      while (!done && submitting.get()) {
        List<ClusterNode> nodes = cluster.running();
        ClusterNode node = nodes.get(ThreadLocalRandom.current().nextInt(nodes.size()));
        boolean sentAfterKill = killedAt != 0;
        try {
          HttpResponse<String> answer =
              send(node, "POST", "/v1/queues/" + QUEUE + "/jobs", TestCluster.SERVER_KEY, key, "{\"data\":{\"n\":" + n + "},\"attempts\":10}");
          if (answer.statusCode() == 202 || answer.statusCode() == 200) {
            String id = JSON.readTree(answer.body()).path("id").asText();
            acknowledged.put(id, key);
            if (sentAfterKill && victimPartitions.contains(partitionOf(id))) {
              firstVictimAckAfterKill.compareAndSet(0, System.nanoTime());
            }
            done = true;
          } else if (answer.statusCode() != 503) {
            throw new AssertionError("submission answered " + answer.statusCode() + ": " + answer.body());
          }
        } catch (IOException e) {
          // The node died or is busy failing over: the same key goes to another node.
        } catch (InterruptedException e) {
          return;
        }
        pause(done ? 50 : 200);
      }
    }
  }

  /** Leases jobs from {@code node}, works 200 ms on each, completes it (retrying until answered). */
  private void work(ClusterNode node, String worker) {
    while (working.get()) {
      try {
        HttpResponse<String> answer =
            send(node, "POST", "/v1/queues/" + QUEUE + "/lease?max=2&wait=1000&lease=" + LEASE_MS + "&worker=" + worker,
                TestCluster.WORKER_KEY, null, null);
        if (answer.statusCode() != 200) {
          pause(200);
          continue;
        }
        for (JsonNode job : JSON.readTree(answer.body()).path("jobs")) {
          String id = job.path("id").asText();
          leasedNow.add(id);
          pause(200);
          complete(node, id, job.path("leaseId").asText(), job.path("leaseUntil").asLong(), job.path("attemptsMade").asInt());
          leasedNow.remove(id);
        }
      } catch (IOException e) {
        pause(200);
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private void complete(ClusterNode node, String id, String leaseId, long leaseUntil, int attemptsBefore) throws InterruptedException {
    // Past the lease's deadline plus the longest failover the test allows, nobody can answer ok.
    long giveUp = leaseUntil + 60_000;
    // An earlier try answered unavailable or not at all: it may have completed the job anyway
    // (its message reached the partition once it had moved), and the retry is then lease_lost.
    boolean maybeDone = false;
    while (System.currentTimeMillis() < giveUp) {
      try {
        HttpResponse<String> answer =
            send(node, "POST", "/v1/jobs/" + id + "/complete", TestCluster.WORKER_KEY, null, "{\"leaseId\":\"" + leaseId + "\",\"result\":{}}");
        if (answer.statusCode() == 200) {
          completions.computeIfAbsent(id, i -> new AtomicInteger()).incrementAndGet();
          return;
        }
        String code = JSON.readTree(answer.body()).path("code").asText();
        if (code.equals("lease_lost")) {
          if (maybeDone && completedByThisAttempt(node, id, attemptsBefore)) {
            completions.computeIfAbsent(id, i -> new AtomicInteger()).incrementAndGet();
          } else {
            lostReports.incrementAndGet();
          }
          return;
        }
        if (answer.statusCode() != 503) {
          throw new AssertionError("completion answered " + answer.statusCode() + ": " + answer.body());
        }
        maybeDone = true;
      } catch (IOException e) {
        // Retried below: the partition is moving.
        maybeDone = true;
      }
      pause(200);
    }
    throw new AssertionError("job " + id + ": completion never answered");
  }

  /**
   * Whether the job was completed by the attempt that began with {@code attemptsBefore} attempts
   * made: completed with one attempt more. Had that attempt's lease run out instead, it would
   * count as an attempt too, and a later completion would make at least two more.
   */
  private static boolean completedByThisAttempt(ClusterNode node, String id, int attemptsBefore) throws InterruptedException {
    long giveUp = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (System.nanoTime() < giveUp) {
      try {
        HttpResponse<String> status = send(node, "GET", "/v1/jobs/" + id, TestCluster.SERVER_KEY, null, null);
        if (status.statusCode() == 200) {
          JsonNode job = JSON.readTree(status.body());
          return "completed".equals(job.path("state").asText()) && job.path("attemptsMade").asInt() == attemptsBefore + 1;
        }
      } catch (IOException e) {
        // asked again below
      }
      pause(200);
    }
    throw new AssertionError("job " + id + " could not be read");
  }

  private boolean queueIsDrained(ClusterNode node) {
    try {
      HttpResponse<String> answer = send(node, "GET", "/v1/queues/" + QUEUE, TestCluster.WORKER_KEY, null, null);
      JsonNode counts = JSON.readTree(answer.body());
      return answer.statusCode() == 200
          && counts.path("waiting").asInt() + counts.path("active").asInt() + counts.path("delayed").asInt() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** Waits until the queue's counts answer, which needs every partition to answer. */
  private static Duration awaitCounts(ClusterNode node, Duration timeout) throws InterruptedException {
    long start = System.nanoTime();
    long deadline = start + timeout.toNanos();
    String last = "";
    while (System.nanoTime() < deadline) {
      try {
        HttpResponse<String> answer = send(node, "GET", "/v1/queues/" + QUEUE, TestCluster.WORKER_KEY, null, null);
        if (answer.statusCode() == 200) {
          return Duration.ofNanos(System.nanoTime() - start);
        }
        last = answer.statusCode() + " " + answer.body();
      } catch (IOException e) {
        last = e.toString();
      }
      Thread.sleep(100);
    }
    throw new AssertionError("the queue's partitions did not all answer within " + timeout + ": " + last);
  }

  private static HttpResponse<String> send(ClusterNode node, String method, String path, String key, String idempotencyKey, String body)
      throws IOException, InterruptedException {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(node.http() + path))
        .timeout(Duration.ofSeconds(10))
        .header("Authorization", "Bearer " + key)
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      request.header("Content-Type", "application/json");
    }
    if (idempotencyKey != null) {
      request.header("Idempotency-Key", idempotencyKey);
    }
    return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static Thread started(String name, Runnable body) {
    Thread thread = new Thread(body, name);
    thread.setDaemon(true);
    thread.start();
    return thread;
  }

  private static int partitionOf(String jobId) {
    return Integer.parseInt(jobId.split(":")[1]);
  }

  private static void awaitCondition(String what, Duration timeout, java.util.function.BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not within " + timeout + ": " + what);
      }
      Thread.sleep(100);
    }
  }

  /** Paces the load and the retries; no race hides behind it (every outcome is awaited above). */
  private static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
