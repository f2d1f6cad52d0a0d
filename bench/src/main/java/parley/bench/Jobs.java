package parley.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Recorder;

/**
 * Jobs end to end: no-op jobs submitted over REST and completed by {@code --workers} workers
 * that each hold up to {@code --concurrency} jobs, fetching with the long-poll lease API
 * ({@code POST /v1/queues/{queue}/lease?max=<free slots>&wait=}) and completing each job as
 * soon as it arrives. The same load runs against BullMQ from {@code bench/peers/bullmq-jobs.js}
 * with the same steps and columns, so {@code bench compare} sets them side by side.
 *
 * <p>Steps ({@code --rates}): {@code 0} is {@code max}, a closed loop in which submitters keep
 * {@code --in-flight} submissions outstanding and stop while {@code --backlog} jobs are
 * submitted but not completed, so workers never run dry and the queue stays bounded; any other
 * number is an open loop submitting that many jobs a second on a fixed schedule (still at most
 * {@code --in-flight} outstanding, as a backend's bounded connection pool would). Each step
 * warms up for {@code --warmup}, measures for {@code --duration}, then stops submitting and
 * waits for every submitted job to complete (a step starts on an empty queue).
 *
 * <p>Pickup latency is from the submitter's call to the lease answer reaching the worker
 * (both in this process, on one monotonic clock), for the jobs leased in the window, in an
 * HdrHistogram. Jobs are submitted with the server key (a backend), so no per-user rate limit
 * applies.
 */
final class Jobs implements Scenario {

  private static final String JSON_TYPE = "application/json";

  @Override
  public List<Result> run(Args args) throws Exception {
    URI url = args.uri("url", "http://127.0.0.1:18280");
    String queue = args.string("queue", "bench");
    String serverKey = args.string("server-key", "bench-server-key");
    String workerKey = args.string("worker-key", "bench-worker-key");
    int workers = args.integer("workers", 4);
    int concurrency = args.integer("concurrency", 16);
    int inFlight = args.integer("in-flight", 64);
    int backlog = args.integer("backlog", 1000);
    List<Integer> rates = args.integers("rates", List.of(0));
    Duration warmup = args.duration("warmup", Duration.ofSeconds(5));
    Duration duration = args.duration("duration", Duration.ofSeconds(20));
    Duration drainLimit = args.duration("drain", Duration.ofSeconds(120));
    Usage usage = Usage.from(args);
    args.requireAllUsed();

    HttpClient http = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .executor(Executors.newFixedThreadPool(4, r -> {
          Thread t = new Thread(r, "bench-jobs-http");
          t.setDaemon(true);
          return t;
        }))
        .build();
    Load load = new Load(http, url, queue, serverKey, workerKey, args.runId());
    List<Map<String, Object>> rows = new ArrayList<>();
    List<String> notes = new ArrayList<>();
    List<Load.Worker> running = new ArrayList<>();
    for (int w = 0; w < workers; w++) {
      Load.Worker worker = load.new Worker("bench-" + w, concurrency);
      running.add(worker);
      worker.pump();
    }
    try {
      settle(load, drainLimit, notes);
      for (int rate : rates) {
        String step = rate == 0 ? "max" : "rate=" + rate;
        System.err.printf("jobs: %s, %d workers x %d%n", step, workers, concurrency);
        rows.add(step(load, step, rate, inFlight, backlog, warmup, duration, drainLimit, usage, notes));
      }
    } finally {
      running.forEach(Load.Worker::stop);
    }
    return List.of(new Result("jobs", "parley", rows, notes));
  }

  /**
   * Waits until the queue holds no live job: the workers complete what an earlier, broken run
   * left, and a lease such a run held expires, so every step starts on an empty queue.
   */
  private static void settle(Load load, Duration limit, List<String> notes) throws Exception {
    long deadline = System.nanoTime() + limit.toNanos();
    while (true) {
      HttpResponse<String> counts = load.http.send(
          HttpRequest.newBuilder(load.url.resolve("/v1/queues/" + load.queue))
              .header("Authorization", "Bearer " + load.serverKey).build(),
          HttpResponse.BodyHandlers.ofString());
      if (counts.statusCode() != 200) {
        throw new IllegalStateException("GET /v1/queues/" + load.queue + ": " + counts.statusCode() + " " + counts.body()
            + " (bench/run declares the queue and sets the server and worker keys)");
      }
      JsonNode c = Bench.JSON.readTree(counts.body());
      long live = c.path("waiting").asLong() + c.path("delayed").asLong() + c.path("active").asLong();
      if (live == 0) {
        return;
      }
      if (System.nanoTime() > deadline) {
        notes.add("the queue still held " + live + " jobs of an earlier run when the steps began");
        return;
      }
      System.err.printf("jobs: waiting for %d jobs of an earlier run to finish%n", live);
      TimeUnit.SECONDS.sleep(1);
    }
  }

  private static Map<String, Object> step(
      Load load, String step, int rate, int inFlight, int backlog, Duration warmup, Duration duration,
      Duration drainLimit, Usage usage, List<String> notes) throws Exception {
    load.measuring = false;
    long start = System.nanoTime();
    long measureFrom = start + warmup.toNanos();
    long measureUntil = measureFrom + duration.toNanos();
    Usage.Window window = null;
    long submittedAtStart = 0;
    long completedAtStart = 0;
    long nextSubmit = start;
    long interval = rate == 0 ? 0 : TimeUnit.SECONDS.toNanos(1) / rate;
    while (true) {
      long now = System.nanoTime();
      if (window == null && now >= measureFrom) {
        load.pickup.reset();
        load.submitAck.reset();
        submittedAtStart = load.submitted.get();
        completedAtStart = load.completed.get();
        load.measuring = true;
        window = usage.start();
      }
      if (now >= measureUntil) {
        break;
      }
      if (rate == 0) {
        if (load.outstanding.get() >= inFlight || load.submitted.get() - load.finished() >= backlog) {
          load.awaitProgress(1);
          continue;
        }
      } else {
        if (now < nextSubmit) {
          LockSupport.parkNanos(Math.min(nextSubmit - now, 1_000_000));
          continue;
        }
        // A backend's connection pool is bounded too: a server that falls behind the rate
        // shows as fewer submissions per second, not as thousands of connections.
        if (load.outstanding.get() >= inFlight) {
          load.awaitProgress(1);
          continue;
        }
        nextSubmit += interval;
      }
      load.submit();
    }
    long submittedInWindow = load.submitted.get() - submittedAtStart;
    long completedInWindow = load.completed.get() - completedAtStart;
    Map<String, Object> used = window.stop();
    load.measuring = false;
    double seconds = duration.toNanos() / 1e9;
    org.HdrHistogram.Histogram pickup = load.pickup.getIntervalHistogram();
    org.HdrHistogram.Histogram acks = load.submitAck.getIntervalHistogram();

    long drainStart = System.nanoTime();
    long drainDeadline = drainStart + drainLimit.toNanos();
    while ((load.outstanding.get() > 0 || load.finished() < load.submitted.get()) && System.nanoTime() < drainDeadline) {
      load.awaitProgress(50);
    }
    long left = load.submitted.get() - load.finished();
    if (left > 0) {
      notes.add(step + ": " + left + " jobs not completed " + drainLimit.toSeconds() + " s after submitting stopped");
    }

    Map<String, Object> row = new LinkedHashMap<>();
    row.put("step", step);
    row.put("submitted_per_s", Numbers.round(submittedInWindow / seconds, 0));
    row.put("completed_per_s", Numbers.round(completedInWindow / seconds, 0));
    Numbers.latencies(row, "pickup", pickup);
    Numbers.latencies(row, "submit_ack", acks);
    row.put("drain_s", Numbers.round((System.nanoTime() - drainStart) / 1e9, 1));
    row.put("errors", load.errors.getAndSet(0));
    synchronized (load.firstErrors) {
      load.firstErrors.forEach(error -> notes.add(step + ": " + error));
      load.firstErrors.clear();
    }
    row.putAll(used);
    System.err.println(row);
    return row;
  }

  /** The submitters' and workers' shared counters and the client they call through. */
  private static final class Load {
    final HttpClient http;
    final URI url;
    final String queue;
    final String serverKey;
    final String workerKey;
    /** Marks this run's jobs, so a job an earlier run left is completed but not measured. */
    final String run;
    final AtomicLong submitted = new AtomicLong();
    final AtomicLong completed = new AtomicLong();
    /** Completions the server refused: those jobs are done with here, but not completed. */
    final AtomicLong refused = new AtomicLong();
    final AtomicLong outstanding = new AtomicLong();
    final AtomicLong errors = new AtomicLong();
    /** The first few errors, for the notes: a count alone does not say what went wrong. */
    final List<String> firstErrors = java.util.Collections.synchronizedList(new ArrayList<>());
    final Recorder pickup = new Recorder(Numbers.MAX_MICROS, 3);
    final Recorder submitAck = new Recorder(Numbers.MAX_MICROS, 3);
    volatile boolean measuring;
    private final Object progress = new Object();

    Load(HttpClient http, URI url, String queue, String serverKey, String workerKey, String run) {
      this.run = run;
      this.http = http;
      this.url = url;
      this.queue = queue;
      this.serverKey = serverKey;
      this.workerKey = workerKey;
    }

    void submit() {
      outstanding.incrementAndGet();
      submitted.incrementAndGet();
      long t = System.nanoTime();
      post("/v1/queues/" + queue + "/jobs", serverKey, "{\"data\":{\"run\":\"" + run + "\",\"t\":" + t + "},\"attempts\":1}")
          .whenComplete((response, failure) -> {
            if (failure != null || response.statusCode() != 202) {
              failed("submit", response, failure);
              // Never acknowledged: it will not complete either.
              submitted.decrementAndGet();
            } else if (measuring) {
              submitAck.recordValue(Math.min(Numbers.MAX_MICROS, (System.nanoTime() - t) / 1000));
            }
            outstanding.decrementAndGet();
            progressed();
          });
    }

    CompletableFuture<HttpResponse<String>> post(String path, String key, String body) {
      HttpRequest request = HttpRequest.newBuilder(url.resolve(path))
          .header("Authorization", "Bearer " + key)
          .header("Content-Type", JSON_TYPE)
          .timeout(Duration.ofSeconds(60))
          .POST(body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
          .build();
      return http.sendAsync(request, HttpResponse.BodyHandlers.ofString());
    }

    long finished() {
      return completed.get() + refused.get();
    }

    void failed(String what, HttpResponse<String> response, Throwable failure) {
      errors.incrementAndGet();
      if (firstErrors.size() < 5) {
        firstErrors.add(what + ": " + (failure != null ? failure : response.statusCode() + " " + response.body()));
      }
    }

    void progressed() {
      synchronized (progress) {
        progress.notifyAll();
      }
    }

    /** Waits for a submission or completion to end, or {@code millis}, whichever first. */
    void awaitProgress(long millis) throws InterruptedException {
      synchronized (progress) {
        progress.wait(millis);
      }
    }

    /**
     * One worker: holds up to {@code slots} jobs; whenever a slot is free and no fetch is out,
     * it fetches as many jobs as it has free slots, waiting up to a second for them.
     */
    final class Worker {
      private final String name;
      private int free;
      private boolean fetching;
      private volatile boolean stopped;

      Worker(String name, int slots) {
        this.name = name;
        this.free = slots;
      }

      void pump() {
        int max;
        synchronized (this) {
          if (stopped || fetching || free == 0) {
            return;
          }
          fetching = true;
          max = free;
        }
        post("/v1/queues/" + queue + "/lease?max=" + max + "&wait=1000&worker=" + name, workerKey, null)
            .whenComplete((response, failure) -> {
              long now = System.nanoTime();
              List<JsonNode> jobs = new ArrayList<>();
              if (failure != null || response.statusCode() != 200) {
                failed("lease", response, failure);
              } else {
                try {
                  Bench.JSON.readTree(response.body()).path("jobs").forEach(jobs::add);
                } catch (Exception e) {
                  errors.incrementAndGet();
                }
              }
              synchronized (this) {
                fetching = false;
                free -= jobs.size();
              }
              for (JsonNode job : jobs) {
                if (measuring && run.equals(job.path("data").path("run").asText())) {
                  long t = job.path("data").path("t").asLong();
                  pickup.recordValue(Math.min(Numbers.MAX_MICROS, Math.max(0, (now - t) / 1000)));
                }
                complete(job);
              }
              pump();
            });
      }

      private void complete(JsonNode job) {
        String body = "{\"leaseId\":\"" + job.path("leaseId").asText() + "\"}";
        post("/v1/jobs/" + job.path("id").asText() + "/complete", workerKey, body)
            .whenComplete((response, failure) -> {
              if (failure != null || response.statusCode() != 200) {
                failed("complete", response, failure);
                refused.incrementAndGet();
              } else {
                completed.incrementAndGet();
              }
              synchronized (this) {
                free++;
              }
              progressed();
              pump();
            });
      }

      void stop() {
        stopped = true;
      }
    }
  }
}
