package parley.auth;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Scheduler;
import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.crypto.MACVerifier;
import com.nimbusds.jose.jwk.source.JWKSetBasedJWKSource;
import com.nimbusds.jose.jwk.source.JWKSetSource;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.jwk.source.RateLimitedJWKSetSource;
import com.nimbusds.jose.jwk.source.RefreshAheadCachingJWKSetSource;
import com.nimbusds.jose.jwk.source.URLBasedJWKSetSource;
import com.nimbusds.jose.proc.BadJOSEException;
import com.nimbusds.jose.proc.DefaultJOSEObjectTypeVerifier;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jose.util.DefaultResourceRetriever;
import com.nimbusds.jwt.JWT;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.JWTParser;
import com.nimbusds.jwt.SignedJWT;
import com.nimbusds.jwt.proc.BadJWTException;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import com.nimbusds.jwt.proc.ExpiredJWTException;
import java.net.MalformedURLException;
import java.net.URI;
import java.text.ParseException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Date;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import parley.auth.AuthResult.AuthFailure;
import parley.auth.AuthResult.Authenticated;

/**
 * Issues and verifies the clients' JWTs. A token names its user in {@code sub} and must carry an
 * {@code exp}, no further than the maximum lifetime from its {@code iat}. Two kinds are accepted:
 *
 * <ul>
 *   <li>HS256 with this node's secret, which the application backends share (and the dev token
 *       endpoint issues);
 *   <li>with an identity provider configured ({@link JwksSettings}), RS256 and ES256 signed by a
 *       key of its JWKS, naming its issuer and the node's audience.
 * </ul>
 *
 * The algorithm in the header picks the key, and each algorithm has only its own kind of key: an
 * HS256 token is checked against the secret alone (so one "signed" with the provider's public key
 * fails), an RS256/ES256 token against the key set alone, and {@code alg: none} is refused before
 * any of it. Thread-safe; build one per node.
 */
public final class TokenService {

  /** Longer than any real token; spares parsing megabytes a client sent as a "token". */
  static final int MAX_TOKEN_LENGTH = 8192;

  /** What an identity provider may sign with: asymmetric only, so no shared key is involved. */
  static final Set<JWSAlgorithm> PROVIDER_ALGORITHMS = Set.of(JWSAlgorithm.RS256, JWSAlgorithm.ES256);

  /**
   * The typ a token may name, if it names one: RFC 9068 access tokens say at+jwt, others JWT,
   * each also in its full media-type form (RFC 7515: the "application/" prefix may be left out).
   */
  private static final Set<JOSEObjectType> TOKEN_TYPES = Set.of(
      JOSEObjectType.JWT, new JOSEObjectType("at+jwt"), new JOSEObjectType("application/jwt"), new JOSEObjectType("application/at+jwt"));

  /** How many verified HS256 tokens are remembered, and for how long ({@link #verified}). */
  static final int VERIFIED_MAX = 50_000;

  static final Duration VERIFIED_FOR = Duration.ofMinutes(2);

  /** A freshly issued token and when it expires (whole seconds, as in its {@code exp}). */
  public record IssuedToken(String token, String userId, Instant expiresAt) {}

  private final MACSigner signer;
  private final MACVerifier verifier;
  private final DefaultJWTClaimsVerifier<SecurityContext> claimsVerifier;
  /** Null without an identity provider. */
  private final DefaultJWTProcessor<SecurityContext> provider;
  private final Clock clock;
  private final Duration clockSkew;
  private final Duration maxLifetime;
  /**
   * HS256 tokens that verified, by their exact text. A client presents the same token on every
   * reconnect, poll and retry (after a node fails, each of its clients tries a few times), and
   * checking it again was a sixth of the CPU a connection's open takes (docs/benchmarks.md).
   * The same text verifies the same way against the same secret, and a check that passed once
   * (iat, lifetime, sub) passes later too, all but the expiry: that alone is checked again.
   * Provider tokens are not kept, so a key the provider withdraws stops its tokens at once.
   * Bounded, and short-lived so that an idle node's heap does not keep them.
   */
  private final Cache<String, Authenticated> verified =
      Caffeine.newBuilder()
          .maximumSize(VERIFIED_MAX)
          .expireAfterWrite(VERIFIED_FOR)
          .scheduler(Scheduler.systemScheduler())
          .recordStats()
          .build();

  public TokenService(AuthSettings settings) {
    this(settings, Clock.systemUTC());
  }

  public TokenService(AuthSettings settings, Clock clock) {
    this.clock = clock;
    this.clockSkew = settings.clockSkew();
    this.maxLifetime = settings.tokenMaxLifetime();
    try {
      this.signer = new MACSigner(settings.secretBytes());
      this.verifier = new MACVerifier(settings.secretBytes());
    } catch (JOSEException e) {
      throw new IllegalArgumentException("Unusable HS256 secret: " + e.getMessage(), e);
    }
    this.claimsVerifier = claimsVerifier(null, null);
    this.provider = settings.jwks().enabled() ? provider(settings.jwks()) : null;
  }

  private DefaultJWTClaimsVerifier<SecurityContext> claimsVerifier(String issuer, String audience) {
    JWTClaimsSet exact = issuer == null ? null : new JWTClaimsSet.Builder().issuer(issuer).build();
    // A mutable set: the verifier asks it whether it contains null, which Set.of refuses.
    DefaultJWTClaimsVerifier<SecurityContext> claims =
        new DefaultJWTClaimsVerifier<>(
            audience == null ? null : new HashSet<>(Set.of(audience)), exact, Set.of("exp"), null) {
          @Override
          protected Date currentTime() {
            return Date.from(clock.instant());
          }
        };
    claims.setMaxClockSkew(Math.toIntExact(clockSkew.toSeconds()));
    return claims;
  }

  /**
   * The provider's keys: nimbus's own sources, chained as {@link
   * com.nimbusds.jose.jwk.source.JWKSourceBuilder} chains them (a cache over a rate limit over the
   * URL), built by hand only to give the cache's refresh-ahead a daemon thread. Traffic near the
   * end of the cache's life refreshes the set in the background, so verifying, which runs on
   * request threads, waits on a fetch only for an unknown {@code kid} or after an idle spell.
   */
  private DefaultJWTProcessor<SecurityContext> provider(JwksSettings jwks) {
    int timeout = Math.toIntExact(jwks.timeout().toMillis());
    JWKSetSource<SecurityContext> url;
    try {
      url =
          new URLBasedJWKSetSource<>(
              URI.create(jwks.url()).toURL(),
              new DefaultResourceRetriever(timeout, timeout, JWKSourceBuilder.DEFAULT_HTTP_SIZE_LIMIT));
    } catch (MalformedURLException e) {
      throw new IllegalArgumentException("Not a JWKS URL: " + jwks.url(), e);
    }
    long ttl = jwks.cacheTtl().toMillis();
    ExecutorService refresher =
        Executors.newSingleThreadExecutor(
            task -> {
              Thread thread = new Thread(task, "parley-jwks-refresh");
              thread.setDaemon(true);
              return thread;
            });
    JWKSource<SecurityContext> keys =
        new JWKSetBasedJWKSource<>(
            new RefreshAheadCachingJWKSetSource<>(
                new RateLimitedJWKSetSource<>(url, jwks.refetchMinInterval().toMillis(), null),
                ttl,
                jwks.timeout().toMillis(),
                Math.min(JWKSourceBuilder.DEFAULT_REFRESH_AHEAD_TIME, ttl / 2),
                false,
                refresher,
                true,
                null));
    DefaultJWTProcessor<SecurityContext> processor = new DefaultJWTProcessor<>();
    // RFC 9068 access tokens say at+jwt; ID-token-style ones say JWT or nothing.
    Set<JOSEObjectType> types = new HashSet<>(TOKEN_TYPES);
    types.add(null);
    processor.setJWSTypeVerifier(new DefaultJOSEObjectTypeVerifier<>(types));
    processor.setJWSKeySelector(new JWSVerificationKeySelector<>(PROVIDER_ALGORITHMS, keys));
    processor.setJWTClaimsSetVerifier(claimsVerifier(jwks.issuer(), jwks.audience()));
    return processor;
  }

  /**
   * A signed token for {@code userId} valid for {@code ttl} from now.
   *
   * @throws IllegalArgumentException if the user id is not valid or the ttl not positive
   */
  public IssuedToken issue(String userId, Duration ttl) {
    if (!UserIds.isValid(userId)) {
      throw new IllegalArgumentException("User id must be " + UserIds.RULE);
    }
    if (ttl.isNegative() || ttl.isZero()) {
      throw new IllegalArgumentException("Token ttl must be positive, not " + ttl);
    }
    Instant now = clock.instant().truncatedTo(ChronoUnit.SECONDS);
    Instant expiresAt = now.plus(ttl).truncatedTo(ChronoUnit.SECONDS);
    JWTClaimsSet claims =
        new JWTClaimsSet.Builder()
            .subject(userId)
            .issueTime(Date.from(now))
            .expirationTime(Date.from(expiresAt))
            .build();
    SignedJWT jwt =
        new SignedJWT(
            new JWSHeader.Builder(JWSAlgorithm.HS256).type(JOSEObjectType.JWT).build(), claims);
    try {
      jwt.sign(signer);
    } catch (JOSEException e) {
      throw new IllegalStateException("Cannot sign a token", e);
    }
    return new IssuedToken(jwt.serialize(), userId, expiresAt);
  }

  /**
   * How long a connection authenticated by a token expiring at {@code expiresAt} may stay open:
   * until its {@code exp} plus the clock skew verification allows (so a token accepted at all is
   * never closed at once), zero if that has passed.
   */
  public Duration untilClose(Instant expiresAt) {
    Duration left = Duration.between(clock.instant(), expiresAt.plus(clockSkew));
    return left.isNegative() ? Duration.ZERO : left;
  }

  /** How long until {@code expiresAt} by this node's clock, zero if it has passed. */
  public Duration untilExpiry(Instant expiresAt) {
    Duration left = Duration.between(clock.instant(), expiresAt);
    return left.isNegative() ? Duration.ZERO : left;
  }

  /**
   * Checks a presented token; {@code null} or blank means none was presented. With an identity
   * provider, a token naming a key not in the cached set fetches the set first (bounded by the
   * JWKS timeout and rate limit).
   */
  public AuthResult verify(String token) {
    if (token == null || token.isBlank()) {
      return new AuthFailure(AuthFailure.TOKEN_MISSING, "No access token was presented");
    }
    if (token.length() > MAX_TOKEN_LENGTH) {
      return malformed("longer than " + MAX_TOKEN_LENGTH + " characters");
    }
    Authenticated known = verified.getIfPresent(token);
    if (known != null) {
      // As the claims verifier judges exp: still good while exp plus the skew, in whole
      // seconds as it is given to that verifier, is ahead.
      if (known.expiresAt().plusSeconds(clockSkew.toSeconds()).isAfter(clock.instant())) {
        return known;
      }
      verified.invalidate(token);
      return expired();
    }
    JWT parsed;
    try {
      parsed = JWTParser.parse(token);
    } catch (ParseException e) {
      return malformed(e.getMessage());
    }
    if (!(parsed instanceof SignedJWT jwt)) {
      return invalid("The token is not signed");
    }
    JOSEObjectType type = jwt.getHeader().getType();
    if (type != null && !TOKEN_TYPES.contains(type)) {
      return invalid("The token's typ must be JWT or at+jwt (or application/ before either), not " + type);
    }
    JWSAlgorithm alg = jwt.getHeader().getAlgorithm();
    Map<String, Object> payload;
    JWTClaimsSet claims;
    try {
      if (JWSAlgorithm.HS256.equals(alg)) {
        if (!jwt.verify(verifier)) {
          return invalid("The token's signature does not verify");
        }
        // Parsed once for the claims and the raw sub below: every connection open verifies a
        // token, and a second parse of the payload was a share of its cost.
        payload = jwt.getPayload().toJSONObject();
        if (payload == null) {
          return malformed("its payload is not a JSON object");
        }
        claims = JWTClaimsSet.parse(payload);
        claimsVerifier.verify(claims, null);
      } else if (provider != null && PROVIDER_ALGORITHMS.contains(alg)) {
        claims = provider.process(jwt, null);
        payload = jwt.getPayload().toJSONObject();
      } else {
        return invalid(
            "The token must be signed with HS256"
                + (provider != null ? ", RS256 or ES256" : "")
                + ", not "
                + alg);
      }
    } catch (ParseException e) {
      return malformed(e.getMessage());
    } catch (ExpiredJWTException e) {
      return expired();
    } catch (BadJWTException e) {
      return invalid("The token's claims are not acceptable: " + e.getMessage());
    } catch (BadJOSEException e) {
      return invalid("The token's signature does not verify against the identity provider's keys: " + e.getMessage());
    } catch (JOSEException e) {
      // Also the key set could not be fetched: the token cannot be trusted either way.
      return invalid("The token's signature cannot be checked: " + e.getMessage());
    }
    AuthFailure timing = lifetime(claims);
    if (timing != null) {
      return timing;
    }
    // The claims parser turns a numeric sub into text; a user id is a string, and a token
    // that says otherwise was not made for this service.
    Object rawSubject = payload.get("sub");
    if (rawSubject != null && !(rawSubject instanceof String)) {
      return malformed("its sub is not a string");
    }
    String subject = claims.getSubject();
    if (!UserIds.isValid(subject)) {
      return new AuthFailure(
          AuthFailure.BAD_USER_ID, "The token's sub must be a user id: " + UserIds.RULE);
    }
    Authenticated user = new Authenticated(subject, claims.getExpirationTime().toInstant());
    if (JWSAlgorithm.HS256.equals(alg)) {
      verified.put(token, user);
    }
    return user;
  }

  /** How many verifications were answered from the tokens already verified (for its test). */
  long verifiedAgain() {
    return verified.stats().hitCount();
  }

  /** The checks of {@code iat} against the clock and {@code exp}; null when they pass. */
  private AuthFailure lifetime(JWTClaimsSet claims) {
    Instant now = clock.instant();
    Instant expiresAt = claims.getExpirationTime().toInstant();
    Instant issuedAt = claims.getIssueTime() == null ? null : claims.getIssueTime().toInstant();
    if (issuedAt != null && issuedAt.isAfter(now.plus(clockSkew))) {
      return new AuthFailure(
          AuthFailure.TOKEN_ISSUED_IN_FUTURE,
          "The token's iat is in the future, beyond the allowed clock skew of "
              + clockSkew.toSeconds()
              + " s: check the issuer's clock");
    }
    Instant from = issuedAt == null ? now : issuedAt;
    if (Duration.between(from, expiresAt).compareTo(maxLifetime) > 0) {
      return new AuthFailure(
          AuthFailure.TOKEN_LIFETIME_TOO_LONG,
          "The token lives longer than the "
              + maxLifetime.toSeconds()
              + " s this node accepts (exp - iat): issue shorter-lived tokens and refresh them");
    }
    return null;
  }

  private static AuthFailure expired() {
    return new AuthFailure(AuthFailure.TOKEN_EXPIRED, "The token has expired");
  }

  private static AuthFailure malformed(String detail) {
    return new AuthFailure(
        AuthFailure.TOKEN_MALFORMED, "The token is not a well-formed JWT: " + detail);
  }

  private static AuthFailure invalid(String message) {
    return new AuthFailure(AuthFailure.TOKEN_INVALID, message);
  }
}
