package parley.transport;

import static org.apache.pekko.http.javadsl.server.Directives.extractRequest;

import java.net.URI;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.server.Route;
import parley.protocol.ErrorCode;

/**
 * Which browser pages may open a WebSocket or an SSE stream. A browser sends its page's
 * {@code Origin} with both and lets any page open them, cookies or not: without this check a
 * page on any site could act as a user whose token it got hold of (or, with a token in the
 * query string, whose token sits in that page). Allowed: the node's own origin (the page it
 * serves, or a proxy in front under the same host), the configured origins, or any with
 * {@code *}. A request with no {@code Origin} is no browser page's, and passes.
 */
public final class AllowedOrigins {

  private final Set<String> allowed;
  private final boolean any;

  public AllowedOrigins(List<String> origins) {
    this.any = origins.contains("*");
    this.allowed = origins.stream().map(AllowedOrigins::normalized).collect(Collectors.toUnmodifiableSet());
  }

  /** Runs {@code inner} for an allowed origin; 403 {@code origin_not_allowed} before anything else otherwise. */
  public Route check(Supplier<Route> inner) {
    return extractRequest(request -> {
      Optional<String> origin = request.getHeader("Origin").map(HttpHeader::value);
      if (origin.isEmpty() || any || allowed.contains(normalized(origin.get())) || sameOrigin(origin.get(), request)) {
        return inner.get();
      }
      return HttpAnswers.error(
          ErrorCode.ORIGIN_NOT_ALLOWED,
          "pages from " + origin.get() + " may not connect here (PARLEY_ALLOWED_ORIGINS lists those that may)");
    });
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

  private static String withoutDefaultPort(String host, String scheme) {
    String defaultPort = "https".equals(scheme) ? ":443" : ":80";
    return host.endsWith(defaultPort) ? host.substring(0, host.length() - defaultPort.length()) : host;
  }

  private static String normalized(String origin) {
    String lower = origin.strip().toLowerCase(Locale.ROOT);
    return lower.endsWith("/") ? lower.substring(0, lower.length() - 1) : lower;
  }
}
