package parley.ops;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;

/**
 * The bearer token that guards the management routes telling the cluster's shape
 * ({@code /cluster/*}, {@code /shard-distribution}). Pekko Management's own authentication
 * covers every route, the probes' {@code /ready} and {@code /alive} too, so the guard is
 * here, around just those routes. Empty: no token is asked for.
 */
final class ManagementToken {

  private final byte[] token;

  ManagementToken(String token) {
    this.token = token.getBytes(StandardCharsets.UTF_8);
  }

  /** Runs {@code inner} for a request bearing the token; 401 {@code token_missing} or {@code token_invalid} otherwise. */
  Route required(Supplier<Route> inner) {
    if (token.length == 0) {
      return inner.get();
    }
    return optionalHeaderValueByName("Authorization", header -> {
      Optional<String> given = header.filter(h -> h.regionMatches(true, 0, "Bearer ", 0, 7)).map(h -> h.substring(7).strip());
      if (given.isEmpty()) {
        return refuse(ErrorCode.TOKEN_MISSING, "this management route needs Authorization: Bearer <PARLEY_MANAGEMENT_TOKEN>");
      }
      if (!MessageDigest.isEqual(token, given.get().getBytes(StandardCharsets.UTF_8))) {
        return refuse(ErrorCode.TOKEN_INVALID, "the management token is not this node's PARLEY_MANAGEMENT_TOKEN");
      }
      return inner.get();
    });
  }

  private static Route refuse(ErrorCode code, String message) {
    return complete(
        HttpResponse.create()
            .withStatus(StatusCodes.UNAUTHORIZED)
            .addHeaders(List.of(HttpHeader.parse("WWW-Authenticate", "Bearer realm=\"parley-management\"")))
            .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, Codec.error(null, code, message))));
  }
}
