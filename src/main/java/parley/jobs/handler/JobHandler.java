package parley.jobs.handler;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import parley.jobs.Job;
import parley.jobs.JobRequests;
import parley.jobs.JobService;
import parley.jobs.JobSettings;
import parley.jobs.JobView;
import parley.jobs.queue.QueuePartition;
import parley.limits.RateByKey;
import parley.protocol.ErrorCode;
import parley.protocol.ProtocolException;
import parley.protocol.Reply;
import parley.protocol.Request;

/**
 * Job requests, whatever transport they came by: the WebSocket's {@code job_*} frames and the
 * REST routes of {@code parley.jobs.http} decode into the same {@link Request.Jobs} records and
 * are answered here, so who may do what, the checks of {@link JobRequests}, the submit rate and
 * the answers are written once. Every stage completes, with a {@link Reply.Failure} if need be.
 */
public final class JobHandler {

  /** Who asks: a user (with a token), a backend (with the server key) or a worker (the worker key). */
  public sealed interface Caller {
    record User(String id) implements Caller {}

    record Backend() implements Caller {}

    record Worker() implements Caller {}
  }

  /** The longest a {@code job_status} may wait for a change (its {@code wait}). */
  public static final long MAX_FOLLOW_WAIT_MS = 60_000;

  private final JobService jobs;
  private final JobRequests requests;
  private final RateByKey submitRate;

  public JobHandler(JobService jobs, JobSettings settings) {
    this.jobs = jobs;
    this.requests = jobs.requests();
    this.submitRate = new RateByKey(settings.submitRatePerSecond(), settings.submitRateBurst(), System::nanoTime);
  }

  public JobRequests requests() {
    return requests;
  }

  public CompletionStage<Reply> handle(Caller caller, Request.Jobs request) {
    try {
      return request.accept(new Calls(caller));
    } catch (ProtocolException bad) {
      return done(bad.toFailure());
    }
  }

  private final class Calls implements Request.JobVisitor<CompletionStage<Reply>> {
    private final Caller caller;

    Calls(Caller caller) {
      this.caller = caller;
    }

    @Override
    public CompletionStage<Reply> submit(Request.JobSubmit r) {
      String submitter = submitter();
      JobSettings.Queue queue = requests.queue(r.queue());
      if (submitter != null ? !queue.usersMaySubmit() : !queue.serverMaySubmit()) {
        throw new ProtocolException(ErrorCode.FORBIDDEN,
            "queue '" + queue.name() + "' does not take jobs from " + (submitter != null ? "users" : "the server key"));
      }
      if (submitter != null && !submitRate.admit(submitter).isZero()) {
        return done(Reply.Failure.retryAfter(ErrorCode.RATE_LIMITED,
            Duration.ofSeconds(requests.submitRetryAfterSeconds()), "too many submissions"));
      }
      Job job = requests.submission(queue, submitter, r.idempotencyKey(), r.job(), System.currentTimeMillis());
      return answer(() -> jobs.submit(job), false);
    }

    @Override
    public CompletionStage<Reply> status(Request.JobStatus r) {
      String requester = submitter();
      long after = r.after() == null ? -1 : bounded("after", r.after(), 0, Long.MAX_VALUE);
      long wait = r.waitMs() == null ? 0 : bounded("waitMs", r.waitMs(), 0, MAX_FOLLOW_WAIT_MS);
      return answer(() -> after >= 0 && wait > 0
          ? jobs.follow(r.job(), requester, after, Duration.ofMillis(wait))
          : jobs.get(r.job(), requester), false);
    }

    @Override
    public CompletionStage<Reply> cancel(Request.JobCancel r) {
      String requester = submitter();
      long version = r.ifVersion() == null ? -1 : bounded("ifVersion", r.ifVersion(), 0, Long.MAX_VALUE);
      return answer(() -> jobs.cancel(r.job(), requester, version), false);
    }

    @Override
    public CompletionStage<Reply> fetch(Request.JobFetch r) {
      requireWorker("job_fetch");
      JobSettings.Queue queue = requests.queue(r.queue());
      int max = requests.fetchMax(r.max());
      long wait = requests.fetchWaitMillis(r.waitMs());
      long lease = requests.leaseMillis(r.lease());
      String name = r.worker() != null && !r.worker().isBlank() && r.worker().length() <= 64 ? r.worker() : "worker";
      return jobs.fetch(queue, name, max, lease, Duration.ofMillis(wait))
          .<Reply>thenApply(leased -> {
            long now = System.currentTimeMillis();
            return new Reply.JobsLeased(leased.stream().<JsonNode>map(job -> JobView.render(job, true, now)).toList());
          })
          .exceptionally(failure -> unavailable());
    }

    @Override
    public CompletionStage<Reply> extend(Request.JobExtend r) {
      requireWorker("job_extend");
      long lease = requests.leaseMillis(r.lease());
      return answer(() -> jobs.extend(r.job(), r.leaseId(), lease), true);
    }

    @Override
    public CompletionStage<Reply> progress(Request.JobProgress r) {
      requireWorker("job_progress");
      String progress = requests.progress(r.progress());
      return answer(() -> jobs.progress(r.job(), r.leaseId(), progress), true);
    }

    @Override
    public CompletionStage<Reply> complete(Request.JobComplete r) {
      requireWorker("job_complete");
      String result = requests.result(r.result());
      return answer(() -> jobs.complete(r.job(), r.leaseId(), result), true);
    }

    @Override
    public CompletionStage<Reply> fail(Request.JobFail r) {
      requireWorker("job_fail");
      String error = requests.error(r.error());
      return answer(() -> jobs.fail(r.job(), r.leaseId(), error), true);
    }

    /** The submitter a client request acts for: the user, or null for a backend. */
    private String submitter() {
      if (caller instanceof Caller.User user) {
        return user.id();
      }
      if (caller instanceof Caller.Backend) {
        return null;
      }
      throw new ProtocolException(ErrorCode.FORBIDDEN,
          "a worker connection only fetches and reports jobs; submit and follow jobs with a user token or the server key");
    }

    private void requireWorker(String type) {
      if (!(caller instanceof Caller.Worker)) {
        throw new ProtocolException(ErrorCode.FORBIDDEN,
            type + " is for workers: connect with Authorization: Bearer <worker key> (docs/jobs.md)");
      }
    }
  }

  /**
   * The partition's answer as a reply. A job id that names no partition ({@code job_not_found})
   * is refused before any partition is asked: {@code call} runs inside the check.
   */
  private static CompletionStage<Reply> answer(Supplier<CompletionStage<QueuePartition.Answer>> call, boolean forWorker) {
    CompletionStage<QueuePartition.Answer> answer;
    try {
      answer = call.get();
    } catch (ProtocolException bad) {
      return done(bad.toFailure());
    }
    return answer.thenApply(a -> reply(a, forWorker)).exceptionally(failure -> unavailable());
  }

  public static Reply reply(QueuePartition.Answer answer, boolean forWorker) {
    if (answer instanceof QueuePartition.Done done) {
      return new Reply.JobState(JobView.render(done.job(), forWorker, System.currentTimeMillis()), done.repeated() ? true : null);
    }
    QueuePartition.Refused refused = (QueuePartition.Refused) answer;
    ErrorCode code = ErrorCode.fromWire(refused.code()).orElse(ErrorCode.UNAVAILABLE);
    // A job that is not found is not named back: whether it exists is not the caller's to learn.
    String jobId = code == ErrorCode.JOB_NOT_FOUND ? null : refused.jobId();
    return new Reply.Failure(code, refused.message(), jobId);
  }

  private static Reply unavailable() {
    return Reply.Failure.of(ErrorCode.UNAVAILABLE, "the queue's partitions did not answer in time; send the same request again");
  }

  private static long bounded(String name, long value, long min, long max) {
    if (value < min || value > max) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, name + " must be " + min + "-" + max);
    }
    return value;
  }

  private static CompletionStage<Reply> done(Reply reply) {
    return CompletableFuture.completedFuture(reply);
  }
}
