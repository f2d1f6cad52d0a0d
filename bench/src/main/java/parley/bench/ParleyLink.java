package parley.bench;

import java.net.URI;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import parley.client.ParleyClient;

/**
 * A connection speaking Parley's protocol v1 (docs/protocol.md): authenticated with a dev
 * token, resumed (so room events flow), then {@code create_room}/{@code join} and {@code
 * send}; the server's heartbeat pings are answered. Frames are recognised by their first
 * bytes, which the server always writes in the same order ({@code {"type":"event"…}), rather
 * than parsed into a tree.
 */
final class ParleyLink extends Link {

  private static final String EVENT = "{\"type\":\"event\"";
  private static final String OK = "{\"type\":\"ok\",\"id\":\"";
  private static final String ERROR = "{\"type\":\"error\"";
  private static final String WELCOME = "{\"type\":\"welcome\"";
  /** The server's heartbeat; unanswered, it closes an otherwise idle connection. */
  private static final String PING = "{\"type\":\"ping\"}";
  private static final String PONG = "{\"type\":\"pong\"}";

  private final String user;
  private final AtomicLong messages = new AtomicLong();
  /** System.nanoTime() when the upgrade was sent, the welcome came and resume was answered. */
  private volatile long openedAt;
  private volatile long welcomedAt;
  private volatile long resumedAt;

  private ParleyLink(String user, Listener listener) {
    super(listener);
    this.user = user;
  }

  /**
   * Once {@code devToken} (for {@code user}) is there, connects to {@code ws} (the
   * client port's or the WebSocket port's {@code /v1/ws}) and resumes.
   */
  static CompletableFuture<Link> connect(CompletableFuture<String> devToken, URI ws, String user, Listener listener) {
    ParleyLink link = new ParleyLink(user, listener);
    return devToken
        .thenCompose(token -> {
          link.openedAt = System.nanoTime();
          return link.open(ws, Map.of("Authorization", "Bearer " + token), ParleyClient.SUBPROTOCOL);
        })
        .thenCompose(welcomed -> {
          link.welcomedAt = System.nanoTime();
          return link.request("resume", "");
        })
        .thenApply(resumed -> {
          link.resumedAt = System.nanoTime();
          return link;
        });
  }

  /** From sending the upgrade (token checked, session started) to the welcome frame. */
  long upgradeMicros() {
    return (welcomedAt - openedAt) / 1000;
  }

  /** From the welcome to resume's answer (the user's entity started, its room list read). */
  long resumeMicros() {
    return (resumedAt - welcomedAt) / 1000;
  }

  @Override
  CompletableFuture<Void> join(String room, boolean create) {
    return request(create ? "create_room" : "join", ",\"room\":\"" + room + "\"");
  }

  @Override
  void publish(String room, long stamp, String body) {
    socket.send(
        "{\"type\":\"send\",\"id\":\"" + stamp + "\",\"room\":\"" + room + "\",\"clientMsgId\":\""
            + user + "-" + messages.incrementAndGet() + "\",\"body\":\"" + body + "\"}");
  }

  private CompletableFuture<Void> request(String type, String fields) {
    CompletableFuture<Void> answer = new CompletableFuture<>();
    long id = setupRequest(answer);
    socket.send("{\"type\":\"" + type + "\",\"id\":\"" + id + "\"" + fields + "}");
    return answer;
  }

  @Override
  public void onFrame(String text) {
    if (text.startsWith(EVENT)) {
      long stamp = Payload.stampIn(text);
      if (stamp > 0) {
        listener.delivered(stamp);
      }
    } else if (text.startsWith(OK)) {
      answered(number(text, OK.length()), null);
    } else if (text.startsWith(ERROR)) {
      int id = text.indexOf("\"id\":\"");
      String code = field(text, "\"code\":\"");
      if (id < 0) {
        listener.failed(code);
      } else {
        answered(number(text, id + 6), code);
      }
    } else if (text.equals(PING)) {
      socket.send(PONG);
    } else if (text.startsWith(WELCOME)) {
      ready.complete(this);
    }
  }

  private static String field(String text, String key) {
    int at = text.indexOf(key);
    if (at < 0) {
      return "unknown";
    }
    int from = at + key.length();
    return text.substring(from, text.indexOf('"', from));
  }
}
