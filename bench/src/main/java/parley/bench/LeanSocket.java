package parley.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.Base64;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A client WebSocket (RFC 6455) on plain NIO, as cheap as the load tool can make it, since the
 * tool shares the machine with the server it measures: one selector thread per core serves all
 * sockets, frames arrive as strings to one handler, nothing else is kept per socket but its
 * buffers. (The JDK's {@code java.net.http} WebSocket reads every socket on one thread; here it
 * capped delivery near 80,000 frames/s, below what the servers under test send.)
 *
 * <p>Only what the scenarios need: text frames out (masked, as the RFC asks of clients), text
 * frames in (fragmented or not), ping answered with pong, and the close handshake. No TLS, no
 * extensions.
 */
final class LeanSocket {

  /** Receives every text frame, in order, on a selector thread; it must not block. */
  interface Handler {
    void onFrame(String text);

    void onClosed(int code, String reason);
  }

  private static final String WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  private static final int OP_CONTINUATION = 0;
  private static final int OP_TEXT = 1;
  private static final int OP_CLOSE = 8;
  private static final int OP_PING = 9;
  private static final int MAX_FRAME = 16 * 1024 * 1024;

  private static final Loop[] LOOPS = startLoops(Runtime.getRuntime().availableProcessors());
  private static final AtomicInteger NEXT_LOOP = new AtomicInteger();

  private final Handler handler;
  private final Loop loop = LOOPS[Math.floorMod(NEXT_LOOP.getAndIncrement(), LOOPS.length)];
  private final CompletableFuture<Void> opened = new CompletableFuture<>();
  private final CompletableFuture<Void> closed = new CompletableFuture<>();
  private final Queue<ByteBuffer> pending = new ArrayDeque<>();
  private SocketChannel channel;
  private SelectionKey key;
  private ByteBuffer in = ByteBuffer.allocate(4096);
  private ByteArrayOutputStream fragments;
  private String expectedAccept;
  private boolean open;
  private boolean writing;
  private boolean closeSent;

  LeanSocket(Handler handler) {
    this.handler = handler;
  }

  /** Connects and upgrades; frames may reach the handler before the returned future completes. */
  CompletableFuture<Void> open(URI uri, Map<String, String> headers, String subprotocol) {
    byte[] nonce = new byte[16];
    ThreadLocalRandom.current().nextBytes(nonce);
    String key64 = Base64.getEncoder().encodeToString(nonce);
    expectedAccept = accept(key64);
    StringBuilder request = new StringBuilder()
        .append("GET ").append(uri.getRawPath()).append(uri.getRawQuery() == null ? "" : "?" + uri.getRawQuery())
        .append(" HTTP/1.1\r\nHost: ").append(uri.getHost()).append(':').append(uri.getPort())
        .append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ")
        .append(key64).append("\r\n");
    if (subprotocol != null) {
      request.append("Sec-WebSocket-Protocol: ").append(subprotocol).append("\r\n");
    }
    headers.forEach((name, value) -> request.append(name).append(": ").append(value).append("\r\n"));
    request.append("\r\n");
    pending.add(ByteBuffer.wrap(request.toString().getBytes(StandardCharsets.US_ASCII)));
    InetSocketAddress address = new InetSocketAddress(uri.getHost(), uri.getPort());
    loop.execute(() -> {
      try {
        channel = SocketChannel.open();
        channel.configureBlocking(false);
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        synchronized (this) {
          writing = true;
          key = channel.register(loop.selector, channel.connect(address) ? SelectionKey.OP_WRITE : SelectionKey.OP_CONNECT, this);
        }
      } catch (IOException e) {
        fail(1006, "connect failed: " + e);
      }
    });
    return opened;
  }

  /** Sends a text frame; frames queue behind the ones the socket has not taken yet. */
  void send(String text) {
    ByteBuffer frame = frame(OP_TEXT, text.getBytes(StandardCharsets.UTF_8));
    synchronized (this) {
      if (closed.isDone() || closeSent) {
        return;
      }
      if (open && pending.isEmpty()) {
        try {
          channel.write(frame);
        } catch (IOException e) {
          loop.execute(() -> fail(1006, "write failed: " + e));
          return;
        }
        if (!frame.hasRemaining()) {
          return;
        }
      }
      pending.add(frame);
      if (open && !writing) {
        writing = true;
        loop.execute(this::wantWrite);
      }
    }
  }

  /**
   * Closes normally and completes when the server has answered; a server that does not answer
   * within 5 s is cut off.
   */
  CompletableFuture<Void> close() {
    synchronized (this) {
      if (!closed.isDone() && open && !closeSent) {
        pending.add(frame(OP_CLOSE, new byte[] {0x03, (byte) 0xE8}));
        closeSent = true;
        if (!writing) {
          writing = true;
          loop.execute(this::wantWrite);
        }
      }
    }
    return closed
        .completeOnTimeout(null, 5, TimeUnit.SECONDS)
        .whenComplete((ok, failure) -> loop.execute(this::shut));
  }

  // ---------------------------------------------------------------------------------------
  // On the selector thread

  private void ready(SelectionKey ready) {
    try {
      if (ready.isConnectable()) {
        channel.finishConnect();
        ready.interestOps(SelectionKey.OP_WRITE);
        return;
      }
      if (ready.isWritable()) {
        flush();
      }
      if (ready.isValid() && ready.isReadable()) {
        read();
      }
    } catch (IOException | RuntimeException e) {
      fail(1006, String.valueOf(e));
    }
  }

  private void wantWrite() {
    if (key != null && key.isValid()) {
      key.interestOps(key.interestOps() | SelectionKey.OP_WRITE);
    }
  }

  private void flush() throws IOException {
    synchronized (this) {
      while (!pending.isEmpty()) {
        ByteBuffer next = pending.peek();
        channel.write(next);
        if (next.hasRemaining()) {
          return;
        }
        pending.poll();
      }
      writing = false;
      key.interestOps(SelectionKey.OP_READ);
    }
  }

  private void read() throws IOException {
    int count = channel.read(in);
    if (count < 0) {
      fail(1006, "connection reset by the server");
      return;
    }
    in.flip();
    if (!opened.isDone() && !handshake()) {
      in.compact();
      return;
    }
    while (frameRead()) {
      // each call handles one frame
    }
    if (in.position() == 0 && in.limit() == in.capacity()) {
      in = ByteBuffer.allocate(Math.min(in.capacity() * 2, MAX_FRAME + 14)).put(in);
    } else {
      in.compact();
    }
  }

  /** Reads the upgrade response; false while it is incomplete. */
  private boolean handshake() {
    String head = StandardCharsets.ISO_8859_1.decode(in.duplicate()).toString();
    int end = head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (in.limit() == in.capacity()) {
        fail(1002, "upgrade response too long");
      }
      return false;
    }
    in.position(end + 4);
    String status = head.substring(0, head.indexOf("\r\n"));
    if (!status.startsWith("HTTP/1.1 101")) {
      String body = head.substring(end + 4);
      fail(1002, "upgrade refused: " + status + (body.isEmpty() ? "" : " " + body.strip()));
      return false;
    }
    if (!head.toLowerCase().contains("sec-websocket-accept: " + expectedAccept.toLowerCase())) {
      fail(1002, "upgrade response has a wrong Sec-WebSocket-Accept");
      return false;
    }
    synchronized (this) {
      open = true;
      writing = !pending.isEmpty();
      key.interestOps(writing ? SelectionKey.OP_READ | SelectionKey.OP_WRITE : SelectionKey.OP_READ);
    }
    opened.complete(null);
    return true;
  }

  /** Handles one whole frame from {@code in} if there is one. */
  private boolean frameRead() throws IOException {
    if (closed.isDone() || in.remaining() < 2) {
      return false;
    }
    int start = in.position();
    int b0 = in.get(start) & 0xFF;
    int b1 = in.get(start + 1) & 0xFF;
    long length = b1 & 0x7F;
    int header = 2;
    if (length == 126) {
      if (in.remaining() < 4) {
        return false;
      }
      length = in.getShort(start + 2) & 0xFFFF;
      header = 4;
    } else if (length == 127) {
      if (in.remaining() < 10) {
        return false;
      }
      length = in.getLong(start + 2);
      header = 10;
    }
    if (length > MAX_FRAME) {
      fail(1009, "frame of " + length + " bytes");
      return false;
    }
    if (in.remaining() < header + length) {
      return false;
    }
    int from = start + header;
    int size = (int) length;
    in.position(from + size);
    boolean fin = (b0 & 0x80) != 0;
    int opcode = b0 & 0x0F;
    switch (opcode) {
      case OP_TEXT, OP_CONTINUATION -> text(fin, opcode, from, size);
      case OP_PING -> {
        byte[] payload = new byte[size];
        in.get(from, payload);
        synchronized (this) {
          pending.add(frame(0xA, payload));
          writing = true;
        }
        wantWrite();
      }
      case OP_CLOSE -> {
        int code = size >= 2 ? in.getShort(from) & 0xFFFF : 1005;
        String reason = size > 2 ? new String(in.array(), from + 2, size - 2, StandardCharsets.UTF_8) : "";
        synchronized (this) {
          if (!closeSent) {
            closeSent = true;
            channel.write(frame(OP_CLOSE, new byte[] {(byte) (code >> 8), (byte) code}));
          }
        }
        fail(code, reason);
      }
      default -> {
        // binary and pong frames carry nothing the scenarios use
      }
    }
    return true;
  }

  private void text(boolean fin, int opcode, int from, int size) {
    if (opcode == OP_TEXT && fin) {
      handler.onFrame(new String(in.array(), from, size, StandardCharsets.UTF_8));
      return;
    }
    if (opcode == OP_TEXT) {
      fragments = new ByteArrayOutputStream();
    }
    fragments.write(in.array(), from, size);
    if (fin) {
      handler.onFrame(fragments.toString(StandardCharsets.UTF_8));
      fragments = null;
    }
  }

  private void fail(int code, String reason) {
    shut();
    opened.completeExceptionally(new IOException("WebSocket closed: " + code + " " + reason));
    if (closed.complete(null)) {
      handler.onClosed(code, reason);
    }
  }

  private void shut() {
    try {
      if (channel != null) {
        channel.close();
      }
    } catch (IOException e) {
      // closing anyway
    }
  }

  /** A client frame: masked, as RFC 6455 requires of clients. */
  private static ByteBuffer frame(int opcode, byte[] payload) {
    int length = payload.length;
    int header = length < 126 ? 2 : length < 65536 ? 4 : 10;
    ByteBuffer frame = ByteBuffer.allocate(header + 4 + length);
    frame.put((byte) (0x80 | opcode));
    if (length < 126) {
      frame.put((byte) (0x80 | length));
    } else if (length < 65536) {
      frame.put((byte) (0x80 | 126)).putShort((short) length);
    } else {
      frame.put((byte) (0x80 | 127)).putLong(length);
    }
    int mask = ThreadLocalRandom.current().nextInt();
    frame.putInt(mask);
    for (int i = 0; i < length; i++) {
      frame.put((byte) (payload[i] ^ (mask >>> (24 - 8 * (i & 3)))));
    }
    return frame.flip();
  }

  private static String accept(String key) {
    try {
      byte[] digest = MessageDigest.getInstance("SHA-1")
          .digest((key + WEBSOCKET_GUID).getBytes(StandardCharsets.US_ASCII));
      return Base64.getEncoder().encodeToString(digest);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static Loop[] startLoops(int count) {
    Loop[] loops = new Loop[Math.max(1, count)];
    for (int i = 0; i < loops.length; i++) {
      loops[i] = new Loop();
      Thread thread = new Thread(loops[i], "bench-socket-" + i);
      thread.setDaemon(true);
      thread.start();
    }
    return loops;
  }

  /** One selector thread and the sockets it serves; work from other threads is queued to it. */
  private static final class Loop implements Runnable {
    final Selector selector;
    private final Queue<Runnable> tasks = new ConcurrentLinkedQueue<>();

    Loop() {
      try {
        selector = Selector.open();
      } catch (IOException e) {
        throw new IllegalStateException("cannot open a selector", e);
      }
    }

    void execute(Runnable task) {
      tasks.add(task);
      selector.wakeup();
    }

    @Override
    public void run() {
      while (true) {
        try {
          selector.select();
        } catch (IOException e) {
          throw new IllegalStateException("selector failed", e);
        }
        for (Runnable task = tasks.poll(); task != null; task = tasks.poll()) {
          task.run();
        }
        for (SelectionKey ready : selector.selectedKeys()) {
          ((LeanSocket) ready.attachment()).ready(ready);
        }
        selector.selectedKeys().clear();
      }
    }
  }
}
