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

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.concurrent.CompletionStage;
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
import parley.jobs.JobService;
import parley.jobs.JobSettings;
import parley.jobs.handler.JobHandler;
import parley.jobs.queue.QueuePartition;
import parley.protocol.Codec;
import parley.protocol.ProtocolException;
import parley.protocol.Reply;
import parley.protocol.Request;
import parley.transport.HttpAnswers;
import parley.transport.UserLimits;
import parley.transport.IfMatch;
import parley.transport.rest.RestRoutes;

/**
 * The jobs API (docs/jobs.md): clients submit, follow and cancel jobs with their token (or a
 * backend with the server key); workers fetch, extend, report and finish them with the worker
 * key; backends pause and resume queues and read their counts. A call's path, query, headers
 * and body are decoded into the request record a WebSocket {@code job_*} frame becomes, by the
 * same {@link Codec}, and answered by the same {@link JobHandler}; only the HTTP forms are
 * this class's own (202 and {@code Location} for a new job, {@code ETag}, {@code If-Match}).
 */
public final class JobRoutes {

  /** The worker key's refusals (401), beside the server key's. */
  public static final String WORKER_KEY_MISSING = "worker_key_missing";
  public static final String WORKER_KEY_INVALID = "worker_key_invalid";

  private final JobHandler handler;
  private final JobService jobs;
  private final Codec codec;
  private final TokenService tokens;
  private final ServerCredential server;
  private final ServerCredential workers;
  /** A user's calls here count toward their one request rate, as their other calls do. */
  private final UserLimits limits;

  private JobRoutes(
      JobHandler handler, JobService jobs, Codec codec, JobSettings settings, TokenService tokens, ServerCredential server, UserLimits limits) {
    this.limits = limits;
    this.handler = handler;
    this.jobs = jobs;
    this.codec = codec;
    this.tokens = tokens;
    this.server = server;
    this.workers = ServerCredential.ofKey(settings.workerKey());
  }

  public static Route create(
      JobHandler handler, JobService jobs, Codec codec, JobSettings settings, TokenService tokens, ServerCredential server, UserLimits limits) {
    return new JobRoutes(handler, jobs, codec, settings, tokens, server, limits).routes();
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
        path("jobs", () -> post(() -> caller(caller -> submit(caller, name)))),
        path("lease", () -> post(() -> worker(() -> lease(name)))),
        path("pause", () -> post(() -> AuthRoutes.serverAuthenticated(server, () -> pause(name, true)))),
        path("resume", () -> post(() -> AuthRoutes.serverAuthenticated(server, () -> pause(name, false)))),
        pathEnd(() -> get(() -> serverOrWorker(() -> counts(name)))));
  }

  private Route jobRoutes(String id) {
    return concat(
        pathEnd(() -> concat(
            get(() -> caller(caller -> status(caller, id))),
            delete(() -> caller(caller -> cancel(caller, id))))),
        path("extend", () -> post(() -> worker(() -> report("job_extend", id)))),
        path("progress", () -> post(() -> worker(() -> report("job_progress", id)))),
        path("complete", () -> post(() -> worker(() -> report("job_complete", id)))),
        path("fail", () -> post(() -> worker(() -> report("job_fail", id)))));
  }

  // ---------------------------------------------------------------------------------------
  // Clients

  /** A job is submitted with {@code Idempotency-Key} (optional) and answered 202 at once (200 for a repeat). */
  private Route submit(JobHandler.Caller caller, String queue) {
    return optionalHeaderValueByName("Idempotency-Key", key -> body(json -> {
      ObjectNode fields = fields().put("queue", queue);
      key.ifPresent(k -> fields.put("idempotencyKey", k));
      fields.set("job", json);
      return onSuccess(run(caller, "job_submit", fields), reply -> {
        if (reply instanceof Reply.JobState state) {
          String id = state.job().path("id").asText();
          return complete(jobResponse(Boolean.TRUE.equals(state.duplicate()) ? StatusCodes.OK : StatusCodes.ACCEPTED, state)
              .addHeader(RawHeader.create("Location", "/v1/jobs/" + id)));
        }
        return complete(HttpAnswers.response(reply));
      });
    }));
  }

  /** The job's status; with {@code after} (a version), held up to {@code wait} ms for a newer one. */
  private Route status(JobHandler.Caller caller, String id) {
    return parameterOptional("after", after -> parameterOptional("wait", wait -> {
      ObjectNode fields = fields().put("job", id);
      RestRoutes.number(fields, "after", after);
      RestRoutes.number(fields, "waitMs", wait);
      return answer(run(caller, "job_status", fields));
    }));
  }

  private Route cancel(JobHandler.Caller caller, String id) {
    return optionalHeaderValueByName("If-Match", ifMatch -> {
      ObjectNode fields = fields().put("job", id);
      ifMatch.ifPresent(v -> fields.put("ifVersion", IfMatch.version(v)));
      return answer(run(caller, "job_cancel", fields));
    });
  }

  // ---------------------------------------------------------------------------------------
  // Workers and backends

  /** {@code POST /v1/queues/{queue}/lease?max=&wait=&lease=&worker=}: up to max jobs, held up to wait ms. */
  private Route lease(String queue) {
    return parameterOptional("max", max -> parameterOptional("wait", wait -> parameterOptional("lease", lease -> parameterOptional("worker", worker -> {
      ObjectNode fields = fields().put("queue", queue);
      RestRoutes.number(fields, "max", max);
      RestRoutes.number(fields, "waitMs", wait);
      RestRoutes.number(fields, "lease", lease);
      worker.ifPresent(w -> fields.put("worker", w));
      return onSuccess(run(new JobHandler.Caller.Worker(), "job_fetch", fields), reply -> complete(HttpAnswers.response(reply)));
    }))));
  }

  /** {@code extend}, {@code progress}, {@code complete}, {@code fail}: the body's fields, the job from the path. */
  private Route report(String type, String id) {
    return body(json -> answer(run(new JobHandler.Caller.Worker(), type, json.put("job", id))));
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
  private Route counted(JobSettings.Queue queue, List<QueuePartition.Answer> answers) {
    for (QueuePartition.Answer answer : answers) {
      if (!(answer instanceof QueuePartition.Counts)) {
        return complete(HttpAnswers.response(JobHandler.reply(answer, false)));
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

  /** A user with their token, or a backend with the server key. */
  private Route caller(Function<JobHandler.Caller, Route> inner) {
    return optionalHeaderValueByName("Authorization", authorization ->
        server.enabled() && server.accepts(authorization.orElse(null))
            ? inner.apply(new JobHandler.Caller.Backend())
            : AuthRoutes.authenticated(tokens, user -> limits.admitCall(user.userId(), () -> inner.apply(new JobHandler.Caller.User(user.userId())))));
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

  /** Decodes the call into its request and runs it through the job handler. */
  private CompletionStage<Reply> run(JobHandler.Caller caller, String type, ObjectNode fields) {
    return handler.handle(caller, (Request.Jobs) codec.decode(type, fields));
  }

  /** A job answers with its fields and its version as the {@code ETag}. */
  private Route answer(CompletionStage<Reply> reply) {
    return onSuccess(reply, r -> complete(r instanceof Reply.JobState state ? jobResponse(StatusCodes.OK, state) : HttpAnswers.response(r)));
  }

  private static HttpResponse jobResponse(org.apache.pekko.http.javadsl.model.StatusCode status, Reply.JobState state) {
    return HttpResponse.create()
        .withStatus(status)
        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, state.job().toString()))
        .addHeader(RawHeader.create("ETag", "\"" + state.job().path("version").asLong() + "\""));
  }


  private static ObjectNode fields() {
    return Codec.JSON.createObjectNode();
  }

  private static Route body(Function<ObjectNode, Route> inner) {
    return entity(Unmarshaller.entityToString(), text -> inner.apply(Codec.parseObject(text)));
  }

  private static HttpResponse json(org.apache.pekko.http.javadsl.model.StatusCode status, ObjectNode body) {
    return HttpResponse.create().withStatus(status).withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, body.toString()));
  }
}
