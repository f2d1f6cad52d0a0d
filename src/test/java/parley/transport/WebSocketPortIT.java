package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.testing.InJvmNode;
import parley.testing.NodeProcess;
import parley.testing.TestCassandra;
import parley.transport.websocket.NettyWebSocketServer;

/**
 * The WebSocket port on Netty ({@code parley.http.websocket-port}) through the wire: what its
 * edge does itself (the HTTP before the upgrade, the request-head deadline, frame sizes, close
 * codes). The protocol behind it is the client port's, and every WebSocket suite runs against
 * this port too with {@code -Dparley.test.websocket=netty} (README, "Run the tests").
 */
class WebSocketPortIT {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static InJvmNode node;
  private static int port;

  @BeforeAll
  static void startNode() throws Exception {
    port = NodeProcess.freePort();
    node =
        InJvmNode.start(
            TestCassandra.keyspacesFor("WebSocketPortIT"),
            0,
            0,
            ConfigFactory.parseString(
                "parley.http.websocket-port = " + port + "\n"
                    // Long enough that a stalled test JVM (a GC pause between connect and
                    // the upgrade's first byte) does not meet it in the other tests.
                    + "parley.http.request-header-timeout = 3s\n"
                    + "parley.http.allowed-origins = \"https://app.example\"\n"
                    + "parley.chat.max-connections-per-user = 2"));
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  private static URI ws() {
    return URI.create("ws://127.0.0.1:" + port + "/v1/ws");
  }

  @Test
  void aMessageSentOnTheWebSocketPortReachesAMemberOnTheClientPort() throws Exception {
    String alice = node.token("port-alice");
    String bob = node.token("port-bob");
    try (JdkWebSocket a = JdkWebSocket.open(ws(), alice, "parley.v1"); JdkWebSocket b = JdkWebSocket.open(node.clientPortWs(), bob, "parley.v1")) {
      assertEquals("parley.v1", a.socket.getSubprotocol(), "the subprotocol is chosen as on the client port");
      a.await("welcome");
      b.await("welcome");
      a.send("{\"type\":\"resume\",\"id\":\"r\"}");
      assertEquals("ok", a.awaitReply("r").path("type").asText());
      a.send("{\"type\":\"create_room\",\"id\":\"c\",\"room\":\"ports\"}");
      a.awaitReply("c");
      b.send("{\"type\":\"join\",\"id\":\"j\",\"room\":\"ports\"}");
      b.awaitReply("j");
      b.send("{\"type\":\"resume\",\"id\":\"r\"}");
      assertEquals("ok", b.awaitReply("r").path("type").asText());
      a.send("{\"type\":\"send\",\"id\":\"s\",\"room\":\"ports\",\"clientMsgId\":\"m1\",\"body\":\"über ✓ 𝄞\"}");
      assertEquals("ok", a.awaitReply("s").path("type").asText());
      JsonNode event = b.await("event");
      while (!"message".equals(event.path("kind").asText())) {
        event = b.await("event"); // bob's own join comes first
      }
      assertEquals("über ✓ 𝄞", event.path("body").asText(), event.toString());
    }
  }

  @Test
  void upgradesAreAdmittedByTheClientPortsRules() throws Exception {
    WebSocketHandshakeException missing = refused(HttpClient.newHttpClient().newWebSocketBuilder());
    assertEquals(401, missing.getResponse().statusCode());
    assertEquals("token_missing", JSON.readTree(String.valueOf(missing.getResponse().body())).path("code").asText());
    assertTrue(missing.getResponse().headers().firstValue("WWW-Authenticate").orElse("").startsWith("Bearer"));

    String token = node.token("port-origin");
    WebSocketHandshakeException foreign =
        refused(HttpClient.newHttpClient().newWebSocketBuilder().header("Origin", "http://evil.example").header("Authorization", "Bearer " + token));
    assertEquals(403, foreign.getResponse().statusCode());
    assertEquals("origin_not_allowed", JSON.readTree(String.valueOf(foreign.getResponse().body())).path("code").asText());

    // An allowed origin, and the node's own pages (served on the client port), may connect.
    // Each as a user of its own: the node allows two connections per user here, and a socket
    // just aborted may still count for a moment.
    String[] origins = {"https://app.example", node.http().toString().replaceAll("/$", "")};
    for (int i = 0; i < origins.length; i++) {
      try (JdkWebSocket page = JdkWebSocket.open(ws(), node.token("port-page-" + i), "parley.v1", "Origin", origins[i])) {
        page.await("welcome");
      }
    }
    // The token may travel as a subprotocol entry, as browsers send it; it is never echoed.
    try (JdkWebSocket browser = JdkWebSocket.open(ws(), null, "bearer." + node.token("port-browser"), "parley.v1")) {
      browser.await("welcome");
      assertEquals("parley.v1", browser.socket.getSubprotocol());
    }
  }

  private static WebSocketHandshakeException refused(WebSocket.Builder builder) {
    ExecutionException failed =
        assertThrows(ExecutionException.class, () -> builder.buildAsync(ws(), new WebSocket.Listener() {}).get(20, TimeUnit.SECONDS));
    return assertInstanceOf(WebSocketHandshakeException.class, failed.getCause());
  }

  @Test
  void anythingButTheUpgradeIsAnsweredAndClosed() throws Exception {
    assertTrue(exchange("GET /v1/rooms HTTP/1.1\r\nHost: x\r\n\r\n").startsWith("HTTP/1.1 404"));
    assertTrue(exchange("POST /v1/ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").startsWith("HTTP/1.1 405"));
    String token = node.token("port-plain");
    assertTrue(exchange("GET /v1/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n").startsWith("HTTP/1.1 400"));
    assertTrue(exchange("NONSENSE\r\n\r\n").startsWith("HTTP/1.1 400"));
  }

  /** Sends {@code request} and reads until the server closes; a closed connection is part of the answer. */
  private static String exchange(String request) throws Exception {
    try (Socket socket = new Socket("127.0.0.1", port)) {
      socket.setSoTimeout(20_000);
      socket.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  /**
   * RFC 6455 §4.1 tells clients to wait for the 101 before sending frames; one that does not
   * still gets its frames answered, in order, here (the session starts after the 101 is written).
   */
  @Test
  void framesSentRightBehindTheUpgradeRequestAreServedInOrder() throws Exception {
    URI uri = ws();
    try (Socket socket = new Socket("127.0.0.1", uri.getPort())) {
      socket.setSoTimeout(20_000);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      out.write(("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:" + uri.getPort() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
          + "Authorization: Bearer " + node.token("port-eager") + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      for (String frame : new String[] {"{\"type\":\"ping\",\"id\":\"early-1\"}", "{\"type\":\"ping\",\"id\":\"early-2\"}"}) {
        byte[] payload = frame.getBytes(StandardCharsets.UTF_8);
        out.write(0x81); // FIN, text
        out.write(0x80 | payload.length); // masked, with the key 0 0 0 0
        out.write(new byte[4]);
        out.write(payload);
      }
      socket.getOutputStream().write(out.toByteArray()); // one write: the frames ride with the upgrade
      InputStream in = socket.getInputStream();
      String head = readHead(in);
      assertTrue(head.startsWith("HTTP/1.1 101"), head);
      java.util.List<String> answered = new java.util.ArrayList<>();
      while (answered.size() < 2) {
        JsonNode frame = JSON.readTree(readServerFrame(in));
        if (frame.path("id").asText().startsWith("early-")) {
          assertEquals("pong", frame.path("type").asText(), frame.toString());
          answered.add(frame.path("id").asText());
        }
      }
      assertEquals(java.util.List.of("early-1", "early-2"), answered, "both, in order");
    }
  }

  private static String readHead(InputStream in) throws Exception {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    while (!head.toString(StandardCharsets.US_ASCII).endsWith("\r\n\r\n")) {
      int b = in.read();
      if (b < 0) {
        throw new AssertionError("closed in the head: " + head);
      }
      head.write(b);
    }
    return head.toString(StandardCharsets.US_ASCII);
  }

  /** One unmasked, unfragmented frame from the server, as text. */
  private static String readServerFrame(InputStream in) throws Exception {
    byte[] header = in.readNBytes(2);
    long length = header[1] & 0x7F;
    if (length == 126) {
      byte[] extended = in.readNBytes(2);
      length = ((extended[0] & 0xFF) << 8) | (extended[1] & 0xFF);
    } else if (length == 127) {
      length = java.nio.ByteBuffer.wrap(in.readNBytes(8)).getLong();
    }
    return new String(in.readNBytes((int) length), StandardCharsets.UTF_8);
  }

  @Test
  void aConnectionThatTricklesItsRequestHeadIsClosedAtTheDeadline() throws Exception {
    try (Socket socket = new Socket("127.0.0.1", port)) {
      socket.setSoTimeout(20_000);
      long started = System.nanoTime();
      socket.getOutputStream().write("GET /v1/ws HTTP/1.1\r\nHost: x\r\n".getBytes(StandardCharsets.US_ASCII));
      InputStream in = socket.getInputStream();
      assertEquals(-1, in.read(), "closed without an answer");
      long tookMs = (System.nanoTime() - started) / 1_000_000;
      assertTrue(tookMs >= 2_900 && tookMs < 12_000, "closed after " + tookMs + " ms (deadline 3 s)");
    }
  }

  @Test
  void anOversizedFrameIsRefusedAndTheSocketStaysAFarLargerOneClosesIt() throws Exception {
    try (JdkWebSocket client = JdkWebSocket.open(ws(), node.token("port-big"), "parley.v1")) {
      client.await("welcome");
      String big = "{\"type\":\"ping\",\"id\":\"big\",\"pad\":\"" + "x".repeat(100_000) + "\"}";
      client.send(big);
      JsonNode error = client.awaitReply("big");
      assertEquals("frame_too_large", error.path("code").asText(), error.toString());
      client.send("{\"type\":\"ping\",\"id\":\"after\"}");
      assertEquals("pong", client.awaitReply("after").path("type").asText());

      client.socket.sendText("x".repeat(65_536 * NettyWebSocketServer.HARD_FRAME_LIMIT_FACTOR + 1), true);
      assertEquals(1009, client.closed.get(20, TimeUnit.SECONDS), "closed as too big (RFC 6455 1009)");
    }
  }

  @Test
  void theCloseFrameCarriesTheCodeOfTheLastCloseMessage() throws Exception {
    String token = node.token("port-many");
    try (JdkWebSocket one = JdkWebSocket.open(ws(), token, "parley.v1"); JdkWebSocket two = JdkWebSocket.open(ws(), token, "parley.v1");
        JdkWebSocket three = JdkWebSocket.open(ws(), token, "parley.v1")) {
      one.await("welcome");
      two.await("welcome");
      JsonNode close = three.await("close");
      assertEquals(4429, close.path("code").asInt(), close.toString());
      assertEquals(4429, three.closed.get(20, TimeUnit.SECONDS), "the WebSocket close status is the same code");
    }
  }
}
