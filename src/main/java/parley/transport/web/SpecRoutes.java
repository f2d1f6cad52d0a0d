package parley.transport.web;

import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.getFromResource;
import static org.apache.pekko.http.javadsl.server.Directives.path;

import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * The machine-readable specs of protocol v1, to be mounted under {@code /v1}: {@code
 * asyncapi.json} (WebSocket and SSE) and {@code openapi.json} (REST). They are docs/'s files,
 * copied into the jar by the build ({@code spec/} on the classpath), so the node serves exactly
 * what the repository documents and what SpecTest checks against the code.
 */
public final class SpecRoutes {

  private static final String ROOT = "spec/";

  private SpecRoutes() {}

  public static Route create() {
    return get(() -> concat(spec("asyncapi.json"), spec("openapi.json")));
  }

  private static Route spec(String file) {
    return path(file, () -> getFromResource(ROOT + file, ContentTypes.APPLICATION_JSON));
  }
}
