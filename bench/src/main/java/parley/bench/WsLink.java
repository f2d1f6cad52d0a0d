package parley.bench;

import java.net.URI;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * A client of the bare broadcast server bench/peers/ws-server.js, the ceiling of what a
 * WebSocket server on this machine delivers. Its protocol is the least that works, one text
 * frame per action with fields separated by {@code |}: {@code j|<id>|<room>} joins, {@code
 * p|<id>|<room>|<body>} publishes; the server answers {@code a|<id>} and sends {@code
 * m|<room>|<body>} to every member of the room. It also opens the connections scenario's idle
 * connections to bench/peers/PekkoEcho.java, which answers the same upgrade.
 */
final class WsLink extends Link {

  private WsLink(Listener listener) {
    super(listener);
  }

  static CompletableFuture<Link> connect(URI http, Listener listener) {
    WsLink link = new WsLink(listener);
    link.ready.complete(link);
    return link.open(URI.create("ws" + http.toString().substring(4)).resolve("/"), Map.of(), null);
  }

  @Override
  CompletableFuture<Void> join(String room, boolean create) {
    CompletableFuture<Void> answer = new CompletableFuture<>();
    socket.send("j|" + setupRequest(answer) + "|" + room);
    return answer;
  }

  @Override
  void publish(String room, long stamp, String body) {
    socket.send("p|" + stamp + "|" + room + "|" + body);
  }

  @Override
  public void onFrame(String text) {
    if (text.startsWith("m|")) {
      listener.delivered(Payload.stampIn(text));
    } else if (text.startsWith("a|")) {
      answered(number(text, 2), null);
    }
  }
}
