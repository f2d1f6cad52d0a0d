package parley.transport;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.handleRejections;
import static org.apache.pekko.http.javadsl.server.Directives.withSizeLimit;

import java.time.Duration;
import java.util.function.Supplier;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.MalformedRequestContentRejection;
import org.apache.pekko.http.javadsl.server.RejectionHandler;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.Reply;

/** A {@link Reply} as an HTTP answer, for every HTTP transport: one place for the statuses. */
public final class HttpAnswers {

  private HttpAnswers() {}

  /** The reply's fields with 200 (202 for a started export), 204 when there are none, or the error with its code's status. */
  public static HttpResponse response(Reply reply) {
    if (reply instanceof Reply.ExportStarted started) {
      // A job was started: 202 and where to follow it, as a job submission answers.
      return HttpResponse.create()
          .withStatus(StatusCodes.ACCEPTED)
          .addHeader(RawHeader.create("Location", "/v1/jobs/" + started.jobId()))
          .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, Codec.restBody(reply)));
    }
    if (reply instanceof Reply.Accepted) {
      return HttpResponse.create().withStatus(StatusCodes.NO_CONTENT);
    }
    String body = Codec.restBody(reply);
    if (!(reply instanceof Reply.Failure)) {
      java.util.Optional<Reply.Failure> oversized = Codec.oversized(body);
      if (oversized.isPresent()) {
        return response(oversized.get());
      }
    }
    int status = reply instanceof Reply.Failure failure ? failure.code().httpStatus() : 200;
    HttpResponse response = HttpResponse.create()
        .withStatus(status)
        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, body));
    if (reply instanceof Reply.Failure failure && failure.retryAfter() != null) {
      response = response.addHeader(RawHeader.create("Retry-After", Long.toString(failure.retryAfter().toSeconds())));
    }
    return response;
  }

  /**
   * 429 {@code rate_limited} with {@code Retry-After} in whole seconds, at least one, as HTTP
   * clients expect: nothing was done.
   */
  public static Route rateLimited(Duration wait, String message) {
    return complete(retryLater(ErrorCode.RATE_LIMITED, wait, message));
  }

  /**
   * The node is starting as many sessions as it may ({@link SessionStarts}): 503 {@code
   * unavailable}, to come again in a second.
   */
  public static HttpResponse busyStarting() {
    return retryLater(ErrorCode.UNAVAILABLE, Duration.ofSeconds(1), "this node is starting as many sessions as it may");
  }

  /** The code's status and {@code Retry-After} in whole seconds, at least one. */
  private static HttpResponse retryLater(ErrorCode code, Duration wait, String message) {
    return response(Reply.Failure.retryAfter(code, wait, message));
  }

  /**
   * The client API's refusals, every one a JSON error with a code like the requests' own:
   * request bodies are held to {@code maxBytes}, the frame limit, so a REST call carries no
   * more than the WebSocket frame it stands for (a longer one, with a length or chunked, is 413
   * {@code frame_too_large}; one that could not be read to its end, 400 {@code bad_frame}); and
   * what Pekko HTTP refuses itself (no such path, another method, a malformed query) keeps its
   * status and text with a code: {@code route_not_found}, {@code method_not_allowed}, ...
   */
  public static Route jsonRefusals(long maxBytes, Supplier<Route> inner) {
    RejectionHandler refusals = RejectionHandler.newBuilder()
        .handle(MalformedRequestContentRejection.class, rejection -> rejection.getCause() instanceof EntityStreamSizeException
            ? error(ErrorCode.FRAME_TOO_LARGE, "request bodies are limited to " + maxBytes + " bytes, as frames are")
            : error(ErrorCode.BAD_FRAME, "the request body could not be read: " + rejection.message()))
        .build()
        .withFallback(RejectionHandler.defaultHandler())
        .mapRejectionResponse(HttpAnswers::asError);
    return handleRejections(refusals, () -> withSizeLimit(maxBytes, inner));
  }

  /** Pekko HTTP's own refusal (plain text) as a JSON error with the same status and text. */
  private static HttpResponse asError(HttpResponse response) {
    if (!(response.entity() instanceof HttpEntity.Strict text) || text.getContentType().equals(ContentTypes.APPLICATION_JSON)) {
      return response;
    }
    int status = response.status().intValue();
    ErrorCode code = switch (status) {
      case 401 -> ErrorCode.TOKEN_MISSING;
      case 403 -> ErrorCode.FORBIDDEN;
      case 404 -> ErrorCode.ROUTE_NOT_FOUND;
      case 405 -> ErrorCode.METHOD_NOT_ALLOWED;
      case 413 -> ErrorCode.FRAME_TOO_LARGE;
      default -> status >= 500 ? ErrorCode.UNAVAILABLE : ErrorCode.BAD_FRAME;
    };
    return response.withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, Codec.error(null, code, text.getData().utf8String())));
  }

  /** An error answer: {@code {"type":"error","code":…,"message":…}} with the code's status. */
  public static Route error(ErrorCode code, String message) {
    return complete(response(Reply.Failure.of(code, message)));
  }
}
