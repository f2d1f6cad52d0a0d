package parley.auth;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.handleWebSocketMessagesForProtocol;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.model.ws.Message;
import org.apache.pekko.http.javadsl.model.ws.TextMessage;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.stream.javadsl.Flow;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import parley.auth.AuthResult.Authenticated;

/**
 * The auth routes on a real server: the dev token endpoint, and the token and server-key directives
 * wrapped around small probe routes ({@code /whoami}, {@code /ws}, {@code /publish}) that answer
 * with the authenticated user.
 */
@ExtendWith(LogCapturingExtension.class)
class AuthRoutesTest {

  private static final String SERVER_KEY = "backend-server-key-0123456789";
  private static final ObjectMapper JSON = new ObjectMapper();

  private static ActorTestKit testKit;
  private static HttpClient client;
  private static TokenService tokens;
  private static URI devOn;
  private static URI devOff;

  @BeforeAll
  static void startServers() throws Exception {
    testKit =
        ActorTestKit.create(
            "AuthRoutesTest",
            ConfigFactory.parseString(
                    """
                    pekko.actor.provider = local
                    pekko.coordinated-shutdown.exit-jvm = off
                    """)
                .withFallback(ConfigFactory.load()));
    client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    AuthSettings on =
        new AuthSettings(
            TokenServiceTest.SECRET,
            Duration.ofHours(24),
            true,
            SERVER_KEY,
            Duration.ofSeconds(30));
    AuthSettings off =
        new AuthSettings(
            TokenServiceTest.SECRET, Duration.ofHours(24), false, "", Duration.ofSeconds(30));
    tokens = new TokenService(on);
    devOn = bind(routes(on, tokens));
    devOff = bind(routes(off, new TokenService(off)));
  }

  @AfterAll
  static void stopServers() {
    testKit.shutdownTestKit();
  }

  @Test
  void devTokenIsIssuedAndVerifiable() throws Exception {
    HttpResponse<String> response = post(devOn, "/v1/dev/token", "{\"user\":\"alice\"}");

    assertEquals(200, response.statusCode());
    JsonNode body = JSON.readTree(response.body());
    assertEquals("alice", body.get("user").textValue());
    Instant expiresAt = Instant.parse(body.get("expiresAt").textValue());
    assertEquals(new Authenticated("alice", expiresAt), tokens.verify(body.get("token").textValue()));
    Instant expected = Instant.now().plus(Duration.ofHours(24));
    assertTrue(Duration.between(expiresAt, expected).abs().toSeconds() < 60, expiresAt.toString());
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "not json             | bad_request",
        "[\"alice\"]          | bad_request",
        "{}                   | bad_request",
        "{\"user\":42}        | bad_request",
        "{\"user\":\"a b\"}   | bad_user_id",
        "{\"user\":\"\"}      | bad_user_id",
      })
  void badDevTokenRequestIs400WithCode(String requestBody, String code) throws Exception {
    HttpResponse<String> response = post(devOn, "/v1/dev/token", requestBody);

    assertEquals(400, response.statusCode());
    assertError(code, response);
  }

  @Test
  void devTokenRouteIsAbsentWhenDevTokensAreOff() throws Exception {
    assertEquals(404, post(devOff, "/v1/dev/token", "{\"user\":\"alice\"}").statusCode());
  }

  @Test
  void tokenInAuthorizationHeaderAuthenticates() throws Exception {
    HttpResponse<String> response =
        get(devOn, "/whoami", "Authorization", "Bearer " + token("alice"));

    assertEquals(200, response.statusCode());
    assertEquals("alice", response.body());
  }

  @Test
  void tokenInQueryAuthenticates() throws Exception {
    HttpResponse<String> response = get(devOn, "/whoami?access_token=" + token("bob"));

    assertEquals(200, response.statusCode());
    assertEquals("bob", response.body());
  }

  @Test
  void tokenInSubprotocolAuthenticatesAWebSocket() throws Exception {
    CompletableFuture<String> firstMessage = new CompletableFuture<>();
    WebSocket socket =
        client
            .newWebSocketBuilder()
            .subprotocols("parley.v1", AuthRoutes.SUBPROTOCOL_PREFIX + token("carol"))
            .buildAsync(
                URI.create("ws://127.0.0.1:" + devOn.getPort() + "/ws"),
                new WebSocket.Listener() {
                  @Override
                  public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
                    firstMessage.complete(data.toString());
                    return null;
                  }
                })
            .get(10, TimeUnit.SECONDS);

    assertEquals("carol", firstMessage.get(10, TimeUnit.SECONDS));
    assertEquals("parley.v1", socket.getSubprotocol());
    socket.abort();
  }

  @Test
  void aSubprotocolTokenCountsOnlyOnAWebSocketUpgrade() throws Exception {
    HttpResponse<String> response =
        get(devOn, "/whoami", "Sec-WebSocket-Protocol", "parley.v1, bearer." + token("dave"));

    assertEquals(401, response.statusCode());
    assertError("token_missing", response);
  }

  @Test
  void twoAuthorizationHeadersAreRefusedEvenIfBothAreGood() throws Exception {
    String good = token("alice");
    HttpResponse<String> response =
        get(devOn, "/whoami", "Authorization", "Bearer " + good, "Authorization", "Bearer " + good);

    assertEquals(401, response.statusCode());
    assertError("token_malformed", response);
  }

  @Test
  void missingTokenIs401TokenMissingWithBearerChallenge() throws Exception {
    HttpResponse<String> response = get(devOn, "/whoami");

    assertEquals(401, response.statusCode());
    assertError("token_missing", response);
    assertTrue(response.headers().firstValue("WWW-Authenticate").orElse("").startsWith("Bearer"));
  }

  @Test
  void forgedTokenIs401TokenInvalidWherever() throws Exception {
    String forged = token("alice") + "x";

    assertError("token_invalid", get(devOn, "/whoami", "Authorization", "Bearer " + forged));
    assertError("token_invalid", get(devOn, "/whoami?access_token=" + forged));
  }

  @Test
  void headerTokenWinsOverQueryTokenEvenWhenBad() throws Exception {
    String good = token("alice");
    String forged = good + "x";

    HttpResponse<String> badHeader =
        get(devOn, "/whoami?access_token=" + good, "Authorization", "Bearer " + forged);
    HttpResponse<String> goodHeader =
        get(devOn, "/whoami?access_token=" + forged, "Authorization", "Bearer " + good);

    assertEquals(401, badHeader.statusCode());
    assertEquals(200, goodHeader.statusCode());
  }

  @Test
  void nonBearerAuthorizationIsIgnoredForTheQueryToken() throws Exception {
    HttpResponse<String> response =
        get(devOn, "/whoami?access_token=" + token("erin"), "Authorization", "Basic dXNlcjpwYXNz");

    assertEquals(200, response.statusCode());
    assertEquals("erin", response.body());
  }

  @Test
  void publishApiNeedsTheServerKey() throws Exception {
    assertEquals(200, get(devOn, "/publish", "Authorization", "Bearer " + SERVER_KEY).statusCode());
    assertError("server_key_missing", get(devOn, "/publish"));
    assertError(
        "server_key_invalid", get(devOn, "/publish", "Authorization", "Bearer " + token("alice")));
  }

  @Test
  void publishApiIsAbsentWithoutAServerKey() throws Exception {
    assertEquals(
        404, get(devOff, "/publish", "Authorization", "Bearer " + SERVER_KEY).statusCode());
  }

  private static Route routes(AuthSettings settings, TokenService tokens) {
    ServerCredential server = ServerCredential.from(settings);
    return concat(
        pathPrefix("v1", () -> AuthRoutes.create(settings, tokens)),
        path("whoami", () -> AuthRoutes.authenticated(tokens, user -> complete(user.userId()))),
        path(
            "ws",
            () ->
                AuthRoutes.authenticated(
                    tokens,
                    user ->
                        handleWebSocketMessagesForProtocol(greeting(user.userId()), "parley.v1"))),
        path("publish", () -> AuthRoutes.serverAuthenticated(server, () -> complete("published"))));
  }

  private static Flow<Message, Message, NotUsed> greeting(String userId) {
    return Flow.fromSinkAndSourceCoupled(
        Sink.ignore(), Source.<Message>single(TextMessage.create(userId)).concat(Source.never()));
  }

  private static URI bind(Route route) throws Exception {
    int port =
        Http.get(testKit.system())
            .newServerAt("127.0.0.1", 0)
            .bind(route)
            .toCompletableFuture()
            .get(10, TimeUnit.SECONDS)
            .localAddress()
            .getPort();
    return URI.create("http://127.0.0.1:" + port);
  }

  private static String token(String user) {
    return tokens.issue(user, Duration.ofMinutes(5)).token();
  }

  private static HttpResponse<String> post(URI server, String path, String body) throws Exception {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(server + path))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    return client.send(request, HttpResponse.BodyHandlers.ofString());
  }

  private static HttpResponse<String> get(URI server, String path, String... headers)
      throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(server + path)).GET();
    if (headers.length > 0) {
      request.headers(headers);
    }
    return client.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static void assertError(String code, HttpResponse<String> response) throws Exception {
    JsonNode body = JSON.readTree(response.body());
    assertEquals("error", body.path("type").textValue(), response.body());
    assertEquals(code, body.path("code").textValue(), response.body());
    assertFalse(body.path("message").asText().isEmpty(), response.body());
  }
}
