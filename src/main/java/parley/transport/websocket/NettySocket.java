package parley.transport.websocket;

import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.websocketx.BinaryWebSocketFrame;
import io.netty.handler.codec.http.websocketx.CloseWebSocketFrame;
import io.netty.handler.codec.http.websocketx.TextWebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketServerProtocolHandler;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import parley.ops.ParleyMetrics;
import parley.protocol.Codec;
import parley.protocol.Push;
import parley.transport.Outbound;
import parley.transport.Session;

/**
 * One upgraded socket on the Netty WebSocket port, and the session's {@link Outbound} for it.
 * The channel reads only while the session is ready for a frame (auto-read is off and the
 * session's {@code next} asks for more), so a client cannot flood the mailbox; outgoing frames
 * are queued for the channel, at most {@code outboundBuffer} of them unwritten, so a slow
 * reader cannot grow the node's memory. Everything but {@link #offer}, {@link #backlog} and
 * {@link #close} runs on the channel's event loop.
 *
 * <p>The session offers frames from its actor's thread, one at a time. Handing each to the
 * event loop as a write and a flush of its own made a task and a system call per frame, and a
 * room's fan-out fell behind at 2,000 messages/s to 100 members; so frames wait in a queue,
 * and one task writes all that are there and flushes once.
 */
final class NettySocket extends SimpleChannelInboundHandler<WebSocketFrame> implements Outbound {

  private final ActorSystem<?> system;
  /** The session to start once the handshake completes. */
  private final WebSocketRoute.Admission.Admitted admitted;
  private final int maxFrameBytes;
  private final int outboundBuffer;
  private final AtomicInteger unwritten = new AtomicInteger();
  private final Queue<WebSocketFrame> queued = new ConcurrentLinkedQueue<>();
  /** Whether a task that writes the queued frames is on its way to the event loop. */
  private final AtomicBoolean writing = new AtomicBoolean();
  private final ChannelFutureListener written = f -> unwritten.decrementAndGet();
  /** Frames read while the session still works on an earlier one (one read may hold several). */
  private final ArrayDeque<Session.Command> waiting = new ArrayDeque<>();
  private ChannelHandlerContext ctx;
  private ActorRef<Session.Command> session;
  private boolean sessionBusy;

  NettySocket(
      ActorSystem<?> system, WebSocketRoute.Admission.Admitted admitted, int maxFrameBytes, int outboundBuffer) {
    this.system = system;
    this.admitted = admitted;
    this.maxFrameBytes = maxFrameBytes;
    this.outboundBuffer = outboundBuffer;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object event) throws Exception {
    if (event instanceof WebSocketServerProtocolHandler.HandshakeComplete) {
      session = system.systemActorOf(admitted.session().apply(this), "session-" + Session.newId(), Props.empty());
      CompletableFuture<Void> closed = new CompletableFuture<>();
      ctx.channel().closeFuture().addListener(f -> closed.complete(null));
      ParleyMetrics.get(system).countConnection(ParleyMetrics.WEBSOCKET, closed);
      Session.Command first = waiting.poll();
      if (first != null) {
        sessionBusy = true;
        session.tell(first);
      } else {
        ctx.read();
      }
    } else {
      super.userEventTriggered(ctx, event);
    }
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, WebSocketFrame frame) {
    Session.Command command;
    if (frame instanceof TextWebSocketFrame) {
      int bytes = frame.content().readableBytes();
      command = bytes > maxFrameBytes
          // Only the beginning is decoded: the session looks there for the request id.
          ? new Session.InboundTooLarge(frame.content().toString(0, maxFrameBytes, StandardCharsets.UTF_8), this::next)
          : new Session.Inbound(frame.content().toString(StandardCharsets.UTF_8), this::next);
    } else if (frame instanceof BinaryWebSocketFrame) {
      command = new Session.Inbound(WebSocketRoute.BINARY, this::next);
    } else {
      return; // pings and pongs are answered or dropped by the protocol handler before this one
    }
    if (session == null || sessionBusy) {
      // Frames a client sent right behind its upgrade request can arrive before the session
      // exists (the handshake completes when the 101 is written): they wait for it.
      waiting.add(command);
    } else {
      sessionBusy = true;
      session.tell(command);
    }
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    // A read that completed no frame (or only part of one) asks for more at once; otherwise the
    // session's next() does when it has taken every frame read.
    if (session != null && !sessionBusy) {
      ctx.read();
    }
  }

  /** The session took a frame: hand it the next one read, or read more. From the session's thread. */
  private void next() {
    if (ctx.executor().isShuttingDown()) {
      return; // the node is stopping: no more reads
    }
    ctx.executor().execute(() -> {
      Session.Command command = waiting.poll();
      if (command != null) {
        session.tell(command);
      } else {
        sessionBusy = false;
        ctx.read();
      }
    });
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (session != null) {
      session.tell(new Session.InboundClosed());
    } else {
      admitted.abandon(); // no handshake (not an upgrade, or the client left first): no session
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    // A reset or a protocol violation (bad UTF-8, an oversized frame): the socket is gone,
    // and channelInactive ends the session.
    ctx.close();
  }

  @Override
  public boolean offer(String frame) {
    if (unwritten.get() >= outboundBuffer) {
      return false;
    }
    write(new TextWebSocketFrame(frame));
    return true;
  }

  private void write(WebSocketFrame frame) {
    unwritten.incrementAndGet();
    queued.add(frame);
    if (writing.compareAndSet(false, true)) {
      ctx.executor().execute(this::writeQueued);
    }
  }

  /** On the event loop: every queued frame, then one flush. */
  private void writeQueued() {
    writing.set(false);
    WebSocketFrame frame;
    boolean wrote = false;
    while ((frame = queued.poll()) != null) {
      ctx.write(frame).addListener(written);
      wrote = true;
    }
    if (wrote) {
      ctx.flush();
    }
  }

  @Override
  public int backlog() {
    return unwritten.get();
  }

  /**
   * The code and reason travel in a last {@code close} frame, as on every transport, and here
   * in the WebSocket close frame as well.
   */
  @Override
  public void close(int code, String reason) {
    write(new TextWebSocketFrame(Codec.push(new Push.Close(code, reason))));
    // Behind whatever is queued, the close frame included.
    ctx.executor().execute(() -> {
      writeQueued();
      ctx.writeAndFlush(new CloseWebSocketFrame(code, closeReason(reason))).addListener(ChannelFutureListener.CLOSE);
    });
  }

  /** RFC 6455 §5.5: a close frame's reason is at most 123 bytes of UTF-8. */
  static String closeReason(String reason) {
    byte[] bytes = reason.getBytes(StandardCharsets.UTF_8);
    if (bytes.length <= 123) {
      return reason;
    }
    int end = 123;
    while (end > 0 && (bytes[end] & 0xC0) == 0x80) {
      end--; // not inside a character
    }
    return new String(bytes, 0, end, StandardCharsets.UTF_8);
  }
}
