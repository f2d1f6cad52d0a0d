package parley.transport.websocket;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpRequestDecoder;
import io.netty.handler.codec.http.HttpResponseEncoder;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.websocketx.CloseWebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketCloseStatus;
import io.netty.handler.codec.http.websocketx.WebSocketDecoderConfig;
import io.netty.handler.codec.http.websocketx.WebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketFrameAggregator;
import io.netty.handler.codec.http.websocketx.WebSocketServerProtocolConfig;
import io.netty.handler.codec.http.websocketx.WebSocketServerProtocolHandler;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import parley.auth.TokenService;
import parley.transport.Handlers;

/**
 * The WebSocket port on Netty: {@code GET /v1/ws} and nothing else, with the same admission,
 * session and wire protocol as the WebSocket on the client port ({@link WebSocketRoute}).
 *
 * <p>Why a second transport: a Pekko HTTP WebSocket keeps its materialized stage graph (~60
 * stages) and an idle-timeout timer that fires every second for its whole life, about 40 KB of
 * heap and a thread wake-up per second per connection before Parley adds anything
 * (docs/benchmarks.md, "Idle connections beside the transport's floor"). Here a connection is
 * one channel pipeline, and liveness is the session's heartbeat alone.
 *
 * <p>A connection must deliver its upgrade request within {@code requestHeaderTimeout}
 * (Slowloris, as on the client port); once upgraded, the session's heartbeat ends a silent
 * client. Frames over {@code maxFrameBytes} get {@code frame_too_large} and the socket stays
 * open, as on the client port, up to {@link #HARD_FRAME_LIMIT_FACTOR} times that size; a frame
 * larger still is not read at all: the socket is closed with 1009.
 */
public final class NettyWebSocketServer {

  /** Frames up to this many times the frame limit are read (and refused); larger ones close. */
  public static final int HARD_FRAME_LIMIT_FACTOR = 16;

  private static final int MAX_HEAD_BYTES = 16 * 1024;

  private NettyWebSocketServer() {}

  /**
   * Binds {@code iface:port}; the future fails when the port cannot be bound. Pages served on
   * {@code clientPort} count as the node's own origin here too.
   */
  public static CompletionStage<InetSocketAddress> start(
      ActorSystem<?> system, String iface, int port, int clientPort, Duration requestHeaderTimeout, Handlers handlers, TokenService tokens) {
    EventLoopGroup acceptor = new NioEventLoopGroup(1);
    EventLoopGroup sockets = new NioEventLoopGroup(Runtime.getRuntime().availableProcessors());
    int maxFrameBytes = handlers.settings().maxFrameBytes();
    WebSocketServerProtocolConfig protocol =
        WebSocketServerProtocolConfig.newBuilder()
            .websocketPath("/v1/ws")
            .checkStartsWith(true) // the query may carry the token
            .subprotocols(WebSocketRoute.SUBPROTOCOL)
            .handshakeTimeoutMillis(requestHeaderTimeout.toMillis())
            .dropPongFrames(true)
            .decoderConfig(
                WebSocketDecoderConfig.newBuilder()
                    .maxFramePayloadLength(maxFrameBytes * HARD_FRAME_LIMIT_FACTOR)
                    .allowExtensions(false)
                    .build())
            .build();
    ServerBootstrap bootstrap =
        new ServerBootstrap()
            .group(acceptor, sockets)
            .channel(NioServerSocketChannel.class)
            .option(ChannelOption.SO_BACKLOG, 4096)
            .childOption(ChannelOption.AUTO_READ, false)
            .childOption(ChannelOption.TCP_NODELAY, true)
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel channel) {
                    channel
                        .pipeline()
                        // A decoder and an encoder, not HttpServerCodec: the handshake replaces
                        // the decoder in place, so bytes a client sent right behind its upgrade
                        // request (frames already) reach the frame decoder, not the HTTP one.
                        .addLast(new HttpRequestDecoder(MAX_HEAD_BYTES, MAX_HEAD_BYTES, 8192))
                        .addLast(new HttpResponseEncoder())
                        .addLast(new HttpObjectAggregator(8192))
                        .addLast(new Upgrade(system, handlers, tokens, clientPort, requestHeaderTimeout, protocol));
                    channel.read();
                  }
                });
    CompletableFuture<InetSocketAddress> bound = new CompletableFuture<>();
    bootstrap
        .bind(iface, port)
        .addListener(
            (ChannelFutureListener)
                f -> {
                  if (!f.isSuccess()) {
                    acceptor.shutdownGracefully(0, 0, TimeUnit.SECONDS);
                    sockets.shutdownGracefully(0, 0, TimeUnit.SECONDS);
                    bound.completeExceptionally(f.cause());
                    return;
                  }
                  closeOnShutdown(system, f.channel(), acceptor, sockets);
                  bound.complete((InetSocketAddress) f.channel().localAddress());
                });
    return bound;
  }

  /**
   * New connections stop where the client port's do (service-unbind); open ones are drained
   * with the other sessions (each gets its 1012 close), and the threads end last.
   */
  private static void closeOnShutdown(ActorSystem<?> system, Channel server, EventLoopGroup acceptor, EventLoopGroup sockets) {
    CoordinatedShutdown shutdown = CoordinatedShutdown.get(system);
    shutdown.addTask(
        CoordinatedShutdown.PhaseServiceUnbind(),
        "parley-websocket-port-unbind",
        () -> {
          CompletableFuture<Done> done = new CompletableFuture<>();
          server.close().addListener(f -> done.complete(Done.getInstance()));
          return done;
        });
    shutdown.addTask(
        CoordinatedShutdown.PhaseBeforeActorSystemTerminate(),
        "parley-websocket-port-threads",
        () -> {
          CompletableFuture<Done> done = new CompletableFuture<>();
          acceptor.shutdownGracefully(0, 1, TimeUnit.SECONDS);
          sockets.shutdownGracefully(0, 1, TimeUnit.SECONDS).addListener(f -> done.complete(Done.getInstance()));
          return done;
        });
  }

  /**
   * Joins a message sent in fragments into one frame. A message past the hard limit closes the
   * socket with 1009, as the frame decoder does for one frame that large (not with the 1000
   * that a bare close would send).
   */
  private static final class MessageAssembler extends WebSocketFrameAggregator {
    MessageAssembler(int maxBytes) {
      super(maxBytes);
    }

    @Override
    protected void handleOversizedMessage(ChannelHandlerContext ctx, WebSocketFrame oversized) {
      oversized.release();
      ctx.writeAndFlush(new CloseWebSocketFrame(WebSocketCloseStatus.MESSAGE_TOO_BIG, "message too big"))
          .addListener(ChannelFutureListener.CLOSE);
    }
  }

  /**
   * The connection before its upgrade: the request head must come within the deadline, name
   * {@code GET /v1/ws}, and pass {@link WebSocketRoute#admit}; then the WebSocket handlers
   * take the pipeline and this one leaves it.
   */
  private static final class Upgrade extends SimpleChannelInboundHandler<FullHttpRequest> {

    private final ActorSystem<?> system;
    private final Handlers handlers;
    private final TokenService tokens;
    private final int clientPort;
    private final Duration requestHeaderTimeout;
    private final WebSocketServerProtocolConfig protocol;
    private ScheduledFuture<?> deadline;

    Upgrade(
        ActorSystem<?> system,
        Handlers handlers,
        TokenService tokens,
        int clientPort,
        Duration requestHeaderTimeout,
        WebSocketServerProtocolConfig protocol) {
      super(false);
      this.system = system;
      this.handlers = handlers;
      this.tokens = tokens;
      this.clientPort = clientPort;
      this.requestHeaderTimeout = requestHeaderTimeout;
      this.protocol = protocol;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      deadline = ctx.executor().schedule(() -> ctx.close(), requestHeaderTimeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
      deadline.cancel(false);
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      ctx.read(); // until the whole head is here
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
      if (!request.decoderResult().isSuccess()) {
        answer(ctx, request, plain(HttpResponseStatus.BAD_REQUEST, "The request could not be read"));
        return;
      }
      String path = request.uri().split("\\?", 2)[0];
      if (!path.equals("/v1/ws")) {
        answer(ctx, request, plain(HttpResponseStatus.NOT_FOUND, "This port serves GET /v1/ws only"));
        return;
      }
      if (!HttpMethod.GET.equals(request.method())) {
        answer(ctx, request, plain(HttpResponseStatus.METHOD_NOT_ALLOWED, "HTTP method not allowed, supported methods: GET"));
        return;
      }
      HttpRequest asPekko;
      try {
        asPekko = asPekko(request);
      } catch (RuntimeException badUri) {
        answer(ctx, request, plain(HttpResponseStatus.BAD_REQUEST, "The request's URI could not be read"));
        return;
      }
      WebSocketRoute.Admission admission = WebSocketRoute.admit(asPekko, handlers, tokens, clientPort);
      if (admission instanceof WebSocketRoute.Admission.Refused refused) {
        answer(ctx, request, fromPekko(refused.answer()));
        return;
      }
      var admitted = (WebSocketRoute.Admission.Admitted) admission;
      if (!request.headers().containsValue(HttpHeaderNames.UPGRADE, HttpHeaderValues.WEBSOCKET, true)) {
        // Not an upgrade: answered 400 below, and no session is made. Its place is given back
        // before the answer, as on the client port: a client that sends its next request as soon
        // as it reads the 400 must find it free, not wait for this socket's close.
        admitted.abandon();
      }
      ctx.pipeline()
          .addLast(new WebSocketServerProtocolHandler(protocol))
          .addLast(new MessageAssembler((int) protocol.decoderConfig().maxFramePayloadLength()))
          .addLast(new NettySocket(system, admitted, handlers.settings().maxFrameBytes(), handlers.settings().outboundBuffer()));
      // A request without Upgrade gets the protocol handler's 400, as on the client port.
      ctx.fireChannelRead(request);
      ctx.pipeline().remove(this);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }

    private static void answer(ChannelHandlerContext ctx, FullHttpRequest request, FullHttpResponse response) {
      request.release();
      ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
    }

    private static HttpRequest asPekko(FullHttpRequest request) {
      HttpRequest converted = HttpRequest.create(request.uri());
      for (Map.Entry<String, String> header : request.headers()) {
        converted = converted.addHeader(RawHeader.create(header.getKey(), header.getValue()));
      }
      return converted;
    }

    private static FullHttpResponse plain(HttpResponseStatus status, String text) {
      FullHttpResponse response =
          new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.copiedBuffer(text, StandardCharsets.UTF_8));
      response.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain; charset=UTF-8");
      response.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, response.content().readableBytes());
      return response;
    }

    /** An answer {@link WebSocketRoute#admit} built (a strict JSON entity) as Netty's. */
    private static FullHttpResponse fromPekko(HttpResponse answer) {
      byte[] body = ((HttpEntity.Strict) answer.entity()).getData().toArray();
      FullHttpResponse response =
          new DefaultFullHttpResponse(
              HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(answer.status().intValue()), Unpooled.wrappedBuffer(body));
      for (HttpHeader header : answer.getHeaders()) {
        response.headers().add(header.name(), header.value());
      }
      response.headers().set(HttpHeaderNames.CONTENT_TYPE, answer.entity().getContentType().toString());
      response.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, body.length);
      return response;
    }
  }
}
