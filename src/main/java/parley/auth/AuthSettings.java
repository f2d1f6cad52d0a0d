package parley.auth;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import java.net.MalformedURLException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import parley.app.StartupFailure;

/**
 * Authentication settings, read once at start-up from {@code parley.auth}. A node without a usable
 * token secret does not start: every client connection depends on it.
 *
 * <p>{@code tokenMaxLifetime} bounds {@code exp - iat} of every accepted token (from now when a
 * token has no {@code iat}): a connection lives no longer than its token, so this bounds how
 * long a user cut off at the token issuer keeps a connection.
 */
public record AuthSettings(
    String secret,
    Duration tokenTtl,
    boolean devTokens,
    String serverKey,
    Duration clockSkew,
    Duration tokenMaxLifetime,
    JwksSettings jwks) {

  /** HS256 only, tokens of up to a day. */
  public AuthSettings(
      String secret, Duration tokenTtl, boolean devTokens, String serverKey, Duration clockSkew) {
    this(secret, tokenTtl, devTokens, serverKey, clockSkew, Duration.ofHours(24), JwksSettings.none());
  }

  /** HS256 needs a key at least as long as its 256-bit hash (RFC 7518 §3.2). */
  public static final int MIN_SECRET_BYTES = 32;

  public static AuthSettings from(Config root) {
    try {
      Config c = root.getConfig("parley.auth");
      AuthSettings settings =
          new AuthSettings(
              c.getString("secret"),
              c.getDuration("token-ttl"),
              c.getBoolean("dev-tokens"),
              c.getString("server-key"),
              c.getDuration("clock-skew"),
              c.getDuration("token-max-lifetime"),
              new JwksSettings(
                  c.getString("jwks.url"),
                  c.getString("jwks.issuer"),
                  c.getString("jwks.audience"),
                  c.getDuration("jwks.cache-ttl"),
                  c.getDuration("jwks.refetch-min-interval"),
                  c.getDuration("jwks.timeout")));
      settings.validate();
      return settings;
    } catch (ConfigException e) {
      throw new StartupFailure("The parley.auth configuration is invalid: " + e.getMessage());
    }
  }

  private void validate() {
    if (secret.isBlank()) {
      throw new StartupFailure(
          "No token secret: set PARLEY_AUTH_SECRET (parley.auth.secret) to a random string of at"
              + " least "
              + MIN_SECRET_BYTES
              + " bytes, e.g. the output of `openssl rand -base64 48`.");
    }
    int length = secretBytes().length;
    if (length < MIN_SECRET_BYTES) {
      throw new StartupFailure(
          "PARLEY_AUTH_SECRET (parley.auth.secret) is "
              + length
              + " bytes; HS256 needs at least "
              + MIN_SECRET_BYTES
              + ". Generate one with `openssl rand -base64 48`.");
    }
    if (tokenTtl.isNegative() || tokenTtl.isZero()) {
      throw new StartupFailure("parley.auth.token-ttl must be positive, not " + tokenTtl);
    }
    if (clockSkew.isNegative()) {
      throw new StartupFailure("parley.auth.clock-skew must not be negative, not " + clockSkew);
    }
    if (tokenMaxLifetime.isNegative() || tokenMaxLifetime.isZero()) {
      throw new StartupFailure(
          "parley.auth.token-max-lifetime (PARLEY_TOKEN_MAX_LIFETIME) must be positive, not "
              + tokenMaxLifetime);
    }
    if (tokenTtl.compareTo(tokenMaxLifetime) > 0) {
      throw new StartupFailure(
          "parley.auth.token-ttl ("
              + tokenTtl
              + ") is longer than parley.auth.token-max-lifetime ("
              + tokenMaxLifetime
              + "): the node would refuse its own dev tokens");
    }
    if (jwks.enabled()) {
      try {
        URI.create(jwks.url()).toURL();
      } catch (IllegalArgumentException | MalformedURLException e) {
        throw new StartupFailure("PARLEY_JWKS_URL (parley.auth.jwks.url) is not a URL: " + jwks.url());
      }
      // Without both, any token the provider signs for any of its applications would do.
      if (jwks.issuer().isBlank() || jwks.audience().isBlank()) {
        throw new StartupFailure(
            "PARLEY_JWKS_URL is set: set PARLEY_TOKEN_ISSUER (parley.auth.jwks.issuer) and"
                + " PARLEY_TOKEN_AUDIENCE (parley.auth.jwks.audience) too");
      }
      for (Duration d : new Duration[] {jwks.cacheTtl(), jwks.refetchMinInterval(), jwks.timeout()}) {
        if (d.isNegative() || d.isZero()) {
          throw new StartupFailure("parley.auth.jwks durations must be positive, not " + d);
        }
      }
    }
  }

  public byte[] secretBytes() {
    return secret.getBytes(StandardCharsets.UTF_8);
  }

  /** Whether the server publish API is on: only when a server key is configured. */
  public boolean publishApiEnabled() {
    return !serverKey.isEmpty();
  }

  /** Keeps the secret and server key out of logs and error messages. */
  @Override
  public String toString() {
    return "AuthSettings[secret=<redacted>, tokenTtl="
        + tokenTtl
        + ", devTokens="
        + devTokens
        + ", serverKey="
        + (publishApiEnabled() ? "<redacted>" : "<none>")
        + ", clockSkew="
        + clockSkew
        + ", tokenMaxLifetime="
        + tokenMaxLifetime
        + ", jwks="
        + jwks
        + "]";
  }
}
