package parley.transport;

import static org.apache.pekko.http.javadsl.server.Directives.extractRequest;
import static org.apache.pekko.http.javadsl.server.Directives.handleRejections;

import java.net.URI;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.cors.javadsl.CorsDirectives;
import org.apache.pekko.http.cors.javadsl.CorsRejection;
import org.apache.pekko.http.cors.javadsl.model.HttpOriginMatcher;
import org.apache.pekko.http.cors.javadsl.settings.CorsSettings;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.headers.HttpOrigin;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.Directives;
import org.apache.pekko.http.javadsl.server.RejectionHandler;
import org.apache.pekko.http.javadsl.server.Route;
import parley.protocol.ErrorCode;
import parley.protocol.Reply;

/**
 * Which browser pages may open a WebSocket or an SSE stream. A browser sends its page's
 * {@code Origin} with both and lets any page open them, cookies or not: without this check a
 * page on any site could act as a user whose token it got hold of (or, with a token in the
 * query string, whose token sits in that page). Allowed: the node's own origin (the page it
 * serves, or a proxy in front under the same host), the configured origins, or any with
 * {@code *}. A request with no {@code Origin} is no browser page's, and passes.
 *
 * <p>The same origins may call the REST API and open SSE streams from their pages by CORS
 * ({@link #cors}), with Pekko HTTP's CORS directive: preflights answered, the
 * {@code Access-Control-*} headers on every answer, the rest of its settings in
 * {@code conf/http.conf} ({@code pekko.http.cors}).
 */
public final class AllowedOrigins {

  private final Set<String> allowed;
  private final boolean any;
  private final CorsSettings cors;

  /** {@code corsSettings}: {@code pekko.http.cors}, whose own origins list is replaced by {@code origins}. */
  public AllowedOrigins(List<String> origins, CorsSettings corsSettings) {
    this.any = origins.contains("*");
    this.allowed = origins.stream().map(AllowedOrigins::normalized).collect(Collectors.toUnmodifiableSet());
    this.cors = corsSettings.withAllowedOrigins(
        any ? HttpOriginMatcher.ALL : HttpOriginMatcher.create(allowed.stream().map(HttpOrigin::parse).toArray(HttpOrigin[]::new)));
  }

  /**
   * Runs {@code inner} with CORS for a page of an allowed origin: a preflight
   * ({@code OPTIONS} with {@code Access-Control-Request-Method}) is answered here, and every
   * other answer carries {@code Access-Control-Allow-Origin}. A page of any other origin is
   * refused 403 {@code origin_not_allowed} (a preflight too); requests without an
   * {@code Origin}, or from the node's own origin, need no CORS and pass untouched.
   */
  public Route cors(Supplier<Route> inner) {
    return extractRequest(request -> {
      Optional<String> origin = request.getHeader("Origin").map(HttpHeader::value);
      if (origin.isEmpty() || sameOrigin(origin.get(), request)) {
        return inner.get();
      }
      RejectionHandler refusals = RejectionHandler.newBuilder()
          .handle(CorsRejection.class, rejection -> rejection.cause() instanceof CorsRejection.InvalidOrigin
              ? Directives.complete(refusalOf(origin.get()))
              : HttpAnswers.error(ErrorCode.FORBIDDEN, "CORS: " + rejection.cause().description()))
          .build();
      return handleRejections(refusals, () -> CorsDirectives.cors(cors, inner));
    });
  }

  /** Runs {@code inner} for an allowed origin; 403 {@code origin_not_allowed} before anything else otherwise. */
  public Route check(Supplier<Route> inner) {
    return extractRequest(request -> refusal(request, 0).map(Directives::complete).orElseGet(inner));
  }

  /**
   * The 403 {@code origin_not_allowed} answer for a request from a page of an origin that may
   * not connect; empty for an allowed origin, the node's own, or no {@code Origin} at all. On
   * a second port of the node, {@code clientPort} (else 0) names the client port, whose pages
   * are the node's own too.
   */
  public Optional<HttpResponse> refusal(HttpRequest request, int clientPort) {
    Optional<String> origin = request.getHeader("Origin").map(HttpHeader::value);
    if (origin.isEmpty() || any || allowed.contains(normalized(origin.get()))
        || sameOrigin(origin.get(), request) || (clientPort > 0 && sameOrigin(origin.get(), withPort(request, clientPort)))) {
      return Optional.empty();
    }
    return Optional.of(refusalOf(origin.get()));
  }

  private static HttpResponse refusalOf(String origin) {
    return HttpAnswers.response(Reply.Failure.of(
        ErrorCode.ORIGIN_NOT_ALLOWED,
        "pages from " + origin + " may not connect here (PARLEY_ALLOWED_ORIGINS lists those that may)"));
  }

  /** The page came from the host the request is addressed to (what its Host header names). */
  private static boolean sameOrigin(String origin, HttpRequest request) {
    Optional<String> host = request.getHeader("Host").map(h -> h.value().toLowerCase(Locale.ROOT));
    if (host.isEmpty()) {
      return false;
    }
    try {
      URI uri = new URI(origin);
      if (uri.getHost() == null || !("http".equals(uri.getScheme()) || "https".equals(uri.getScheme()))) {
        return false;
      }
      String authority = uri.getHost().toLowerCase(Locale.ROOT) + (uri.getPort() == -1 ? "" : ":" + uri.getPort());
      return authority.equals(host.get()) || authority.equals(withoutDefaultPort(host.get(), uri.getScheme()));
    } catch (java.net.URISyntaxException e) {
      return false;
    }
  }

  /** The request as if addressed to {@code port} of the same host. */
  private static HttpRequest withPort(HttpRequest request, int port) {
    return request.getHeader("Host")
        .map(host -> {
          String name = host.value();
          int colon = name.lastIndexOf(':');
          String bare = colon > name.lastIndexOf(']') ? name.substring(0, colon) : name;
          return (HttpRequest) request.removeHeader("Host").addHeader(RawHeader.create("Host", bare + ":" + port));
        })
        .orElse(request);
  }

  private static String withoutDefaultPort(String host, String scheme) {
    String defaultPort = "https".equals(scheme) ? ":443" : ":80";
    return host.endsWith(defaultPort) ? host.substring(0, host.length() - defaultPort.length()) : host;
  }

  private static String normalized(String origin) {
    String lower = origin.strip().toLowerCase(Locale.ROOT);
    return lower.endsWith("/") ? lower.substring(0, lower.length() - 1) : lower;
  }
}
