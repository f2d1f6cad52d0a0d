package parley.jobs.http;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.delete;
import static org.apache.pekko.http.javadsl.server.Directives.entity;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.handleExceptions;
import static org.apache.pekko.http.javadsl.server.Directives.onSuccess;
import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;
import static org.apache.pekko.http.javadsl.server.Directives.parameterOptional;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathEnd;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.Directives.post;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.function.Supplier;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.ExceptionHandler;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import parley.auth.AuthRoutes;
import parley.auth.ServerCredential;
import parley.auth.TokenService;
import parley.jobs.Job;
import parley.jobs.JobService;
import parley.jobs.JobView;
import parley.jobs.JobSettings;
import parley.jobs.queue.QueuePartition;
import parley.limits.RateByKey;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.ProtocolException;
import parley.protocol.Reply;
import parley.transport.HttpAnswers;

/**
 * The jobs API (docs/jobs.md): clients submit, follow and cancel jobs with their token (or a
 * backend with the server key); workers fetch, extend, report and finish them with the worker
 * key; backends pause and resume queues and read their counts.
 */
public final class JobRoutes {

  /** The worker key's refusals (401), beside the server key's. */
  public static final String WORKER_KEY_MISSING = "worker_key_missing";
  public static final String WORKER_KEY_INVALID = "worker_key_invalid";

  /** The longest a status request may wait for a change (the {@code wait} parameter). */
  static final long MAX_FOLLOW_WAIT_MS = 60_000;

  private final JobService jobs;
  private final TokenService tokens;
  private final ServerCredential server;
  private final ServerCredential workers;
  private final RateByKey submitRate;

  private JobRoutes(JobService jobs, JobSettings settings, TokenService tokens, ServerCredential server) {
    this.jobs = jobs;
    this.tokens = tokens;
    this.server = server;
    this.workers = ServerCredential.ofKey(settings.workerKey());
    this.submitRate = new RateByKey(settings.submitRatePerSecond(), settings.submitRateBurst(), System::nanoTime);
  }

  public static Route create(JobService jobs, JobSettings settings, TokenService tokens, ServerCredential server) {
    return new JobRoutes(jobs, settings, tokens, server).routes();
  }

  /** Bad input found anywhere while answering becomes its error, with the code's status. */
  private static final ExceptionHandler BAD_INPUT = ExceptionHandler.newBuilder()
      .match(ProtocolException.class, bad -> complete(HttpAnswers.response(bad.toFailure())))
      .build();

  private Route routes() {
    return handleExceptions(BAD_INPUT, () -> concat(
        pathPrefix("queues", () -> pathPrefix(segment(), this::queueRoutes)),
        pathPrefix("jobs", () -> pathPrefix(segment(), this::jobRoutes))));
  }

  private Route queueRoutes(String name) {
    return concat(
        path("jobs", () -> post(() -> caller(submitter -> submit(name, submitter)))),
        path("lease", () -> post(() -> worker(() -> lease(name)))),
        path("pause", () -> post(() -> AuthRoutes.serverAuthenticated(server, () -> pause(name, true)))),
        path("resume", () -> post(() -> AuthRoutes.serverAuthenticated(server, () -> pause(name, false)))),
        pathEnd(() -> get(() -> serverOrWorker(() -> counts(name)))));
  }

  private Route jobRoutes(String id) {
    return concat(
        pathEnd(() -> concat(
            get(() -> caller(requester -> status(id, requester))),
            delete(() -> caller(requester -> cancel(id, requester))))),
        path("extend", () -> post(() -> worker(() -> body(json ->
            answer(jobs.extend(id, jobs.requests().leaseId(json), jobs.requests().leaseMillis(optionalLong(json, "lease"))), true))))),
        path("progress", () -> post(() -> worker(() -> body(json ->
            answer(jobs.progress(id, jobs.requests().leaseId(json), jobs.requests().report("progress", json, jobs.requests().maxProgressBytes())), true))))),
        path("complete", () -> post(() -> worker(() -> body(json ->
            answer(jobs.complete(id, jobs.requests().leaseId(json), jobs.requests().report("result", json, jobs.requests().maxResultBytes())), true))))),
        path("fail", () -> post(() -> worker(() -> body(json ->
            answer(jobs.fail(id, jobs.requests().leaseId(json), jobs.requests().error(json)), true))))));
  }

  // ---------------------------------------------------------------------------------------
  // Clients

  /** A job is submitted with {@code Idempotency-Key} (optional) and answered 202 at once. */
  private Route submit(String queueName, Optional<String> submitter) {
    return optionalHeaderValueByName("Idempotency-Key", key -> body(json -> {
      JobSettings.Queue queue = jobs.requests().queue(queueName);
      if (submitter.isPresent() ? !queue.usersMaySubmit() : !queue.serverMaySubmit()) {
        throw new ProtocolException(ErrorCode.FORBIDDEN, "queue '" + queueName + "' does not take jobs from " + (submitter.isPresent() ? "users" : "the server key"));
      }
      if (submitter.isPresent()) {
        Duration wait = submitRate.admit(submitter.get());
        if (!wait.isZero()) {
          long seconds = Math.max(1, (wait.toMillis() + 999) / 1000);
          return complete(HttpAnswers.response(Reply.Failure.of(ErrorCode.RATE_LIMITED, "too many submissions; retry after " + seconds + " s"))
              .addHeader(RawHeader.create("Retry-After", Long.toString(seconds))));
        }
      }
      Job job = jobs.requests().submission(queue, submitter.orElse(null), key.orElse(null), json, System.currentTimeMillis());
      return onSuccess(jobs.submit(job), answer -> {
        if (answer instanceof QueuePartition.Done done) {
          Job submitted = done.job();
          return complete(json(done.repeated() ? StatusCodes.OK : StatusCodes.ACCEPTED, JobView.render(submitted, false, System.currentTimeMillis()))
              .addHeader(RawHeader.create("Location", "/v1/jobs/" + submitted.id()))
              .addHeader(etag(submitted)));
        }
        return complete(refusal(answer));
      });
    }));
  }

  /** The job's status; with {@code after} (a version), held up to {@code wait} ms for a newer one. */
  private Route status(String id, Optional<String> requester) {
    return parameterOptional("after", after -> parameterOptional("wait", wait -> {
      long afterVersion = after.map(v -> parse("after", v, 0, Long.MAX_VALUE)).orElse(-1L);
      long waitMs = wait.map(v -> parse("wait", v, 0, MAX_FOLLOW_WAIT_MS)).orElse(0L);
      CompletionStage<QueuePartition.Answer> answer = afterVersion >= 0 && waitMs > 0
          ? jobs.follow(id, requester.orElse(null), afterVersion, Duration.ofMillis(waitMs))
          : jobs.get(id, requester.orElse(null));
      return answer(answer, false);
    }));
  }

  private Route cancel(String id, Optional<String> requester) {
    return optionalHeaderValueByName("If-Match", ifMatch -> {
      long version = ifMatch.map(JobRoutes::version).orElse(-1L);
      return answer(jobs.cancel(id, requester.orElse(null), version), false);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Workers and backends

  /** {@code POST /v1/queues/{queue}/lease?max=&wait=&lease=}: up to max jobs, held up to wait ms. */
  private Route lease(String queueName) {
    return parameterOptional("max", max -> parameterOptional("wait", wait -> parameterOptional("lease", lease -> parameterOptional("worker", worker -> {
      JobSettings.Queue queue = jobs.requests().queue(queueName);
      int count = jobs.requests().fetchMax(max.map(v -> parse("max", v, Long.MIN_VALUE, Long.MAX_VALUE)).orElse(null));
      long waitMs = jobs.requests().fetchWaitMillis(wait.map(v -> parse("wait", v, Long.MIN_VALUE, Long.MAX_VALUE)).orElse(null));
      long leaseMs = jobs.requests().leaseMillis(lease.map(v -> parse("lease", v, Long.MIN_VALUE, Long.MAX_VALUE)).orElse(null));
      String name = worker.filter(w -> !w.isBlank() && w.length() <= 64).orElse("worker");
      return onSuccess(jobs.fetch(queue, name, count, leaseMs, Duration.ofMillis(waitMs)), leased -> {
        ObjectNode body = Codec.JSON.createObjectNode();
        ArrayNode list = body.putArray("jobs");
        leased.forEach(job -> list.add(JobView.render(job, true, System.currentTimeMillis())));
        return complete(json(StatusCodes.OK, body));
      });
    }))));
  }

  private Route pause(String queueName, boolean paused) {
    JobSettings.Queue queue = jobs.requests().queue(queueName);
    return onSuccess(jobs.eachPartition(queue, replyTo -> new QueuePartition.SetPaused(paused, replyTo)), answers -> counted(queue, answers));
  }

  private Route counts(String queueName) {
    JobSettings.Queue queue = jobs.requests().queue(queueName);
    return onSuccess(jobs.eachPartition(queue, QueuePartition.GetCounts::new), answers -> counted(queue, answers));
  }

  /** The queue's counts, summed over its partitions; a partition that did not answer fails the call. */
  private static Route counted(JobSettings.Queue queue, List<QueuePartition.Answer> answers) {
    for (QueuePartition.Answer answer : answers) {
      if (!(answer instanceof QueuePartition.Counts)) {
        return complete(refusal(answer));
      }
    }
    return complete(json(StatusCodes.OK, counts(queue, answers)));
  }

  private static ObjectNode counts(JobSettings.Queue queue, List<QueuePartition.Answer> answers) {
    int waiting = 0, delayed = 0, active = 0, completed = 0, failed = 0;
    boolean paused = false;
    for (QueuePartition.Answer answer : answers) {
      QueuePartition.Counts c = (QueuePartition.Counts) answer;
      waiting += c.waiting();
      delayed += c.delayed();
      active += c.active();
      completed += c.completed();
      failed += c.failed();
      paused |= c.paused();
    }
    ObjectNode body = Codec.JSON.createObjectNode().put("queue", queue.name()).put("partitions", queue.partitions());
    body.put("waiting", waiting).put("delayed", delayed).put("active", active).put("completed", completed).put("failed", failed).put("paused", paused);
    return body;
  }

  // ---------------------------------------------------------------------------------------
  // Credentials

  /** A user with their token (the submitter), or a backend with the server key (empty). */
  private Route caller(Function<Optional<String>, Route> inner) {
    return optionalHeaderValueByName("Authorization", authorization ->
        server.enabled() && server.accepts(authorization.orElse(null))
            ? inner.apply(Optional.empty())
            : AuthRoutes.authenticated(tokens, user -> inner.apply(Optional.of(user.userId()))));
  }

  private Route worker(Supplier<Route> inner) {
    return AuthRoutes.keyAuthenticated(workers, WORKER_KEY_MISSING, WORKER_KEY_INVALID, "the worker key", inner);
  }

  private Route serverOrWorker(Supplier<Route> inner) {
    return optionalHeaderValueByName("Authorization", authorization ->
        server.enabled() && server.accepts(authorization.orElse(null)) ? inner.get() : worker(inner));
  }

  // ---------------------------------------------------------------------------------------
  // Answers

  private Route answer(CompletionStage<QueuePartition.Answer> answer, boolean forWorker) {
    return onSuccess(answer, a -> a instanceof QueuePartition.Done done
        ? complete(json(StatusCodes.OK, JobView.render(done.job(), forWorker, System.currentTimeMillis())).addHeader(etag(done.job())))
        : complete(refusal(a)));
  }

  private static HttpResponse refusal(QueuePartition.Answer answer) {
    QueuePartition.Refused refused = (QueuePartition.Refused) answer;
    ErrorCode code = ErrorCode.fromWire(refused.code()).orElse(ErrorCode.UNAVAILABLE);
    ObjectNode body = Codec.JSON.createObjectNode().put("type", "error").put("code", code.wire()).put("message", refused.message());
    if (refused.jobId() != null && code != ErrorCode.JOB_NOT_FOUND) {
      body.put("jobId", refused.jobId());
    }
    return json(StatusCodes.get(code.httpStatus()), body);
  }

  private static RawHeader etag(Job job) {
    return RawHeader.create("ETag", "\"" + job.version() + "\"");
  }

  /** An If-Match value: {@code "7"} (as the ETag gave it) or 7. */
  private static long version(String ifMatch) {
    String v = ifMatch.trim();
    if (v.startsWith("\"") && v.endsWith("\"") && v.length() >= 2) {
      v = v.substring(1, v.length() - 1);
    }
    try {
      return Long.parseLong(v);
    } catch (NumberFormatException e) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "If-Match must be a job's ETag, e.g. \"3\"");
    }
  }

  private static long parse(String name, String value, long min, long max) {
    long n;
    try {
      n = Long.parseLong(value);
    } catch (NumberFormatException e) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, name + " must be an integer");
    }
    if (n < min || n > max) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, name + " must be " + min + "-" + max);
    }
    return n;
  }

  private static Long optionalLong(ObjectNode json, String field) {
    if (!json.hasNonNull(field)) {
      return null;
    }
    if (!json.get(field).isIntegralNumber() || !json.get(field).canConvertToLong()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, field + " must be an integer");
    }
    return json.get(field).asLong();
  }

  private static Route body(Function<ObjectNode, Route> inner) {
    return entity(Unmarshaller.entityToString(), text -> inner.apply(text.isBlank() ? Codec.JSON.createObjectNode() : Codec.parseObject(text)));
  }

  private static HttpResponse json(org.apache.pekko.http.javadsl.model.StatusCode status, ObjectNode body) {
    return HttpResponse.create().withStatus(status).withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, body.toString()));
  }
}
