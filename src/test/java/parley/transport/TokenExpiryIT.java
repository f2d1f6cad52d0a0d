package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.auth.AuthSettings;
import parley.auth.TokenService;
import parley.client.ParleyClient;
import parley.client.ParleyException;
import parley.protocol.Codec;
import parley.testing.InJvmNode;
import parley.testing.PausableSocket;
import parley.testing.SseClient;
import parley.testing.TestCassandra;

/**
 * A connection lives no longer than its token (docs/protocol.md, Token expiry and refresh): over
 * a real socket, a WebSocket is closed {@code 4401 token_expired} when its token expires unless
 * it sent {@code refresh}; an SSE stream sends the same close and ends; a held poll answers.
 * Tokens live two or three seconds, and the node allows no clock skew.
 */
class TokenExpiryIT {

  private static final Duration WAIT = Duration.ofSeconds(20);
  private static InJvmNode node;
  private static TokenService tokens;
  private static AuthSettings auth;

  @BeforeAll
  static void startNode() throws Exception {
    node =
        InJvmNode.start(
            TestCassandra.keyspacesFor("TokenExpiryIT"),
            0,
            0,
            ConfigFactory.parseString("parley.auth.clock-skew = 0s\nparley.auth.token-max-lifetime = 1h\n"
                + "parley.auth.token-ttl = 1h"));
    auth = AuthSettings.from(node.system.settings().config());
    tokens = new TokenService(auth);
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void aWebSocketIsClosedWhenItsTokenExpires() throws Exception {
    TokenService.IssuedToken token = tokens.issue("shortlived", Duration.ofSeconds(2));
    try (Wire wire = Wire.connect(token.token())) {
      long expiresIn = wire.welcome.path("tokenExpiresIn").asLong(-1);
      assertTrue(expiresIn > 0 && expiresIn <= 2000, "welcome tells when the token expires: " + wire.welcome);

      JsonNode close = wire.await(f -> "close".equals(f.path("type").asText()));
      assertFalse(Instant.now().isBefore(token.expiresAt()), "closed before its exp");
      assertEquals(4401, close.path("code").asInt());
      assertEquals("token_expired", close.path("reason").asText());
      assertNotNull(wire.socket.ended().get(WAIT.toSeconds(), TimeUnit.SECONDS));
    }
  }

  @Test
  void aRefreshedConnectionOutlivesItsFirstTokenAndClosesWhenTheNewOneExpires() throws Exception {
    TokenService.IssuedToken first = tokens.issue("refresher", Duration.ofSeconds(2));
    TokenService.IssuedToken watcherToken = tokens.issue("watcher", Duration.ofSeconds(3));
    try (Wire refreshed = Wire.connect(first.token()); Wire watcher = Wire.connect(watcherToken.token())) {
      TokenService.IssuedToken second = tokens.issue("refresher", Duration.ofSeconds(6));
      JsonNode ok = refreshed.request("{\"type\":\"refresh\",\"id\":\"r\",\"token\":\"" + second.token() + "\"}");
      assertEquals("ok", ok.path("type").asText(), ok.toString());
      long expiresIn = ok.path("tokenExpiresIn").asLong();
      assertTrue(expiresIn > 3000 && expiresIn <= 6000, ok.toString());

      // The watcher's token expires a second after the refresher's first one did.
      assertEquals(4401, watcher.await(f -> "close".equals(f.path("type").asText())).path("code").asInt());
      assertEquals("pong", refreshed.request("{\"type\":\"ping\",\"id\":\"alive\"}").path("type").asText());

      JsonNode close = refreshed.await(f -> "close".equals(f.path("type").asText()));
      assertFalse(Instant.now().isBefore(second.expiresAt()), "closed before the new token's exp");
      assertEquals("token_expired", close.path("reason").asText());
    }
  }

  @Test
  void aRefreshThatIsRefusedLeavesTheConnectionAsItWas() throws Exception {
    try (Wire wire = Wire.connect(tokens.issue("keeper", Duration.ofMinutes(5)).token())) {
      JsonNode otherUser = wire.request(refresh("1", tokens.issue("intruder", Duration.ofMinutes(5)).token()));
      assertEquals("token_user_mismatch", otherUser.path("code").asText(), otherUser.toString());
      assertFalse(otherUser.path("message").asText().isBlank());

      JsonNode forged = wire.request(refresh("2", new TokenService(new AuthSettings(
          "another-secret-of-at-least-thirty-two-bytes", Duration.ofHours(1), false, "", Duration.ZERO))
          .issue("keeper", Duration.ofMinutes(5)).token()));
      assertEquals("token_invalid", forged.path("code").asText(), forged.toString());

      Instant now = Instant.now();
      assertEquals("token_expired", wire.request(refresh("3", sign(now.minusSeconds(120), now.minusSeconds(60)))).path("code").asText());
      assertEquals("token_lifetime_too_long", wire.request(refresh("4", sign(now, now.plus(Duration.ofHours(2))))).path("code").asText());
      assertEquals("token_issued_in_future", wire.request(refresh("5", sign(now.plusSeconds(60), now.plusSeconds(120)))).path("code").asText());
      assertEquals("missing_field", wire.request("{\"type\":\"refresh\",\"id\":\"6\"}").path("code").asText());

      assertEquals("pong", wire.request("{\"type\":\"ping\",\"id\":\"7\"}").path("type").asText());
    }
  }

  @Test
  void theClientSdkRefreshesItsConnectionsToken() throws Exception {
    try (ParleyClient client = ParleyClient.connect(node.ws(), tokens.issue("sdkuser", Duration.ofMinutes(5)).token())
        .get(WAIT.toSeconds(), TimeUnit.SECONDS)) {
      Duration left = client.tokenExpiresIn();
      assertTrue(left.compareTo(Duration.ofMinutes(4)) > 0 && left.compareTo(Duration.ofMinutes(5)) <= 0, left.toString());

      Duration refreshed = client.refresh(tokens.issue("sdkuser", Duration.ofMinutes(30)).token())
          .get(WAIT.toSeconds(), TimeUnit.SECONDS);
      assertTrue(refreshed.compareTo(Duration.ofMinutes(29)) > 0, refreshed.toString());

      ExecutionException refused = assertThrows(ExecutionException.class,
          () -> client.refresh(tokens.issue("someoneelse", Duration.ofMinutes(5)).token()).get(WAIT.toSeconds(), TimeUnit.SECONDS));
      assertEquals("token_user_mismatch", ((ParleyException) refused.getCause()).code());
      client.ping().get(WAIT.toSeconds(), TimeUnit.SECONDS);
    }
  }

  @Test
  void tokensTheNodeDoesNotAcceptAreRefusedBeforeTheConnectionStarts() throws Exception {
    Instant now = Instant.now();
    assertEquals("token_lifetime_too_long", refusal(sign(now, now.plus(Duration.ofHours(2)))));
    assertEquals("token_issued_in_future", refusal(sign(now.plusSeconds(60), now.plusSeconds(120))));
  }

  @Test
  void anSseStreamSendsTheCloseAndEndsWhenItsTokenExpires() throws Exception {
    TokenService.IssuedToken token = tokens.issue("ssereader", Duration.ofSeconds(2));
    try (SseClient sse = SseClient.connect(node.http(), token.token(), null)) {
      assertEquals(200, sse.status);
      SseClient.Event welcome = sse.await(e -> "welcome".equals(e.type()), WAIT);
      assertTrue(welcome.data().path("tokenExpiresIn").asLong() > 0, welcome.toString());

      SseClient.Event close = sse.await(e -> "close".equals(e.type()), WAIT);
      assertFalse(Instant.now().isBefore(token.expiresAt()), "closed before its exp");
      assertEquals(4401, close.data().path("code").asInt());
      assertEquals("token_expired", close.data().path("reason").asText());
      sse.ended().get(WAIT.toSeconds(), TimeUnit.SECONDS);
    }
  }

  @Test
  void aHeldPollAnswersWhenItsTokenExpires() throws Exception {
    TokenService.IssuedToken token = tokens.issue("poller", Duration.ofSeconds(2));
    long started = System.nanoTime();
    HttpResponse<String> response = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(node.http().resolve("/v1/poll?timeout=50s"))
            .header("Authorization", "Bearer " + token.token())
            .timeout(WAIT)
            .build(),
        HttpResponse.BodyHandlers.ofString());
    Duration held = Duration.ofNanos(System.nanoTime() - started);

    assertEquals(200, response.statusCode(), response.body());
    assertFalse(Instant.now().isBefore(token.expiresAt()), "answered before its exp");
    assertTrue(held.compareTo(Duration.ofSeconds(20)) < 0, "held " + held);
    JsonNode events = Codec.JSON.readTree(response.body()).path("events");
    JsonNode last = events.get(events.size() - 1);
    assertEquals("close", last.path("type").asText(), response.body());
    assertEquals(4401, last.path("code").asInt());
    assertEquals("token_expired", last.path("reason").asText());

    HttpResponse<String> again = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(node.http().resolve("/v1/poll?timeout=0"))
            .header("Authorization", "Bearer " + token.token())
            .build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(401, again.statusCode());
    assertEquals("token_expired", Codec.JSON.readTree(again.body()).path("code").asText());
  }

  private static String refusal(String token) throws Exception {
    HttpResponse<String> response = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(node.http().resolve("/v1/poll?timeout=0"))
            .header("Authorization", "Bearer " + token)
            .build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(401, response.statusCode(), response.body());
    return Codec.JSON.readTree(response.body()).path("code").asText();
  }

  private static String refresh(String id, String token) {
    return "{\"type\":\"refresh\",\"id\":\"" + id + "\",\"token\":\"" + token + "\"}";
  }

  /** An HS256 token of the node's secret for {@code keeper} with the given iat and exp. */
  private static String sign(Instant iat, Instant exp) throws Exception {
    SignedJWT jwt = new SignedJWT(
        new JWSHeader(JWSAlgorithm.HS256),
        new JWTClaimsSet.Builder().subject("keeper").issueTime(Date.from(iat)).expirationTime(Date.from(exp)).build());
    jwt.sign(new MACSigner(auth.secretBytes()));
    return jwt.serialize();
  }

  /** A raw WebSocket client that answers pings and queues every other frame. */
  private static final class Wire implements AutoCloseable {
    private final LinkedBlockingQueue<JsonNode> frames = new LinkedBlockingQueue<>();
    private PausableSocket socket;
    private JsonNode welcome;

    static Wire connect(String token) throws Exception {
      Wire wire = new Wire();
      wire.socket = PausableSocket.connect(node.ws(), token, frame -> {
        if ("ping".equals(frame.path("type").asText())) {
          wire.socket.send("{\"type\":\"pong\"}");
        } else {
          wire.frames.add(frame);
        }
      });
      wire.welcome = wire.await(f -> true);
      assertEquals("welcome", wire.welcome.path("type").asText());
      return wire;
    }

    JsonNode request(String frame) throws Exception {
      String id = Codec.idIn(frame);
      socket.send(frame);
      return await(f -> id.equals(f.path("id").asText()));
    }

    JsonNode await(Predicate<JsonNode> wanted) throws Exception {
      long deadline = System.nanoTime() + WAIT.toNanos();
      while (true) {
        JsonNode f = frames.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        assertNotNull(f, "no such frame in time");
        if (wanted.test(f)) {
          return f;
        }
      }
    }

    @Override
    public void close() {
      socket.close();
    }
  }
}
