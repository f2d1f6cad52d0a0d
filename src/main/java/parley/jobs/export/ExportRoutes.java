package parley.jobs.export;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.handleExceptions;
import static org.apache.pekko.http.javadsl.server.Directives.onSuccess;
import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpCharsets;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.ExceptionHandler;
import org.apache.pekko.http.javadsl.server.Route;
import parley.auth.AuthRoutes;
import parley.auth.ServerCredential;
import parley.auth.TokenService;
import parley.jobs.Job;
import parley.jobs.JobService;
import parley.jobs.queue.QueuePartition;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.ProtocolException;
import parley.protocol.Reply;
import parley.transport.HttpAnswers;
import parley.transport.UserLimits;

/**
 * {@code GET /v1/jobs/{id}/result}: a completed export, streamed chunk by chunk from Cassandra
 * as {@code application/x-ndjson}, to the job's submitter (or a backend with the server key);
 * anyone else learns nothing of the job ({@code job_not_found}, as for its status).
 */
public final class ExportRoutes {

  /** JSON lines, one event each (https://github.com/ndjson/ndjson-spec). */
  public static final ContentType NDJSON =
      ContentTypes.create(MediaTypes.applicationWithFixedCharset("x-ndjson", HttpCharsets.UTF_8, "ndjson"));

  private static final ExceptionHandler BAD_INPUT = ExceptionHandler.newBuilder()
      .match(ProtocolException.class, bad -> complete(HttpAnswers.response(bad.toFailure())))
      .build();

  private final JobService jobs;
  private final ExportSettings settings;
  private final ExportStore store;
  private final TokenService tokens;
  private final ServerCredential server;
  /** A user's calls here count toward their one request rate, as their other calls do. */
  private final UserLimits limits;

  private ExportRoutes(
      JobService jobs, ExportSettings settings, ExportStore store, TokenService tokens, ServerCredential server, UserLimits limits) {
    this.limits = limits;
    this.jobs = jobs;
    this.settings = settings;
    this.store = store;
    this.tokens = tokens;
    this.server = server;
  }

  public static Route create(
      JobService jobs, ExportSettings settings, ExportStore store, TokenService tokens, ServerCredential server, UserLimits limits) {
    ExportRoutes routes = new ExportRoutes(jobs, settings, store, tokens, server, limits);
    return pathPrefix("jobs", () -> pathPrefix(segment(), id -> path("result", () -> get(() ->
        handleExceptions(BAD_INPUT, () -> routes.caller(requester -> routes.result(id, requester)))))));
  }

  private Route result(String id, Optional<String> requester) {
    return onSuccess(jobs.get(id, requester.orElse(null)), answer -> {
      if (answer instanceof QueuePartition.Refused refused) {
        return error(ErrorCode.ofEntity(refused.code()), refused.message());
      }
      Job job = ((QueuePartition.Done) answer).job();
      if (job.status() != Job.Status.COMPLETED) {
        return error(ErrorCode.JOB_NOT_COMPLETED, "the job is " + job.state(System.currentTimeMillis()) + "; its result is there once it has completed");
      }
      JsonNode result = exportOf(job);
      if (result == null) {
        return error(ErrorCode.EXPORT_NOT_FOUND, "job " + id + " has no streamed result (only exports of the " + settings.queue().name() + " queue have one)");
      }
      String exportId = result.get("export").asText();
      int chunks = result.path("chunks").asInt();
      return onSuccess(chunks == 0 ? CompletableFuture.completedFuture(true) : store.exists(exportId), exists -> exists
          ? complete(HttpResponse.create()
              .withStatus(StatusCodes.OK)
              .addHeader(RawHeader.create("Content-Disposition", "attachment; filename=\"" + result.path("room").asText("room") + "-history.ndjson\""))
              .withEntity(HttpEntities.createChunked(NDJSON, store.read(exportId, chunks))))
          : error(ErrorCode.EXPORT_NOT_FOUND, "the export of job " + id + " has expired (kept " + settings.retention().toDays() + " days)"));
    });
  }

  /** The export the job's result names; null if it is not an export job's. */
  private JsonNode exportOf(Job job) {
    if (!job.queue().equals(settings.queue().name()) || job.result() == null) {
      return null;
    }
    try {
      JsonNode result = Codec.JSON.readTree(job.result());
      return result.path("export").isTextual() ? result : null;
    } catch (JsonProcessingException e) {
      return null;
    }
  }

  /** A user with their token (only their own jobs), or a backend with the server key (empty: every job). */
  private Route caller(Function<Optional<String>, Route> inner) {
    return optionalHeaderValueByName("Authorization", authorization ->
        server.enabled() && server.accepts(authorization.orElse(null))
            ? inner.apply(Optional.empty())
            : AuthRoutes.authenticated(tokens, user -> limits.admitCall(user.userId(), () -> inner.apply(Optional.of(user.userId())))));
  }

  private static Route error(ErrorCode code, String message) {
    return complete(HttpAnswers.response(Reply.Failure.of(code, message)));
  }
}
