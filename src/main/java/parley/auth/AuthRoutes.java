package parley.auth;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.entity;
import static org.apache.pekko.http.javadsl.server.Directives.extractRequest;
import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.post;
import static org.apache.pekko.http.javadsl.server.Directives.reject;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.function.Supplier;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.HttpChallenge;
import org.apache.pekko.http.javadsl.model.headers.WWWAuthenticate;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import parley.auth.AuthResult.AuthFailure;
import parley.auth.AuthResult.Authenticated;
import parley.auth.TokenService.IssuedToken;

/**
 * Authentication over HTTP: the dev token endpoint, and the directives every client transport
 * (WebSocket, SSE, long-poll, REST) and the server publish API wrap their routes in.
 *
 * <h2>Where a client's token is taken from</h2>
 *
 * {@link #presentedToken} looks in three places and the first one present wins:
 *
 * <ol>
 *   <li>{@code Authorization: Bearer <token>}, the standard place (RFC 6750 §2.1), and the safest:
 *       headers stay out of access logs, proxy logs and browser history. Any client that can set
 *       headers should use it.
 *   <li>The query parameter {@code access_token} (RFC 6750 §2.3), for clients that cannot set
 *       headers: the browser's {@code EventSource} (SSE) and simple long-poll clients. It comes
 *       second because URLs do get logged.
 *   <li>An entry {@code bearer.<token>} in {@code Sec-WebSocket-Protocol}, the one value a
 *       browser's {@code new WebSocket(url, protocols)} lets a page send. It is last because it
 *       abuses a header meant for protocol names, and it counts only on a WebSocket upgrade.
 * </ol>
 *
 * A source that is present decides: a bad token in the header is refused, not rescued by a second
 * token in the query, so a client gets the same answer however many copies it sends. Two
 * {@code Authorization} headers are refused outright ({@code token_malformed}): which of them a
 * proxy or a server would take differs, so neither is. An {@code
 * Authorization} header with another scheme (a proxy's Basic, say) counts as absent.
 *
 * <p>A WebSocket route that accepts a subprotocol token must still select a real subprotocol the
 * client offered alongside it (say {@code parley.v1}, via {@code
 * handleWebSocketMessagesForProtocol}): browsers drop a connection whose offered subprotocols got
 * no answer, and the token must never be echoed back in the response.
 */
public final class AuthRoutes {

  private static final Logger log = LoggerFactory.getLogger(AuthRoutes.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String REALM = "parley";

  /** The query parameter a client may carry its token in. */
  public static final String ACCESS_TOKEN_PARAMETER = "access_token";

  /** Prefix of the {@code Sec-WebSocket-Protocol} entry that carries a token. */
  public static final String SUBPROTOCOL_PREFIX = "bearer.";

  private AuthRoutes() {}

  /**
   * {@code POST dev/token}, to be mounted under {@code /v1}: body {@code {"user":"alice"}}, answer
   * {@code {"token":"…","user":"alice","expiresAt":"2025-01-01T00:00:00Z"}}. When dev tokens are
   * off the route is absent (it rejects, so the request ends in 404): it hands anyone a token for
   * any user, which only a developer's own node may do.
   */
  public static Route create(AuthSettings settings, TokenService tokens) {
    if (!settings.devTokens()) {
      return reject();
    }
    log.warn("Dev tokens are on: POST /v1/dev/token issues a token for any user to anyone");
    return path(
        segment("dev").slash("token"),
        () ->
            post(
                () ->
                    entity(
                        Unmarshaller.entityToString(), body -> devToken(body, settings, tokens))));
  }

  /**
   * Runs {@code inner} with the client's verified identity, or answers 401 with {@code
   * {"type":"error","code":"token_expired","message":"…"}} (codes in {@link AuthFailure}). The
   * token is found as the class comment describes.
   */
  public static Route authenticated(TokenService tokens, Function<Authenticated, Route> inner) {
    return extractRequest(
        request -> {
          AuthResult result = authenticate(tokens, request);
          return result instanceof Authenticated user ? inner.apply(user) : complete(unauthorized((AuthFailure) result));
        });
  }

  /** Who the request's token names, or why it is refused; the token is found as the class comment says. */
  public static AuthResult authenticate(TokenService tokens, HttpRequest request) {
    if (authorizationHeaders(request) > 1) {
      return new AuthFailure(AuthFailure.TOKEN_MALFORMED, "More than one Authorization header: send exactly one");
    }
    return tokens.verify(presentedToken(request).orElse(null));
  }

  /**
   * Runs {@code inner} only for a request bearing the server key ({@code Authorization: Bearer
   * <server-key>}), else answers 401 ({@code server_key_missing}, {@code server_key_invalid}). With
   * no server key configured the route is absent (404): the publish API is off.
   */
  public static Route serverAuthenticated(ServerCredential credential, Supplier<Route> inner) {
    return keyAuthenticated(
        credential,
        ServerCredential.SERVER_KEY_MISSING,
        ServerCredential.SERVER_KEY_INVALID,
        "this node's server key",
        inner);
  }

  /**
   * Runs {@code inner} only for a request bearing {@code credential}'s key, else answers 401
   * with {@code missingCode} or {@code invalidCode}; with no key configured the route is absent.
   */
  public static Route keyAuthenticated(
      ServerCredential credential, String missingCode, String invalidCode, String what, Supplier<Route> inner) {
    if (!credential.enabled()) {
      return reject();
    }
    return optionalHeaderValueByName(
        "Authorization",
        header -> {
          if (credential.accepts(header.orElse(null))) {
            return inner.get();
          }
          return header.isPresent()
              ? complete(unauthorized(invalidCode, "The bearer credential is not " + what))
              : complete(unauthorized(missingCode, "This API needs Authorization: Bearer <" + what + ">"));
        });
  }

  /** The token a request presents, looked for in the order the class comment gives. */
  public static Optional<String> presentedToken(HttpRequest request) {
    return request
        .getHeader("Authorization")
        .flatMap(header -> Bearer.credentials(header.value()))
        .or(() -> request.getUri().query().get(ACCESS_TOKEN_PARAMETER).filter(t -> !t.isEmpty()))
        .or(() -> subprotocolToken(request));
  }

  /** The 401 answer for a refused client token, for routes that verify tokens themselves. */
  public static HttpResponse unauthorized(AuthFailure failure) {
    return unauthorized(failure.code(), failure.message());
  }

  private static int authorizationHeaders(HttpRequest request) {
    int count = 0;
    for (HttpHeader header : request.getHeaders()) {
      if (header.is("authorization")) {
        count++;
      }
    }
    return count;
  }

  /** Only a WebSocket upgrade may carry its token there: nothing else has a subprotocol. */
  private static Optional<String> subprotocolToken(HttpRequest request) {
    boolean upgrade =
        request.getHeader("Upgrade").map(h -> h.value().toLowerCase(java.util.Locale.ROOT).contains("websocket")).orElse(false);
    if (!upgrade) {
      return Optional.empty();
    }
    for (HttpHeader header : request.getHeaders()) {
      if (!header.is("sec-websocket-protocol")) {
        continue;
      }
      for (String protocol : header.value().split(",")) {
        String entry = protocol.strip();
        if (entry.startsWith(SUBPROTOCOL_PREFIX) && entry.length() > SUBPROTOCOL_PREFIX.length()) {
          return Optional.of(entry.substring(SUBPROTOCOL_PREFIX.length()));
        }
      }
    }
    return Optional.empty();
  }

  private static Route devToken(String body, AuthSettings settings, TokenService tokens) {
    JsonNode json;
    try {
      json = JSON.readTree(body);
    } catch (JsonProcessingException e) {
      json = null;
    }
    JsonNode user = json == null || !json.isObject() ? null : json.get("user");
    if (user == null || !user.isTextual()) {
      return complete(
          error(
              StatusCodes.BAD_REQUEST,
              "bad_request",
              "The body must be a JSON object with a \"user\" string, e.g. {\"user\":\"alice\"}"));
    }
    if (!UserIds.isValid(user.textValue())) {
      return complete(
          error(StatusCodes.BAD_REQUEST, AuthFailure.BAD_USER_ID, "user must be " + UserIds.RULE));
    }
    IssuedToken issued = tokens.issue(user.textValue(), settings.tokenTtl());
    return complete(
        json(
            StatusCodes.OK,
            new DevTokenResponse(issued.token(), issued.userId(), issued.expiresAt().toString())));
  }

  private static HttpResponse unauthorized(String code, String message) {
    // RFC 9110 §15.5.2: a 401 names the scheme to retry with; RFC 6750 §3 adds the error
    // only when a credential was presented.
    Map<String, String> params =
        AuthFailure.TOKEN_MISSING.equals(code) || code.endsWith("_key_missing")
            ? Map.of()
            : Map.of("error", "invalid_token");
    return error(StatusCodes.UNAUTHORIZED, code, message)
        .addHeader(WWWAuthenticate.create(HttpChallenge.create("Bearer", REALM, params)));
  }

  private static HttpResponse error(StatusCode status, String code, String message) {
    return json(status, new ErrorBody("error", code, message));
  }

  private static HttpResponse json(StatusCode status, Object body) {
    try {
      return HttpResponse.create()
          .withStatus(status)
          .withEntity(
              HttpEntities.create(ContentTypes.APPLICATION_JSON, JSON.writeValueAsString(body)));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("Cannot render " + body.getClass().getSimpleName(), e);
    }
  }

  private record DevTokenResponse(String token, String user, String expiresAt) {}

  private record ErrorBody(String type, String code, String message) {}
}
