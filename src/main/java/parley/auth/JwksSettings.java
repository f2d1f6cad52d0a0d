package parley.auth;

import java.time.Duration;

/**
 * An identity provider whose RS256 and ES256 tokens are accepted beside the HS256 ones: its
 * JWKS URL, the {@code iss} its tokens must name and the {@code aud} they must include. The
 * key set is cached for {@code cacheTtl}; a token naming a {@code kid} the cache lacks fetches
 * the set again, at most twice per {@code refetchMinInterval} (rotation without a restart, but
 * no fetch storm from forged kids). Off when {@code url} is empty.
 */
public record JwksSettings(
    String url,
    String issuer,
    String audience,
    Duration cacheTtl,
    Duration refetchMinInterval,
    Duration timeout) {

  public static JwksSettings none() {
    return new JwksSettings("", "", "", Duration.ofMinutes(5), Duration.ofSeconds(30), Duration.ofSeconds(2));
  }

  public boolean enabled() {
    return !url.isEmpty();
  }
}
