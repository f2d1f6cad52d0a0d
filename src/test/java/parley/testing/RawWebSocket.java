package parley.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A WebSocket client written by hand on a plain socket, for what no client library sends: a
 * text frame whose bytes are not UTF-8, or an upgrade followed by nothing at all. It writes
 * the upgrade and reads the answer's head; what the server sends after that is never read.
 */
public final class RawWebSocket implements AutoCloseable {

  private final Socket socket;
  private final OutputStream out;

  private RawWebSocket(Socket socket) throws IOException {
    this.socket = socket;
    this.out = socket.getOutputStream();
  }

  /** Opens a socket and upgrades it with {@code token}; fails unless the server answers 101. */
  public static RawWebSocket upgrade(URI ws, String token) throws IOException {
    Socket socket = new Socket(ws.getHost(), ws.getPort());
    socket.setSoTimeout(20_000);
    byte[] nonce = new byte[16];
    ThreadLocalRandom.current().nextBytes(nonce);
    String request =
        "GET " + ws.getPath() + " HTTP/1.1\r\n"
            + "Host: " + ws.getHost() + ":" + ws.getPort() + "\r\n"
            + "Upgrade: websocket\r\n"
            + "Connection: Upgrade\r\n"
            + "Sec-WebSocket-Key: " + Base64.getEncoder().encodeToString(nonce) + "\r\n"
            + "Sec-WebSocket-Version: 13\r\n"
            + "Authorization: Bearer " + token + "\r\n"
            + "\r\n";
    RawWebSocket raw = new RawWebSocket(socket);
    raw.out.write(request.getBytes(StandardCharsets.US_ASCII));
    raw.out.flush();
    String head = readHead(socket.getInputStream());
    if (!head.startsWith("HTTP/1.1 101")) {
      socket.close();
      throw new IOException("the upgrade was answered: " + head);
    }
    return raw;
  }

  /** The answer's status line and headers, up to the blank line that ends them. */
  private static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int matched = 0;
    byte[] end = {'\r', '\n', '\r', '\n'};
    while (matched < end.length) {
      int b = in.read();
      if (b < 0) {
        throw new IOException("the connection ended in the answer's head: " + head);
      }
      head.write(b);
      matched = b == end[matched] ? matched + 1 : (b == '\r' ? 1 : 0);
    }
    return head.toString(StandardCharsets.US_ASCII);
  }

  /**
   * Sends one final text frame with {@code payload} as it is (up to 125 bytes), masked as a
   * client's frames must be. Nothing checks that the payload is UTF-8: that is the point.
   */
  public void sendText(byte[] payload) throws IOException {
    if (payload.length > 125) {
      throw new IllegalArgumentException("a short frame only");
    }
    byte[] mask = new byte[4];
    ThreadLocalRandom.current().nextBytes(mask);
    byte[] frame = new byte[2 + 4 + payload.length];
    frame[0] = (byte) 0x81; // FIN, text
    frame[1] = (byte) (0x80 | payload.length); // masked, length
    System.arraycopy(mask, 0, frame, 2, 4);
    for (int i = 0; i < payload.length; i++) {
      frame[6 + i] = (byte) (payload[i] ^ mask[i % 4]);
    }
    out.write(frame);
    out.flush();
  }

  /** Ends the TCP connection without a close frame. */
  @Override
  public void close() throws IOException {
    socket.close();
  }
}
