package parley.transport.web;

import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.getFromResource;
import static org.apache.pekko.http.javadsl.server.Directives.getFromResourceDirectory;
import static org.apache.pekko.http.javadsl.server.Directives.pathSingleSlash;
import static org.apache.pekko.http.javadsl.server.Directives.respondWithHeaders;

import org.apache.pekko.http.javadsl.model.ContentTypes;
import java.util.List;
import org.apache.pekko.http.javadsl.model.headers.CacheControl;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.model.headers.CacheDirectives;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * The web client: one page and its plain ES modules, served from the jar ({@code web/} on the
 * classpath) at {@code /}. The page speaks only protocol v1, so the node serves it nothing
 * but files. {@code no-cache} makes browsers revalidate, so a new node never runs an old page.
 */
public final class WebRoutes {

  private static final String ROOT = "web";

  private WebRoutes() {}

  /**
   * The page loads only its own modules and stylesheet and talks only to its own node, so the
   * policy allows nothing else: an injected script or a framing page gets nowhere.
   */
  static final String CONTENT_SECURITY_POLICY =
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
          + " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

  public static Route create() {
    return get(
        () ->
            respondWithHeaders(
                List.of(
                    CacheControl.create(CacheDirectives.NO_CACHE),
                    RawHeader.create("Content-Security-Policy", CONTENT_SECURITY_POLICY),
                    RawHeader.create("X-Content-Type-Options", "nosniff"),
                    RawHeader.create("Referrer-Policy", "no-referrer"),
                    RawHeader.create("X-Frame-Options", "DENY")),
                () ->
                    concat(
                        pathSingleSlash(
                            () -> getFromResource(ROOT + "/index.html", ContentTypes.TEXT_HTML_UTF8)),
                        getFromResourceDirectory(ROOT))));
  }
}
