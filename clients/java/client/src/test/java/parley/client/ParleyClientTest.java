package parley.client;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.entity;
import static org.apache.pekko.http.javadsl.server.Directives.handleWebSocketMessages;
import static org.apache.pekko.http.javadsl.server.Directives.handleWebSocketMessagesForProtocol;
import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.post;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.ws.Message;
import org.apache.pekko.http.javadsl.model.ws.TextMessage;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.javadsl.Flow;
import org.apache.pekko.stream.javadsl.Source;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The client against a fake Parley node: a Pekko HTTP route that speaks just enough of protocol
 * v1 (see {@link FakeNode}) to exercise connecting, reply matching, errors, timeouts, pushes,
 * fragmented frames and closes.
 */
@ExtendWith(LogCapturingExtension.class)
class ParleyClientTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration WAIT = Duration.ofSeconds(5);

  private static ActorTestKit testKit;
  private static URI httpBase;
  private static URI wsUri;

  private final List<ParleyClient> clients = new ArrayList<>();

  @BeforeAll
  static void startFakeNode() throws Exception {
    testKit =
        ActorTestKit.create(
            "ParleyClientTest",
            ConfigFactory.parseString(
                """
                pekko.actor.provider = local
                pekko.coordinated-shutdown.exit-jvm = off
                """));
    int port =
        Http.get(testKit.system())
            .newServerAt("127.0.0.1", 0)
            .bind(new FakeNode(Materializer.matFromSystem(testKit.system())).routes())
            .toCompletableFuture()
            .get(10, TimeUnit.SECONDS)
            .localAddress()
            .getPort();
    httpBase = URI.create("http://127.0.0.1:" + port);
    wsUri = URI.create("ws://127.0.0.1:" + port + "/v1/ws");
  }

  @AfterAll
  static void stopFakeNode() {
    testKit.shutdownTestKit();
  }

  @AfterEach
  void closeClients() {
    clients.forEach(ParleyClient::close);
  }

  @Test
  void connectCompletesWithTheWelcome() throws Exception {
    ParleyClient client = connect("tok-alice");

    assertEquals("alice", client.userId());
    assertEquals("session-alice", client.sessionId());
    assertEquals("pekko://Fake@127.0.0.1:25520", client.node());
  }

  @Test
  void devTokenIsFetchedFromTheNode() throws Exception {
    String token = ParleyClient.devToken(httpBase, "bob");

    assertEquals("tok-bob", token);
    assertEquals("bob", connect(token).userId());
  }

  @Test
  void refusedUpgradeFailsWithTheHttpStatusAndErrorCode() {
    ParleyException refused =
        failure(ParleyClient.connect(wsUri, "forged", ParleyClient.Options.defaults()));

    assertEquals("token_invalid", refused.code());
    assertEquals(401, refused.httpStatus().orElseThrow());
  }

  @Test
  void serverThatDoesNotSelectTheSubprotocolIsRefused() {
    ParleyException refused = failure(ParleyClient.connect(wsUri, "tok-nosubprotocol"));

    assertEquals(ParleyException.HANDSHAKE_FAILED, refused.code());
  }

  @Test
  void concurrentRequestsGetTheirOwnRepliesWhenRepliesComeOutOfOrder() throws Exception {
    ParleyClient client = connect("tok-alice");
    ExecutorService senders = Executors.newFixedThreadPool(4);
    try {
      List<CompletableFuture<CompletableFuture<JsonNode>>> sent = new ArrayList<>();
      for (int n = 0; n < 200; n++) {
        int number = n;
        sent.add(
            CompletableFuture.supplyAsync(
                () ->
                    client.request(
                        "echo",
                        Map.of("n", number, "delayMs", ThreadLocalRandom.current().nextInt(50))),
                senders));
      }
      Set<String> ids = new HashSet<>();
      for (int n = 0; n < sent.size(); n++) {
        JsonNode reply = sent.get(n).get(5, TimeUnit.SECONDS).get(5, TimeUnit.SECONDS);
        assertEquals(n, reply.get("n").asInt());
        ids.add(reply.get("id").asText());
      }
      assertEquals(200, ids.size());
    } finally {
      senders.shutdownNow();
    }
  }

  @Test
  void errorReplyFailsTheRequestWithTheServerCode() throws Exception {
    ParleyClient client = connect("tok-alice");

    ParleyException error = failure(client.request("fail", Map.of("room", "design")));

    assertEquals("not_a_member", error.code());
    assertTrue(error.getMessage().contains("alice is not a member of room design"));
    assertFalse(error.httpStatus().isPresent());
    // The connection stays usable after an error.
    assertNotNull(client.ping().get(5, TimeUnit.SECONDS));
  }

  @Test
  void requestWithoutReplyTimesOutAndTheLateReplyBecomesAPush() throws Exception {
    ParleyClient client =
        connect(
            "tok-alice",
            ParleyClient.Options.defaults().withRequestTimeout(Duration.ofMillis(200)));

    ParleyException timeout = failure(client.request("echo", Map.of("delayMs", 600)));

    assertEquals(ParleyException.TIMEOUT, timeout.code());
    JsonNode late = client.awaitPush(push -> push.path("type").asText().equals("ok"), WAIT);
    assertEquals(600, late.get("delayMs").asInt());
    assertNotNull(client.ping().get(5, TimeUnit.SECONDS));
  }

  @Test
  void frameSentInPartsIsReassembled() throws Exception {
    ParleyClient client = connect("tok-alice");

    String text = "x".repeat(5000);

    JsonNode reply = client.request("split", Map.of("text", text)).get(5, TimeUnit.SECONDS);

    assertEquals(text, reply.get("text").asText());
  }

  @Test
  void pushesReachListenersInOrderAndAwaitPushSkipsWithoutConsuming() throws Exception {
    ParleyClient client = connect("tok-alice");
    List<String> heard = new CopyOnWriteArrayList<>();
    client.onPush(push -> heard.add(push.get("type").asText()));
    ObjectNode typing = frame("typing").put("room", "general").put("user", "bob");
    ObjectNode presence = frame("presence").put("user", "bob").put("status", "online");
    ObjectNode unknown = frame("sparkle").put("colour", "gold");
    ObjectNode error = frame("error").put("code", "bad_frame").put("message", "not JSON");

    client
        .request("push", Map.of("frames", List.of(typing, presence, unknown, error)))
        .get(5, TimeUnit.SECONDS);

    assertEquals(presence, client.awaitPush(type("presence"), WAIT));
    assertEquals(typing, client.awaitPush(type("typing"), WAIT));
    assertEquals(error, client.awaitPush(type("error"), WAIT));
    assertEquals(List.of("typing", "presence", "sparkle", "error"), heard);
    assertEquals(List.of(typing, presence, unknown, error), client.pushes());
    ParleyException none =
        assertThrows(
            ParleyException.class,
            () -> client.awaitPush(type("presence"), Duration.ofMillis(100)));
    assertEquals(ParleyException.TIMEOUT, none.code());
  }

  @Test
  void answersTheServersHeartbeatPingWithAPongAndKeepsItOutOfThePushes() throws Exception {
    ParleyClient client = connect("tok-alice");

    client.request("push", Map.of("frames", List.of(frame("ping")))).get(5, TimeUnit.SECONDS);

    // The fake node answers a pong with a pong_heard push.
    client.awaitPush(type("pong_heard"), WAIT);
    assertEquals(List.of(frame("pong_heard")), client.pushes(), "the ping itself is no push");
  }

  @Test
  void lastSeqFollowsTheHighestEventPerRoom() throws Exception {
    ParleyClient client = connect("tok-alice");
    ObjectNode stale = frame("event").put("room", "design").put("seq", 1).put("kind", "joined");

    for (int n = 1; n <= 3; n++) {
      client.send("design", "m-" + n, "draft " + n).get(5, TimeUnit.SECONDS);
    }
    client.send("general", "g-1", "hi").get(5, TimeUnit.SECONDS);
    client.request("push", Map.of("frames", List.of(stale))).get(5, TimeUnit.SECONDS);
    client.awaitPush(push -> push.equals(stale), WAIT);

    assertEquals(3, client.lastSeq("design"));
    assertEquals(0, client.lastSeq("elsewhere"));
    assertEquals(Map.of("design", 3L, "general", 1L), client.positions());
    assertEquals(
        Map.of("design", 3L, "general", 1L),
        client.resume(client.positions()).get(5, TimeUnit.SECONDS));
  }

  @Test
  void sendAndSendDmReturnTheStoredPosition() throws Exception {
    ParleyClient client = connect("tok-alice");

    Sent sent = client.send("design", "m-1", "Draft attached").get(5, TimeUnit.SECONDS);
    Sent dm = client.sendDm("bob", "d-1", "psst").get(5, TimeUnit.SECONDS);

    assertEquals("design", sent.room());
    assertEquals(1, sent.seq());
    assertEquals("m-1", sent.clientMsgId());
    assertFalse(sent.duplicate());
    assertFalse(sent.delivered());
    assertTrue(Duration.between(sent.ts(), Instant.now()).abs().toSeconds() < 60);
    assertEquals("dm:alice:bob", dm.room());
    assertTrue(dm.delivered());
    JsonNode event = client.awaitPush(type("event"), WAIT);
    assertEquals("Draft attached", event.get("body").asText());
  }

  @Test
  void typingIsSentWithoutWaitingForAReply() throws Exception {
    ParleyClient client = connect("tok-alice");

    client.typing("general").get(5, TimeUnit.SECONDS);

    JsonNode echoed = client.awaitPush(type("typing"), WAIT);
    assertEquals("general", echoed.get("room").asText());
  }

  @Test
  void serverCloseSurfacesItsCodeAndFailsWhatIsWaiting() throws Exception {
    ParleyClient client = connect("tok-alice");
    CompletableFuture<JsonNode> unanswered = client.request("echo", Map.of("delayMs", 60_000));

    client.request("crash", null);

    // A Pekko HTTP handler whose stream fails closes with 1011 (unexpected condition).
    assertEquals(1011, client.closed().get(5, TimeUnit.SECONDS).code());
    assertEquals(ParleyException.CLOSED, failure(unanswered).code());
    assertEquals(ParleyException.CLOSED, failure(client.ping()).code());
    ParleyException awaiting =
        assertThrows(ParleyException.class, () -> client.awaitPush(type("event"), WAIT));
    assertEquals(ParleyException.CLOSED, awaiting.code());
  }

  @Test
  void closeEndsTheConnectionNormally() throws Exception {
    ParleyClient client = connect("tok-alice");

    client.close();

    CloseStatus status = client.closed().get(5, TimeUnit.SECONDS);
    assertTrue(status.normal(), status.toString());
  }

  private ParleyClient connect(String token) throws Exception {
    return connect(token, ParleyClient.Options.defaults());
  }

  private ParleyClient connect(String token, ParleyClient.Options options) throws Exception {
    ParleyClient client = ParleyClient.connect(wsUri, token, options).get(10, TimeUnit.SECONDS);
    clients.add(client);
    return client;
  }

  private static ParleyException failure(CompletableFuture<?> future) {
    ExecutionException failed =
        assertThrows(ExecutionException.class, () -> future.get(10, TimeUnit.SECONDS));
    return assertInstanceOf(ParleyException.class, failed.getCause());
  }

  private static Predicate<JsonNode> type(String type) {
    return push -> push.path("type").asText().equals(type);
  }

  private static ObjectNode frame(String type) {
    return JSON.createObjectNode().put("type", type);
  }

  /**
   * Just enough of a Parley node. Tokens are {@code tok-<user>}; anything else is refused with
   * 401. Request types: {@code send} and {@code send_dm} push the event and then reply like the
   * real node; {@code fail} answers {@code not_a_member}; {@code push} pushes the given {@code
   * frames} before its reply; {@code split} replies in three WebSocket frames; {@code typing}
   * echoes a typing push; {@code crash} fails the handler, closing the socket; anything else is
   * echoed back as {@code ok}, after {@code delayMs} if given, so replies overtake each other.
   */
  private static final class FakeNode {

    private final Materializer materializer;

    FakeNode(Materializer materializer) {
      this.materializer = materializer;
    }

    Route routes() {
      return concat(
          path(
              segment("v1").slash("ws"),
              () ->
                  optionalHeaderValueByName(
                      "Authorization",
                      header -> {
                        String prefix = "Bearer tok-";
                        if (header.isEmpty() || !header.get().startsWith(prefix)) {
                          return complete(
                              HttpResponse.create()
                                  .withStatus(StatusCodes.UNAUTHORIZED)
                                  .withEntity(
                                      ContentTypes.APPLICATION_JSON,
                                      "{\"type\":\"error\",\"code\":\"token_invalid\","
                                          + "\"message\":\"signature does not verify\"}"));
                        }
                        String user = header.get().substring(prefix.length());
                        return user.equals("nosubprotocol")
                            ? handleWebSocketMessages(session(user))
                            : handleWebSocketMessagesForProtocol(session(user), "parley.v1");
                      })),
          path(
              segment("v1").slash("dev").slash("token"),
              () ->
                  post(
                      () ->
                          entity(
                              Unmarshaller.entityToString(),
                              body -> {
                                String user = parse(body).get("user").asText();
                                return complete(
                                    HttpResponse.create()
                                        .withEntity(
                                            ContentTypes.APPLICATION_JSON,
                                            "{\"token\":\"tok-" + user + "\",\"user\":\"" + user
                                                + "\"}"));
                              }))));
    }

    private Flow<Message, Message, NotUsed> session(String user) {
      Map<String, Long> seqs = new ConcurrentHashMap<>();
      ObjectNode welcome =
          frame("welcome")
              .put("user", user)
              .put("session", "session-" + user)
              .put("node", "pekko://Fake@127.0.0.1:25520")
              .put("protocol", 1);
      return Flow.<Message>create()
          .mapAsync(
              1,
              message ->
                  message
                      .asTextMessage()
                      .getStreamedText()
                      .runFold("", String::concat, materializer))
          .mapAsyncUnordered(64, text -> answer(user, seqs, parse(text)))
          .mapConcat(messages -> messages)
          .prepend(Source.single(TextMessage.create(welcome.toString())));
    }

    private CompletionStage<List<Message>> answer(
        String user, Map<String, Long> seqs, JsonNode request) {
      String id = request.path("id").asText();
      List<Message> out = new ArrayList<>();
      switch (request.get("type").asText()) {
        case "send" -> {
          String room = request.get("room").asText();
          long seq = seqs.merge(room, 1L, Long::sum);
          String ts = Instant.now().toString();
          out.add(text(event(room, seq, ts, user, request)));
          out.add(
              text(
                  ok(id)
                      .put("room", room)
                      .put("seq", seq)
                      .put("ts", ts)
                      .put("clientMsgId", request.get("clientMsgId").asText())
                      .put("duplicate", false)));
        }
        case "send_dm" -> {
          String other = request.get("to").asText();
          String room = "dm:" + String.join(":", List.of(user, other).stream().sorted().toList());
          long seq = seqs.merge(room, 1L, Long::sum);
          String ts = Instant.now().toString();
          out.add(text(event(room, seq, ts, user, request)));
          out.add(
              text(
                  ok(id)
                      .put("room", room)
                      .put("seq", seq)
                      .put("ts", ts)
                      .put("clientMsgId", request.get("clientMsgId").asText())
                      .put("delivered", true)
                      .put("duplicate", false)));
        }
        case "fail" ->
            out.add(
                text(
                    frame("error")
                        .put("id", id)
                        .put("code", "not_a_member")
                        .put(
                            "message",
                            user + " is not a member of room " + request.get("room").asText())));
        case "push" -> {
          request.get("frames").forEach(push -> out.add(text(push)));
          out.add(text(ok(id)));
        }
        case "split" -> {
          String reply = ok(id).put("text", request.get("text").asText()).toString();
          int third = reply.length() / 3;
          out.add(
              TextMessage.create(
                  Source.from(
                      List.of(
                          reply.substring(0, third),
                          reply.substring(third, 2 * third),
                          reply.substring(2 * third)))));
        }
        case "typing" ->
            out.add(
                text(frame("typing").put("room", request.get("room").asText()).put("user", user)));
        case "ping" -> out.add(text(frame("pong").put("id", id)));
        case "pong" -> out.add(text(frame("pong_heard")));
        case "crash" -> {
          return CompletableFuture.failedFuture(new IllegalStateException("node crashed"));
        }
        default -> {
          ObjectNode echo = ((ObjectNode) request.deepCopy()).put("type", "ok");
          out.add(text(echo));
        }
      }
      int delayMs = request.path("delayMs").asInt(0);
      return CompletableFuture.supplyAsync(
          () -> out, CompletableFuture.delayedExecutor(delayMs, TimeUnit.MILLISECONDS));
    }

    private static ObjectNode event(
        String room, long seq, String ts, String user, JsonNode request) {
      return frame("event")
          .put("room", room)
          .put("seq", seq)
          .put("ts", ts)
          .put("kind", "message")
          .put("user", user)
          .put("clientMsgId", request.get("clientMsgId").asText())
          .put("body", request.get("body").asText());
    }

    private static ObjectNode ok(String id) {
      return frame("ok").put("id", id);
    }

    private static Message text(JsonNode frame) {
      return TextMessage.create(frame.toString());
    }

    private static JsonNode parse(String text) {
      try {
        return JSON.readTree(text);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
