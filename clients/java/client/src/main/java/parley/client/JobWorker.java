package parley.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * Works on the jobs of one queue over a worker connection (docs/jobs.md, "Workers over the
 * WebSocket"): fetches as many jobs as it has free slots ({@code job_fetch}, held on the server
 * while the queue is empty), runs each in a {@link Handler} on a thread of its own, extends each
 * lease at half its remaining time while the handler runs, and completes the job with the
 * handler's result or fails it with the handler's exception.
 *
 * <p>{@link #stop()} is graceful: no new fetch goes out, the running handlers finish and report,
 * and jobs that a fetch already in flight brings in afterwards are failed back at once
 * ({@code job_fail}, error {@value #RELEASED}) so that they run again elsewhere after their
 * backoff rather than wait for their leases to run out. Either way that spends one of the job's
 * attempts, as every attempt that got a lease does.
 *
 * <p>A worker started with {@link #connect} survives its connection: when it ends (the node
 * restarted, the network dropped) it connects again, after a backoff that doubles from
 * {@value #FIRST_BACKOFF_MS} ms up to {@value #MAX_BACKOFF_MS} ms with jitter (so that the
 * workers of a restarted node do not all come back at once), and goes on: the running handlers
 * keep running, their extensions and outcomes go over the new connection while their leases
 * last (the server keeps a lease across its own restart), and fetching resumes. One started on
 * a given connection ({@link #start}) stops when that connection ends.
 *
 * <p>Execution is at least once: a handler whose lease was lost (the job was cancelled, or the
 * worker could not extend the lease in time) is not interrupted; {@link Job#leaseLost()} says
 * so, and its outcome is refused by the server ({@code lease_lost}) and counted in {@link
 * #lost()}. Handlers should be idempotent.
 */
public final class JobWorker {

  /** The error a job fetched by a stopping worker is failed back with. */
  public static final String RELEASED = "released: the worker stopped before starting the job";

  /** What a worker does with one job: its result (any JSON, or null), or an exception to fail it. */
  @FunctionalInterface
  public interface Handler {
    JsonNode handle(Job job) throws Exception;
  }

  /**
   * @param queue the queue to work on
   * @param concurrency jobs run at once (each on its own thread)
   * @param lease each job's lease, extended while its handler runs (1 s to 10 min)
   * @param fetchWait how long one fetch waits on the server for jobs (at most 30 s)
   * @param name the worker's name in the node's logs
   */
  public record Options(String queue, int concurrency, Duration lease, Duration fetchWait, String name) {
    public Options {
      Objects.requireNonNull(queue, "queue");
      if (concurrency < 1) {
        throw new IllegalArgumentException("concurrency must be >= 1");
      }
    }

    public static Options of(String queue, int concurrency) {
      return new Options(queue, concurrency, Duration.ofSeconds(30), Duration.ofSeconds(25), "java-worker");
    }

    public Options withLease(Duration lease) {
      return new Options(queue, concurrency, lease, fetchWait, name);
    }

    public Options withFetchWait(Duration wait) {
      return new Options(queue, concurrency, lease, wait, name);
    }

    public Options withName(String workerName) {
      return new Options(queue, concurrency, lease, fetchWait, workerName);
    }
  }

  /** One leased job, as its handler sees it. */
  public final class Job {
    private final JsonNode leased;
    private final String leaseId;
    /** The lease's deadline as last heard: past it, a report lost with its connection is not sent again. */
    private volatile long leaseUntil;
    private volatile boolean leaseLost;
    /** Its handler has returned: no more extensions. */
    private volatile boolean finished;

    private Job(JsonNode leased) {
      this.leased = leased;
      this.leaseId = leased.path("leaseId").asText();
      this.leaseUntil = leased.path("leaseUntil").asLong();
    }

    public String id() {
      return leased.path("id").asText();
    }

    /** The job's {@code data} (a JSON null when it has none). */
    public JsonNode data() {
      return leased.path("data");
    }

    /** Attempts made before this one. */
    public int attemptsMade() {
      return leased.path("attemptsMade").asInt();
    }

    /** The job as it was leased (docs/jobs.md), lease included. */
    public JsonNode json() {
      return leased;
    }

    /** True once the server refused this attempt's lease: stop, the outcome will be refused. */
    public boolean leaseLost() {
      return leaseLost;
    }

    /** Reports progress (any JSON, at most 4 KiB); the submitter is pushed it. */
    public CompletableFuture<Void> progress(JsonNode progress) {
      ObjectNode frame = frame("job_progress", this);
      frame.set("progress", progress);
      return report(this, frame).thenApply(reply -> null);
    }
  }

  private static final ObjectMapper MAPPER = new ObjectMapper();

  /** The first wait before connecting again; it doubles with each failed try. */
  static final long FIRST_BACKOFF_MS = 200;
  /** The longest wait between two tries to connect. */
  static final long MAX_BACKOFF_MS = 10_000;

  /** Fetch refusals worth asking again (the protocol's retryable codes, and the client's timeout). */
  private static final java.util.Set<String> RETRYABLE = java.util.Set.of("unavailable", "timeout", "rate_limited");

  /** Opens a new connection after one was lost; null when the worker has only the one it was given. */
  private final Supplier<CompletableFuture<ParleyClient>> connector;
  /**
   * The connection to use: completed while one is open, pending while the worker connects
   * again. Replaced (under the worker's lock) only by {@link #lost}.
   */
  private CompletableFuture<ParleyClient> live;
  private final AtomicLong reconnects = new AtomicLong();
  private final Options options;
  private final Handler handler;
  private final Semaphore slots;
  private final ExecutorService runners;
  private final ScheduledExecutorService heartbeats;
  private final Thread fetcher;
  private final AtomicInteger running = new AtomicInteger();
  private final AtomicLong completed = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final AtomicLong lost = new AtomicLong();
  private final AtomicLong released = new AtomicLong();
  private final CompletableFuture<Void> stopped = new CompletableFuture<>();
  private final List<CompletableFuture<?>> releases = new ArrayList<>();
  private volatile boolean stopping;
  /**
   * Completed by {@link #stop()}: what a held fetch waits on beside its answer. (Not an
   * interrupt: one could break the fetch's send half-way, leaving it unknown whether the
   * server holds it.)
   */
  private final CompletableFuture<Void> stopSignal = new CompletableFuture<>();
  private volatile boolean fetching;
  private volatile ParleyException failure;
  /** A fetch that was in flight when the worker stopped: its jobs are failed back. */
  private volatile CompletableFuture<Void> abandonedFetch = CompletableFuture.completedFuture(null);

  private JobWorker(ParleyClient connection, Supplier<CompletableFuture<ParleyClient>> connector, Options options, Handler handler) {
    this.live = CompletableFuture.completedFuture(connection);
    this.connector = connector;
    this.options = options;
    this.handler = handler;
    this.slots = new Semaphore(options.concurrency());
    this.runners = Executors.newFixedThreadPool(options.concurrency(), daemon("parley-job-" + options.queue()));
    this.heartbeats = Executors.newSingleThreadScheduledExecutor(daemon("parley-job-lease-" + options.queue()));
    this.fetcher = daemon("parley-job-fetch-" + options.queue()).newThread(this::fetchLoop);
  }

  /**
   * Starts working on {@code options.queue()} over {@code connection}, a worker connection
   * (opened with the worker key: {@code ParleyClient.connect(wsUri, workerKey)}).
   */
  public static JobWorker start(ParleyClient connection, Options options, Handler handler) {
    JobWorker worker = new JobWorker(connection, null, options, handler);
    worker.fetcher.start();
    // A connection that ends stops the worker: nothing can be reported over it any more.
    connection.closed().thenRun(worker::stop);
    return worker;
  }

  /**
   * Connects to {@code wsUri} with the worker key and works on {@code options.queue()},
   * connecting again whenever the connection is lost, until {@link #stop()}. Fails if the first
   * connection cannot be made (a wrong key, say): that is not worth retrying.
   */
  public static CompletableFuture<JobWorker> connect(URI wsUri, String workerKey, Options options, Handler handler) {
    Supplier<CompletableFuture<ParleyClient>> connector = () -> ParleyClient.connect(wsUri, workerKey);
    return connector.get().thenApply(connection -> {
      JobWorker worker = new JobWorker(connection, connector, options, handler);
      worker.watch(connection);
      worker.fetcher.start();
      return worker;
    });
  }

  /**
   * Stops fetching, lets the running jobs finish and report, fails back what arrives meanwhile;
   * completes once all that is done. Safe to call more than once.
   */
  public CompletableFuture<Void> stop() {
    if (!stopping) {
      stopping = true;
      stopSignal.complete(null);
    }
    return stopped;
  }

  /** Completes once the worker has stopped (after {@link #stop()}, or when its connection ended). */
  public CompletableFuture<Void> stopped() {
    return stopped;
  }

  /** Jobs completed (the server acknowledged the completion). */
  public long completed() {
    return completed.get();
  }

  /** Attempts failed by their handler (acknowledged). */
  public long failed() {
    return failed.get();
  }

  /** Outcomes refused because the lease was lost. */
  public long lost() {
    return lost.get();
  }

  /** Jobs fetched while stopping and failed back unstarted. */
  public long released() {
    return released.get();
  }

  /**
   * Why the worker stopped by itself, if it did: a fetch refused for good (such as {@code
   * queue_not_found}) or the connection's end ({@code closed}). Empty after {@link #stop()}.
   */
  public java.util.Optional<ParleyException> failure() {
    return java.util.Optional.ofNullable(failure);
  }

  /** Whether a fetch is out now, waiting for jobs on the server. */
  public boolean fetching() {
    return fetching;
  }

  /** Connections opened again after one was lost. */
  public long reconnects() {
    return reconnects.get();
  }

  /** Handlers running now. */
  public int running() {
    return running.get();
  }

  // ---------------------------------------------------------------------------------------
  // Fetching

  private void fetchLoop() {
    try {
      while (!stopping) {
        if (!slots.tryAcquire(100, TimeUnit.MILLISECONDS)) {
          continue;
        }
        int free = 1 + slots.drainPermits();
        ParleyClient connection = connection();
        if (connection == null) {
          slots.release(free);
          break;
        }
        List<JsonNode> jobs;
        try {
          jobs = fetch(connection, free);
        } catch (ParleyException e) {
          slots.release(free);
          if (connector != null && ParleyException.CLOSED.equals(e.code()) && !stopping) {
            // The connection ended under the fetch: the next one waits for the new connection.
            lost(connection);
            continue;
          }
          if (stopping || !RETRYABLE.contains(e.code())) {
            // The connection ended, or the fetch itself is wrong (an unknown queue, say).
            failure = stopping ? null : e;
            stopping = true;
            break;
          }
          // A partition failing over answers unavailable: ask again, a moment later.
          Thread.sleep(200);
          continue;
        }
        slots.release(free - jobs.size());
        for (JsonNode leased : jobs) {
          Job job = new Job(leased);
          if (stopping) {
            release(job);
          } else {
            runners.execute(() -> run(job));
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      finish();
    }
  }

  /** The open connection, waiting while the worker connects again; null once it is stopping. */
  private ParleyClient connection() throws InterruptedException {
    CompletableFuture<ParleyClient> next = current();
    try {
      CompletableFuture.anyOf(next, stopSignal).get();
    } catch (ExecutionException e) {
      return null;
    }
    return next.isDone() && !stopping ? next.join() : null;
  }

  private synchronized CompletableFuture<ParleyClient> current() {
    return live;
  }

  /** Connects again when {@code connection} ends (or stops, for a worker on a given connection). */
  private void watch(ParleyClient connection) {
    connection.closed().thenRun(() -> lost(connection));
  }

  /** {@code connection} ended: connect again, once however many notice it. */
  private void lost(ParleyClient connection) {
    CompletableFuture<ParleyClient> next;
    synchronized (this) {
      if (!live.isDone() || live.join() != connection || stopped.isDone()) {
        return;
      }
      live = next = new CompletableFuture<>();
    }
    // A request that failed on it as closed may find the socket still half open: let it go.
    connection.close();
    reconnect(next, 0);
  }

  private void reconnect(CompletableFuture<ParleyClient> next, int failures) {
    if (stopped.isDone()) {
      next.completeExceptionally(new ParleyException(ParleyException.CLOSED, "the worker has stopped"));
      return;
    }
    connector.get().whenComplete((connection, failure) -> {
      if (failure == null) {
        reconnects.incrementAndGet();
        // Handed out before it is watched: if it ended already, lost() finds it current.
        next.complete(connection);
        watch(connection);
      } else {
        try {
          heartbeats.schedule(() -> reconnect(next, failures + 1), backoff(failures), TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException stopped) {
          next.completeExceptionally(new ParleyException(ParleyException.CLOSED, "the worker has stopped"));
        }
      }
    });
  }

  /**
   * Doubles from {@link #FIRST_BACKOFF_MS} up to {@link #MAX_BACKOFF_MS}, then takes a random
   * part of up to half of it off: workers that lost one node do not all knock at once.
   */
  static long backoff(int failures) {
    long ceiling = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS << Math.min(failures, 20));
    return ceiling - ThreadLocalRandom.current().nextLong(ceiling / 2 + 1);
  }

  private List<JsonNode> fetch(ParleyClient connection, int max) throws InterruptedException {
    ObjectNode frame = MAPPER.createObjectNode().put("type", "job_fetch").put("queue", options.queue()).put("max", max)
        .put("waitMs", options.fetchWait().toMillis()).put("lease", options.lease().toMillis()).put("worker", options.name());
    CompletableFuture<JsonNode> reply = connection.request(frame, options.fetchWait().plusSeconds(15));
    fetching = true;
    boolean abandoned = false;
    try {
      CompletableFuture.anyOf(reply, stopSignal).get();
      if (!reply.isDone()) {
        // stop() while the fetch is held: it still answers, maybe with jobs, which go back.
        abandoned = true;
        abandonedFetch = reply.handle((answer, failure) -> {
          fetching = false;
          if (answer != null) {
            answer.path("jobs").forEach(leased -> release(new Job(leased)));
          }
          return null;
        });
        return List.of();
      }
      List<JsonNode> jobs = new ArrayList<>();
      reply.get().path("jobs").forEach(jobs::add);
      return jobs;
    } catch (ExecutionException e) {
      throw e.getCause() instanceof ParleyException p ? p : new ParleyException(ParleyException.PROTOCOL_ERROR, String.valueOf(e.getCause()));
    } finally {
      // Cleared here, on the fetching thread, before the jobs are handed on: a caller that sees
      // fetching() true after a job started knows the next fetch is out.
      if (!abandoned) {
        fetching = false;
      }
    }
  }

  private void release(Job job) {
    ObjectNode frame = frame("job_fail", job).put("error", RELEASED);
    CompletableFuture<?> done = report(job, frame).thenRun(released::incrementAndGet).exceptionally(e -> null);
    synchronized (releases) {
      releases.add(done);
    }
  }

  /** After the loop: the running jobs finish, then the releases are answered, then we are stopped. */
  private void finish() {
    runners.shutdown();
    CompletableFuture.runAsync(() -> {
      try {
        runners.awaitTermination(Long.MAX_VALUE, TimeUnit.DAYS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      heartbeats.shutdownNow();
      abandonedFetch.exceptionally(e -> null).join();
      CompletableFuture<?>[] pending;
      synchronized (releases) {
        pending = releases.toArray(CompletableFuture[]::new);
      }
      CompletableFuture.allOf(pending).whenComplete((ok, e) -> {
        stopped.complete(null);
        if (connector != null) {
          // The worker opened its connections itself: the last one is its to close.
          current().thenAccept(ParleyClient::close);
        }
      });
    });
  }

  // ---------------------------------------------------------------------------------------
  // Running one job

  private void run(Job job) {
    running.incrementAndGet();
    scheduleExtend(job, job.leased.path("leaseUntil").asLong());
    try {
      JsonNode result;
      try {
        result = handler.handle(job);
      } catch (Exception | Error e) {
        job.finished = true;
        String error = e.getMessage() == null || e.getMessage().isBlank() ? e.getClass().getName() : e.getMessage();
        outcome(job, frame("job_fail", job).put("error", shortened(error)), failed);
        return;
      }
      job.finished = true;
      ObjectNode frame = frame("job_complete", job);
      frame.set("result", result);
      outcome(job, frame, completed);
    } finally {
      running.decrementAndGet();
      slots.release();
    }
  }

  /**
   * Extends the lease when half of what is left of it has passed, and again after each
   * extension, until the handler returns or the lease is lost.
   */
  private void scheduleExtend(Job job, long leaseUntil) {
    long delay = Math.max(100, (leaseUntil - System.currentTimeMillis()) / 2);
    try {
      heartbeats.schedule(() -> {
        if (job.finished || job.leaseLost) {
          return;
        }
        ObjectNode frame = frame("job_extend", job).put("lease", options.lease().toMillis());
        report(job, frame).thenAccept(reply -> {
          job.leaseUntil = reply.path("job").path("leaseUntil").asLong();
          if (!job.finished && !job.leaseLost) {
            scheduleExtend(job, job.leaseUntil);
          }
        });
      }, delay, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException stopped) {
      // The worker has stopped: its last handler has returned.
    }
  }

  /** At most 1,000 characters (the server takes 4 KiB), never cutting a surrogate pair in two. */
  private static String shortened(String error) {
    if (error.length() <= 1000) {
      return error;
    }
    return error.substring(0, Character.isHighSurrogate(error.charAt(999)) ? 999 : 1000);
  }

  /** Sends the outcome and waits for its answer, so that {@link #stop()} ends after it. */
  private void outcome(Job job, ObjectNode frame, AtomicLong counter) {
    try {
      report(job, frame).join();
      counter.incrementAndGet();
    } catch (CompletionException e) {
      if (job.leaseLost) {
        lost.incrementAndGet();
      }
    }
  }

  /** Sends a report; a {@code lease_lost} refusal marks the job. */
  private CompletableFuture<JsonNode> report(Job job, ObjectNode frame) {
    return send(job, frame).whenComplete((reply, failure) -> {
      Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
      if (cause instanceof ParleyException refused && "lease_lost".equals(refused.code())) {
        job.leaseLost = true;
      }
    });
  }

  /**
   * Sends over the open connection. A report lost with its connection is sent again over the
   * next one, as long as the job's lease may still hold: the lease, not the connection, is the
   * worker's hold on the job. Past the lease it is refused here as the server would refuse it.
   */
  private CompletableFuture<JsonNode> send(Job job, ObjectNode frame) {
    long left = job.leaseUntil - System.currentTimeMillis();
    if (connector != null && left <= 0) {
      return CompletableFuture.failedFuture(new ParleyException("lease_lost", "the lease ran out while the worker was disconnected"));
    }
    CompletableFuture<ParleyClient> next = connector == null ? current() : current().copy().orTimeout(left, TimeUnit.MILLISECONDS);
    return next.exceptionallyCompose(timedOut -> CompletableFuture.failedFuture(
            new ParleyException("lease_lost", "the lease ran out while the worker was disconnected")))
        .thenCompose(connection -> connection.request(frame).handle((reply, failure) -> {
          if (failure == null) {
            return CompletableFuture.completedFuture(reply);
          }
          Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
          if (connector != null && cause instanceof ParleyException closed && ParleyException.CLOSED.equals(closed.code())) {
            lost(connection);
            return send(job, frame);
          }
          return CompletableFuture.<JsonNode>failedFuture(cause);
        }).thenCompose(sent -> sent));
  }

  private static ObjectNode frame(String type, Job job) {
    return MAPPER.createObjectNode().put("type", type).put("job", job.id()).put("leaseId", job.leaseId);
  }

  private static java.util.concurrent.ThreadFactory daemon(String name) {
    AtomicInteger n = new AtomicInteger();
    return runnable -> {
      Thread thread = new Thread(runnable, name + "-" + n.incrementAndGet());
      thread.setDaemon(true);
      return thread;
    };
  }
}
