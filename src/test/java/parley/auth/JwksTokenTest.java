package parley.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSSigner;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.PlainJWT;
import com.nimbusds.jwt.SignedJWT;
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import parley.auth.AuthResult.AuthFailure;
import parley.auth.AuthResult.Authenticated;

/**
 * RS256 and ES256 tokens of an identity provider, verified against its JWKS as served by a
 * local HTTP server, beside the node's HS256 tokens.
 */
class JwksTokenTest {

  private static final String ISSUER = "https://id.example";
  private static final String AUDIENCE = "parley";

  private final RSAKey rsa = rsa("rsa-1");
  private final ECKey ec = ec("ec-1");
  /** What the provider publishes now; a test rotates keys by changing it. */
  private final List<JWK> published = new CopyOnWriteArrayList<>(List.of(rsa.toPublicJWK(), ec.toPublicJWK()));
  private final AtomicInteger fetches = new AtomicInteger();
  private HttpServer server;
  private TokenService tokens;

  @BeforeEach
  void serveKeys() throws Exception {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.createContext("/jwks.json", exchange -> {
      fetches.incrementAndGet();
      byte[] body = new JWKSet(List.copyOf(published)).toString(true).getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().add("Content-Type", "application/json");
      exchange.sendResponseHeaders(200, body.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(body);
      }
    });
    server.start();
    String url = "http://127.0.0.1:" + server.getAddress().getPort() + "/jwks.json";
    tokens = new TokenService(settings(new JwksSettings(
        url, ISSUER, AUDIENCE, Duration.ofMinutes(5), Duration.ofSeconds(30), Duration.ofSeconds(2))));
  }

  @AfterEach
  void stopServer() {
    server.stop(0);
  }

  @Test
  void validRs256TokenOfTheProviderIsAccepted() {
    Instant exp = inAnHour();
    assertEquals(new Authenticated("alice", exp), tokens.verify(sign(rsa, claims("alice", ISSUER, AUDIENCE, exp))));
  }

  @Test
  void validEs256TokenOfTheProviderIsAccepted() {
    Instant exp = inAnHour();
    assertEquals(new Authenticated("bob", exp), tokens.verify(sign(ec, claims("bob", ISSUER, AUDIENCE, exp))));
  }

  @Test
  void hs256TokensOfTheNodesSecretStillWork() {
    TokenService.IssuedToken issued = tokens.issue("carol", Duration.ofMinutes(5));
    assertEquals(new Authenticated("carol", issued.expiresAt()), tokens.verify(issued.token()));
  }

  @Test
  void aTokenOfAnotherIssuerIsRefused() {
    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(sign(rsa, claims("alice", "https://evil.example", AUDIENCE, inAnHour()))));
    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(sign(rsa, claims("alice", null, AUDIENCE, inAnHour()))));
  }

  @Test
  void aTokenForAnotherAudienceIsRefused() {
    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(sign(rsa, claims("alice", ISSUER, "another-app", inAnHour()))));
    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(sign(ec, claims("alice", ISSUER, null, inAnHour()))));
  }

  @Test
  void anExpiredProviderTokenIsExpired() {
    assertFailure(
        AuthFailure.TOKEN_EXPIRED,
        tokens.verify(sign(rsa, claims("alice", ISSUER, AUDIENCE, Instant.now().minusSeconds(3600)))));
  }

  @Test
  void anUnknownKidFetchesTheKeySetAgainAndFindsTheRotatedKey() {
    assertTrue(tokens.verify(sign(rsa, claims("alice", ISSUER, AUDIENCE, inAnHour()))) instanceof Authenticated);
    assertEquals(1, fetches.get(), "the first token fetches the set");
    assertTrue(tokens.verify(sign(ec, claims("alice", ISSUER, AUDIENCE, inAnHour()))) instanceof Authenticated);
    assertEquals(1, fetches.get(), "known keys come from the cache");

    RSAKey rotated = rsa("rsa-2");
    published.add(rotated.toPublicJWK());
    assertTrue(tokens.verify(sign(rotated, claims("alice", ISSUER, AUDIENCE, inAnHour()))) instanceof Authenticated);
    assertEquals(2, fetches.get(), "the unknown kid fetched the set again");
  }

  @Test
  void forgedKidsCannotMakeTheNodeFetchTheKeySetOverAndOver() {
    assertTrue(tokens.verify(sign(rsa, claims("alice", ISSUER, AUDIENCE, inAnHour()))) instanceof Authenticated);
    for (int i = 0; i < 10; i++) {
      assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(sign(rsa("forged-" + i), claims("alice", ISSUER, AUDIENCE, inAnHour()))));
    }
    assertTrue(fetches.get() <= 2, "fetches within one refetch interval: " + fetches.get());
    assertTrue(tokens.verify(sign(ec, claims("alice", ISSUER, AUDIENCE, inAnHour()))) instanceof Authenticated);
  }

  @Test
  void aSignatureByAnotherKeyUnderAPublishedKidIsRefused() {
    RSAKey impostor = rsa("rsa-1");
    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(sign(impostor, claims("alice", ISSUER, AUDIENCE, inAnHour()))));
  }

  @Test
  void anHs256TokenSignedWithTheProvidersPublicKeyIsRefused() throws Exception {
    JWTClaimsSet claims = claims("alice", ISSUER, AUDIENCE, inAnHour());
    for (byte[] publicKey : List.of(
        rsa.toRSAPublicKey().getEncoded(),
        rsa.toPublicJWK().toJSONString().getBytes(StandardCharsets.UTF_8),
        ec.toPublicJWK().toJSONString().getBytes(StandardCharsets.UTF_8))) {
      SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.HS256).keyID(rsa.getKeyID()).build(), claims);
      jwt.sign(new MACSigner(publicKey));
      assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(jwt.serialize()));
    }
  }

  @Test
  void anUnsignedTokenIsRefused() {
    assertFailure(AuthFailure.TOKEN_INVALID, tokens.verify(new PlainJWT(claims("alice", ISSUER, AUDIENCE, inAnHour())).serialize()));
  }

  @Test
  void withoutAProviderRs256TokensAreRefused() {
    TokenService hs256Only = new TokenService(settings(JwksSettings.none()));
    AuthResult result = hs256Only.verify(sign(rsa, claims("alice", ISSUER, AUDIENCE, inAnHour())));
    assertFailure(AuthFailure.TOKEN_INVALID, result);
    assertEquals(0, fetches.get());
  }

  private static AuthSettings settings(JwksSettings jwks) {
    return new AuthSettings(
        TokenServiceTest.SECRET, Duration.ofHours(1), false, "", Duration.ofSeconds(30), Duration.ofHours(24), jwks);
  }

  private static Instant inAnHour() {
    return Instant.now().plusSeconds(3600).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
  }

  private static JWTClaimsSet claims(String sub, String iss, String aud, Instant exp) {
    JWTClaimsSet.Builder claims =
        new JWTClaimsSet.Builder().subject(sub).issueTime(new Date()).expirationTime(Date.from(exp));
    if (iss != null) {
      claims.issuer(iss);
    }
    if (aud != null) {
      claims.audience(aud);
    }
    return claims.build();
  }

  private static String sign(JWK key, JWTClaimsSet claims) {
    try {
      JWSAlgorithm alg = key instanceof RSAKey ? JWSAlgorithm.RS256 : JWSAlgorithm.ES256;
      JWSSigner signer = key instanceof RSAKey r ? new RSASSASigner(r) : new ECDSASigner((ECKey) key);
      SignedJWT jwt =
          new SignedJWT(new JWSHeader.Builder(alg).keyID(key.getKeyID()).type(JOSEObjectType.JWT).build(), claims);
      jwt.sign(signer);
      return jwt.serialize();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static RSAKey rsa(String kid) {
    try {
      return new RSAKeyGenerator(2048).keyID(kid).generate();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static ECKey ec(String kid) {
    try {
      return new ECKeyGenerator(Curve.P_256).keyID(kid).generate();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static void assertFailure(String code, AuthResult result) {
    assertTrue(
        result instanceof AuthFailure f && f.code().equals(code),
        () -> "expected " + code + " but was " + result);
  }
}
