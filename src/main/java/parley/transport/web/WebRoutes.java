package parley.transport.web;

import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.getFromResource;
import static org.apache.pekko.http.javadsl.server.Directives.getFromResourceDirectory;
import static org.apache.pekko.http.javadsl.server.Directives.pathSingleSlash;
import static org.apache.pekko.http.javadsl.server.Directives.respondWithHeader;

import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.headers.CacheControl;
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

  public static Route create() {
    return get(
        () ->
            respondWithHeader(
                CacheControl.create(CacheDirectives.NO_CACHE),
                () ->
                    concat(
                        pathSingleSlash(
                            () -> getFromResource(ROOT + "/index.html", ContentTypes.TEXT_HTML_UTF8)),
                        getFromResourceDirectory(ROOT))));
  }
}
