package parley.testing;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import parley.client.ParleyClient;
import parley.transport.Frames;

/**
 * A raw protocol-v1 WebSocket client that can stop reading: it stops asking for frames, so TCP
 * and then the node's outbound buffer for it fill up, as with a phone that went into a tunnel.
 * Each whole frame goes, parsed, to the test's handler.
 */
public final class PausableSocket implements WebSocket.Listener, AutoCloseable {

  private final Consumer<JsonNode> onFrame;
  private final StringBuilder partial = new StringBuilder();
  private WebSocket socket;
  private volatile boolean paused;

  private PausableSocket(Consumer<JsonNode> onFrame) {
    this.onFrame = onFrame;
  }

  public static PausableSocket connect(URI ws, String token, Consumer<JsonNode> onFrame) throws Exception {
    PausableSocket listener = new PausableSocket(onFrame);
    listener.socket =
        HttpClient.newHttpClient()
            .newWebSocketBuilder()
            .header("Authorization", "Bearer " + token)
            .subprotocols(ParleyClient.SUBPROTOCOL)
            .buildAsync(ws, listener)
            .get(20, TimeUnit.SECONDS);
    return listener;
  }

  public void send(String frame) {
    socket.sendText(frame, true).join();
  }

  public void pause() {
    paused = true;
  }

  public void resume() {
    paused = false;
    socket.request(1);
  }

  @Override
  public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
    partial.append(data);
    if (last) {
      JsonNode frame = Frames.read(partial.toString());
      partial.setLength(0);
      onFrame.accept(frame);
    }
    if (!paused) {
      ws.request(1);
    }
    return null;
  }

  @Override
  public void close() {
    socket.abort();
  }
}
