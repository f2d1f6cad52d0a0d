package parley.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.PlainJWT;
import com.nimbusds.jwt.SignedJWT;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Date;
import org.junit.jupiter.api.Test;
import parley.auth.AuthResult.AuthFailure;
import parley.auth.AuthResult.Authenticated;
import parley.testing.ManualClock;

class TokenServiceTest {

  /** 64 bytes, so the same key also makes a valid HS512 signature for the wrong-alg case. */
  static final String SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

  private static final Instant NOW = Instant.parse("2025-06-01T12:00:00Z");

  private final TokenService tokens = service(SECRET, NOW);

  @Test
  void issuedTokenVerifiesAsItsUser() {
    TokenService.IssuedToken issued = tokens.issue("alice", Duration.ofHours(1));

    assertEquals(new Authenticated("alice", issued.expiresAt()), tokens.verify(issued.token()));
    assertEquals(NOW.plus(Duration.ofHours(1)), issued.expiresAt());
  }

  @Test
  void issuedTokenIsHs256WithSubIatAndExp() throws Exception {
    SignedJWT jwt = SignedJWT.parse(tokens.issue("alice", Duration.ofMinutes(5)).token());
    JWTClaimsSet claims = jwt.getJWTClaimsSet();

    assertEquals(JWSAlgorithm.HS256, jwt.getHeader().getAlgorithm());
    assertEquals("alice", claims.getSubject());
    assertEquals(Date.from(NOW), claims.getIssueTime());
    assertEquals(Date.from(NOW.plusSeconds(300)), claims.getExpirationTime());
  }

  @Test
  void expiredTokenIsRefusedAsExpired() {
    String token =
        service(SECRET, NOW.minus(Duration.ofHours(2))).issue("alice", Duration.ofHours(1)).token();

    assertFailure(AuthFailure.TOKEN_EXPIRED, tokens.verify(token));
  }

  @Test
  void tokenJustPastExpiryIsAcceptedWithinClockSkew() {
    String token =
        service(SECRET, NOW.minusSeconds(70)).issue("alice", Duration.ofMinutes(1)).token();

    assertEquals(new Authenticated("alice", NOW.minusSeconds(10)), tokens.verify(token));
  }

  @Test
  void aTokenPresentedAgainIsNotCheckedAgainButStillExpires() {
    ManualClock clock = new ManualClock(NOW.toEpochMilli());
    TokenService service =
        new TokenService(new AuthSettings(SECRET, Duration.ofHours(24), false, "", Duration.ofSeconds(30)), clock);
    String token = service.issue("alice", Duration.ofMinutes(1)).token();
    Authenticated alice = new Authenticated("alice", NOW.plusSeconds(60));

    assertEquals(alice, service.verify(token));
    assertEquals(0, service.verifiedAgain());
    assertEquals(alice, service.verify(token));
    assertEquals(1, service.verifiedAgain());
    // A byte changed in its signature is another text, checked in full.
    String forged = token.substring(0, token.length() - 2) + (token.endsWith("A") ? "B" : "A") + token.charAt(token.length() - 1);
    assertFailure(AuthFailure.TOKEN_INVALID, service.verify(forged));

    clock.advance(Duration.ofSeconds(60 + 29));
    assertEquals(alice, service.verify(token), "within the clock skew after exp");
    clock.advance(Duration.ofSeconds(2));
    assertFailure(AuthFailure.TOKEN_EXPIRED, service.verify(token));
    assertFailure(AuthFailure.TOKEN_EXPIRED, service.verify(token));
  }

  @Test
  void forgedClaimsUnderTheOriginalSignatureAreRefused() throws Exception {
    SignedJWT genuine = SignedJWT.parse(tokens.issue("alice", Duration.ofHours(1)).token());
    String forgedPayload =
        Base64URL.encode(claims("mallory", NOW.plusSeconds(3600)).toString()).toString();
    String forged =
        genuine.getHeader().toBase64URL() + "." + forgedPayload + "." + genuine.getSignature();

    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(forged));
  }

  @Test
  void unsignedAlgNoneTokenIsRefused() {
    String token = new PlainJWT(claims("alice", NOW.plusSeconds(3600))).serialize();

    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(token));
  }

  @Test
  void tokenSignedWithAnotherHmacAlgorithmIsRefused() throws Exception {
    String token = sign(JWSAlgorithm.HS512, SECRET, claims("alice", NOW.plusSeconds(3600)));

    AuthResult result = tokens.verify(token);

    assertFailure(AuthFailure.TOKEN_INVALID, result);
    assertTrue(((AuthFailure) result).message().contains("HS256"));
  }

  @Test
  void tokenSignedWithAnotherKeyIsRefused() {
    String otherSecret = "another-secret-another-secret-another-secret";
    String token = service(otherSecret, NOW).issue("alice", Duration.ofHours(1)).token();

    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(token));
  }

  @Test
  void tokenWithoutExpiryIsRefused() throws Exception {
    String token =
        sign(JWSAlgorithm.HS256, SECRET, new JWTClaimsSet.Builder().subject("alice").build());

    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(token));
  }

  @Test
  void tokenLivingLongerThanTheMaximumLifetimeIsRefused() throws Exception {
    Instant exp = NOW.plus(Duration.ofHours(24)).plusSeconds(1);
    String tooLong =
        sign(JWSAlgorithm.HS256, SECRET, new JWTClaimsSet.Builder().subject("alice")
            .issueTime(Date.from(NOW)).expirationTime(Date.from(exp)).build());
    String withoutIat = sign(JWSAlgorithm.HS256, SECRET, claims("alice", exp));
    String justRight =
        sign(JWSAlgorithm.HS256, SECRET, new JWTClaimsSet.Builder().subject("alice")
            .issueTime(Date.from(NOW)).expirationTime(Date.from(exp.minusSeconds(1))).build());

    assertFailure(AuthFailure.TOKEN_LIFETIME_TOO_LONG, tokens.verify(tooLong));
    assertFailure(AuthFailure.TOKEN_LIFETIME_TOO_LONG, tokens.verify(withoutIat));
    assertEquals(new Authenticated("alice", exp.minusSeconds(1)), tokens.verify(justRight));
  }

  @Test
  void tokenIssuedInTheFutureBeyondTheClockSkewIsRefused() throws Exception {
    String future =
        sign(JWSAlgorithm.HS256, SECRET, new JWTClaimsSet.Builder().subject("alice")
            .issueTime(Date.from(NOW.plusSeconds(31))).expirationTime(Date.from(NOW.plusSeconds(3600))).build());
    String withinSkew =
        sign(JWSAlgorithm.HS256, SECRET, new JWTClaimsSet.Builder().subject("alice")
            .issueTime(Date.from(NOW.plusSeconds(30))).expirationTime(Date.from(NOW.plusSeconds(3600))).build());

    assertFailure(AuthFailure.TOKEN_ISSUED_IN_FUTURE, tokens.verify(future));
    assertTrue(tokens.verify(withinSkew) instanceof Authenticated);
  }

  @Test
  void aConnectionClosesAtItsTokensExpiryPlusTheClockSkew() {
    assertEquals(Duration.ofSeconds(90), tokens.untilClose(NOW.plusSeconds(60)));
    assertEquals(Duration.ofSeconds(60), tokens.untilExpiry(NOW.plusSeconds(60)));
    assertEquals(Duration.ZERO, tokens.untilClose(NOW.minusSeconds(31)));
    assertEquals(Duration.ZERO, tokens.untilExpiry(NOW.minusSeconds(1)));
  }

  @Test
  void garbageIsMalformed() {
    assertFailure(AuthFailure.TOKEN_MALFORMED, tokens.verify("not-a-jwt"));
    assertFailure(AuthFailure.TOKEN_MALFORMED, tokens.verify("a.b.c"));
    assertFailure(
        AuthFailure.TOKEN_MALFORMED, tokens.verify("x".repeat(TokenService.MAX_TOKEN_LENGTH + 1)));
  }

  @Test
  void absentTokenIsMissing() {
    assertFailure(AuthFailure.TOKEN_MISSING, tokens.verify(null));
    assertFailure(AuthFailure.TOKEN_MISSING, tokens.verify(""));
    assertFailure(AuthFailure.TOKEN_MISSING, tokens.verify("  "));
  }

  @Test
  void signedTokenWithBadOrNoSubjectIsBadUserId() throws Exception {
    Instant exp = NOW.plusSeconds(3600);
    for (String sub : new String[] {"has space", "a/b", "x".repeat(65), ""}) {
      String token = sign(JWSAlgorithm.HS256, SECRET, claims(sub, exp));
      assertFailure(AuthFailure.BAD_USER_ID, tokens.verify(token));
    }
    String noSub =
        sign(
            JWSAlgorithm.HS256,
            SECRET,
            new JWTClaimsSet.Builder().expirationTime(Date.from(exp)).build());
    assertFailure(AuthFailure.BAD_USER_ID, tokens.verify(noSub));
  }

  @Test
  void aSubThatIsNotAStringIsMalformed() throws Exception {
    // A numeric sub would pass as the text "12345" through the claims parser: refused.
    for (Object sub : new Object[] {12345, true, java.util.List.of("alice")}) {
      String token =
          sign(
              JWSAlgorithm.HS256,
              SECRET,
              new JWTClaimsSet.Builder().claim("sub", sub).expirationTime(Date.from(NOW.plusSeconds(3600))).build());
      assertFailure(AuthFailure.TOKEN_MALFORMED, tokens.verify(token));
    }
  }

  @Test
  void issuingForAnInvalidUserIdIsRejected() {
    assertThrows(
        IllegalArgumentException.class, () -> tokens.issue("bad user", Duration.ofHours(1)));
    assertThrows(IllegalArgumentException.class, () -> tokens.issue("alice", Duration.ZERO));
  }

  @Test
  void userIdRuleAllowsOnlyShortSafeIds() {
    assertTrue(UserIds.isValid("alice"));
    assertTrue(UserIds.isValid("A.b-c_9"));
    assertTrue(UserIds.isValid("x".repeat(64)));
    for (String bad :
        new String[] {null, "", "x".repeat(65), "a b", "a/b", "\u00e9", "a@b", "a:b"}) {
      assertTrue(!UserIds.isValid(bad), "should be invalid: " + bad);
    }
  }

  static TokenService service(String secret, Instant now) {
    AuthSettings settings =
        new AuthSettings(secret, Duration.ofHours(24), false, "", Duration.ofSeconds(30));
    return new TokenService(settings, Clock.fixed(now, ZoneOffset.UTC));
  }

  @Test
  void anHs256TokenOfAnotherTypIsInvalidAndOneWithoutTypPasses() throws Exception {
    JWTClaimsSet claims = claims("alice", NOW.plusSeconds(3600));
    for (String typ : new String[] {"foo", "secevent+jwt"}) {
      SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.HS256).type(new JOSEObjectType(typ)).build(), claims);
      jwt.sign(new MACSigner(SECRET.getBytes(StandardCharsets.UTF_8)));
      assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(jwt.serialize()));
    }
    for (JOSEObjectType typ : new JOSEObjectType[] {
        null, JOSEObjectType.JWT, new JOSEObjectType("at+jwt"), new JOSEObjectType("application/jwt"), new JOSEObjectType("application/at+jwt")}) {
      SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.HS256).type(typ).build(), claims);
      jwt.sign(new MACSigner(SECRET.getBytes(StandardCharsets.UTF_8)));
      assertTrue(tokens.verify(jwt.serialize()) instanceof Authenticated, "typ " + typ);
    }
  }

  private static JWTClaimsSet claims(String sub, Instant exp) {
    return new JWTClaimsSet.Builder().subject(sub).expirationTime(Date.from(exp)).build();
  }

  private static String sign(JWSAlgorithm alg, String secret, JWTClaimsSet claims)
      throws Exception {
    SignedJWT jwt =
        new SignedJWT(new JWSHeader.Builder(alg).type(JOSEObjectType.JWT).build(), claims);
    jwt.sign(new MACSigner(secret.getBytes(StandardCharsets.UTF_8)));
    return jwt.serialize();
  }

  private static void assertFailure(String code, AuthResult result) {
    assertTrue(
        result instanceof AuthFailure f && f.code().equals(code),
        () -> "expected " + code + " but was " + result);
  }
}
