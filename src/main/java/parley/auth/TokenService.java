package parley.auth;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.crypto.MACVerifier;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWT;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.JWTParser;
import com.nimbusds.jwt.SignedJWT;
import com.nimbusds.jwt.proc.BadJWTException;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.ExpiredJWTException;
import java.text.ParseException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Date;
import java.util.Set;
import parley.auth.AuthResult.AuthFailure;
import parley.auth.AuthResult.Authenticated;

/**
 * Issues and verifies the clients' HS256 JWTs. A token names its user in {@code sub} and must carry
 * an {@code exp}; anything not signed with HS256 and this node's secret is refused, so an {@code
 * alg: none} or RS256/HS256-confusion token never reaches the claims check. Thread-safe; build one
 * per node.
 */
public final class TokenService {

  /** Longer than any real token; spares parsing megabytes a client sent as a "token". */
  static final int MAX_TOKEN_LENGTH = 8192;

  /** A freshly issued token and when it expires (whole seconds, as in its {@code exp}). */
  public record IssuedToken(String token, String userId, Instant expiresAt) {}

  private final MACSigner signer;
  private final MACVerifier verifier;
  private final DefaultJWTClaimsVerifier<SecurityContext> claimsVerifier;
  private final Clock clock;

  public TokenService(AuthSettings settings) {
    this(settings, Clock.systemUTC());
  }

  public TokenService(AuthSettings settings, Clock clock) {
    this.clock = clock;
    try {
      this.signer = new MACSigner(settings.secretBytes());
      this.verifier = new MACVerifier(settings.secretBytes());
    } catch (JOSEException e) {
      throw new IllegalArgumentException("Unusable HS256 secret: " + e.getMessage(), e);
    }
    this.claimsVerifier =
        new DefaultJWTClaimsVerifier<>(null, Set.of("exp")) {
          @Override
          protected Date currentTime() {
            return Date.from(clock.instant());
          }
        };
    this.claimsVerifier.setMaxClockSkew(Math.toIntExact(settings.clockSkew().toSeconds()));
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

  /** Checks a presented token; {@code null} or blank means none was presented. */
  public AuthResult verify(String token) {
    if (token == null || token.isBlank()) {
      return new AuthFailure(AuthFailure.TOKEN_MISSING, "No access token was presented");
    }
    if (token.length() > MAX_TOKEN_LENGTH) {
      return malformed("longer than " + MAX_TOKEN_LENGTH + " characters");
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
    if (!JWSAlgorithm.HS256.equals(jwt.getHeader().getAlgorithm())) {
      return invalid("The token must be signed with HS256, not " + jwt.getHeader().getAlgorithm());
    }
    try {
      if (!jwt.verify(verifier)) {
        return invalid("The token's signature does not verify");
      }
    } catch (JOSEException e) {
      return invalid("The token's signature cannot be checked: " + e.getMessage());
    }
    JWTClaimsSet claims;
    try {
      claims = jwt.getJWTClaimsSet();
    } catch (ParseException e) {
      return malformed(e.getMessage());
    }
    try {
      claimsVerifier.verify(claims, null);
    } catch (ExpiredJWTException e) {
      return new AuthFailure(AuthFailure.TOKEN_EXPIRED, "The token has expired");
    } catch (BadJWTException e) {
      return invalid("The token's claims are not acceptable: " + e.getMessage());
    }
    // The claims parser turns a numeric sub into text; a user id is a string, and a token
    // that says otherwise was not made for this service.
    Object rawSubject = jwt.getPayload().toJSONObject().get("sub");
    String subject = claims.getSubject();
    if (!(rawSubject instanceof String) || !UserIds.isValid(subject)) {
      return new AuthFailure(
          AuthFailure.BAD_USER_ID, "The token's sub must be a user id: " + UserIds.RULE);
    }
    return new Authenticated(subject);
  }

  private static AuthFailure malformed(String detail) {
    return new AuthFailure(
        AuthFailure.TOKEN_MALFORMED, "The token is not a well-formed JWT: " + detail);
  }

  private static AuthFailure invalid(String message) {
    return new AuthFailure(AuthFailure.TOKEN_INVALID, message);
  }
}
