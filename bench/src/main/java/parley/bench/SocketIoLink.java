package parley.bench;

import java.net.URI;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * A Socket.IO v5 client over Engine.IO v4, WebSocket transport only: as much of the protocol
 * as joining a room and broadcasting into it takes (bench/peers/socketio-server.js is the
 * server). Engine.IO packets are text frames whose first character is the type: {@code 0}
 * open, {@code 2} ping (answered by {@code 3} pong), {@code 4} message. A Socket.IO packet
 * rides in a message: {@code 40} connects to the main namespace, {@code 42<ack>[…]} is an
 * event asking for an acknowledgement {@code 43<ack>[…]}.
 */
final class SocketIoLink extends Link {

  private static final String BROADCAST = "42[\"msg\"";

  private SocketIoLink(Listener listener) {
    super(listener);
  }

  static CompletableFuture<Link> connect(URI http, Listener listener) {
    URI ws = URI.create("ws" + http.toString().substring(4)).resolve("/socket.io/?EIO=4&transport=websocket");
    return new SocketIoLink(listener).open(ws, Map.of(), null);
  }

  @Override
  CompletableFuture<Void> join(String room, boolean create) {
    CompletableFuture<Void> answer = new CompletableFuture<>();
    socket.send("42" + setupRequest(answer) + "[\"join\",\"" + room + "\"]");
    return answer;
  }

  @Override
  void publish(String room, long stamp, String body) {
    socket.send("42" + stamp + "[\"msg\",\"" + room + "\",\"" + body + "\"]");
  }

  @Override
  public void onFrame(String text) {
    if (text.startsWith(BROADCAST)) {
      listener.delivered(Payload.stampIn(text));
    } else if (text.startsWith("43")) {
      answered(number(text, 2), null);
    } else if (text.equals("2")) {
      socket.send("3");
    } else if (text.startsWith("0")) {
      socket.send("40");
    } else if (text.startsWith("40")) {
      ready.complete(this);
    } else if (text.startsWith("44")) {
      onClosed(1008, "connect_error " + text);
    }
  }
}
