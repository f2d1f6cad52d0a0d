package parley.testing;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import parley.client.ParleyClient;
import parley.transport.Frames;

/**
 * A raw protocol-v1 WebSocket client that can stop reading: it stops asking for frames, so TCP
 * and then the node's outbound buffer for it fill up, as with a phone that went into a tunnel.
 * Each whole frame goes, parsed, to the test's handler (or as it came, for {@link #connectRaw}).
 */
public final class PausableSocket implements WebSocket.Listener, AutoCloseable {

  private final Consumer<String> onFrame;
  private final StringBuilder partial = new StringBuilder();
  private final CompletableFuture<String> ended = new CompletableFuture<>();
  private WebSocket socket;
  private volatile boolean paused;

  private PausableSocket(Consumer<String> onFrame) {
    this.onFrame = onFrame;
  }

  public static PausableSocket connect(URI ws, String token, Consumer<JsonNode> onFrame) throws Exception {
    return connectRaw(ws, token, text -> onFrame.accept(Frames.read(text)));
  }

  /**
   * A socket whose handler gets each frame's text unparsed, for tests that judge whether what
   * the server sent is JSON at all. A binary frame, which the server never sends, arrives as
   * text that is not JSON.
   */
  public static PausableSocket connectRaw(URI ws, String token, Consumer<String> onFrame) throws Exception {
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

  /**
   * Sends one text frame and waits until it is written. Synchronized: the JDK's WebSocket
   * refuses a send while another is pending, and a handler may answer a ping meanwhile.
   */
  public synchronized void send(String frame) {
    socket.sendText(frame, true).join();
  }

  public synchronized void sendBinary(byte[] frame) {
    socket.sendBinary(ByteBuffer.wrap(frame), true).join();
  }

  /** Completes when the connection ends: how the server closed it, or what broke it. */
  public CompletableFuture<String> ended() {
    return ended;
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
      String frame = partial.toString();
      partial.setLength(0);
      onFrame.accept(frame);
    }
    if (!paused) {
      ws.request(1);
    }
    return null;
  }

  @Override
  public CompletionStage<?> onBinary(WebSocket ws, ByteBuffer data, boolean last) {
    if (last) {
      onFrame.accept("(a binary frame)");
    }
    ws.request(1);
    return null;
  }

  @Override
  public CompletionStage<?> onClose(WebSocket ws, int statusCode, String reason) {
    ended.complete("closed by the server with status " + statusCode + " " + reason);
    return null;
  }

  @Override
  public void onError(WebSocket ws, Throwable error) {
    ended.complete("failed: " + error);
  }

  @Override
  public void close() {
    socket.abort();
  }
}
