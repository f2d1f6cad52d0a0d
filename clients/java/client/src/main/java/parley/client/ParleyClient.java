package parley.client;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * The reference client of the Parley WebSocket protocol, version 1 ({@code docs/protocol.md}).
 *
 * <p>One instance is one connection. {@link #connect} completes once the server's
 * {@code welcome} has arrived. Every request gets a fresh {@code id} and its future completes
 * with the {@code ok} (or {@code pong}) reply carrying that id, fails with a {@link
 * ParleyException} whose code is the server's for an {@code error} reply, or fails with code
 * {@code timeout} when no reply comes within the request timeout.
 *
 * <p>Every other frame is a push: room events, {@code typing}, {@code read}, {@code receipt},
 * {@code presence}, types this client does not know, an {@code error} without an id, and a
 * reply whose request already timed out. The server's heartbeat {@code ping} is no push: the
 * client answers it with {@code pong} at once, which is what keeps the connection open
 * (a client silent for the welcome's {@code pingInterval} + {@code pingTimeout} is closed).
 * Pushes go, in arrival order, to the {@link
 * #onPush listeners} and into a bounded buffer that tests read with {@link #awaitPush} and
 * {@link #pushes}. The client remembers the highest event {@code seq} seen per room so that a
 * caller can {@link #resume} from {@link #positions()} after reconnecting.
 *
 * <p>Futures complete on a client thread pool, never on the socket's receive thread, so a
 * caller may block in a continuation. Push listeners run on the receive thread, in order, and
 * must not block. Instances are safe for use from many threads.
 *
 * <p>Uses only the JDK's {@link HttpClient} WebSocket and Jackson, so it runs anywhere the node
 * jar does: integration tests, the load tool, the multi-JVM tests.
 */
public final class ParleyClient implements AutoCloseable {

  public static final String SUBPROTOCOL = "parley.v1";
  public static final int PROTOCOL_VERSION = 1;

  /**
   * Timeouts and buffer size of one connection.
   *
   * @param requestTimeout how long a request waits for its reply
   * @param connectTimeout how long {@link #connect} waits for the upgrade and the welcome, and
   *     {@link #close} for the server's close frame
   * @param pushBuffer how many pushes are kept for {@link #awaitPush} and {@link #pushes}; the
   *     oldest are dropped beyond it, and 0 keeps none (listeners still see every push)
   */
  public record Options(Duration requestTimeout, Duration connectTimeout, int pushBuffer) {

    public Options {
      Objects.requireNonNull(requestTimeout, "requestTimeout");
      Objects.requireNonNull(connectTimeout, "connectTimeout");
      if (pushBuffer < 0) {
        throw new IllegalArgumentException("pushBuffer must be >= 0");
      }
    }

    public static Options defaults() {
      return new Options(Duration.ofSeconds(10), Duration.ofSeconds(10), 100_000);
    }

    public Options withRequestTimeout(Duration timeout) {
      return new Options(timeout, connectTimeout, pushBuffer);
    }

    public Options withConnectTimeout(Duration timeout) {
      return new Options(requestTimeout, timeout, pushBuffer);
    }

    public Options withPushBuffer(int size) {
      return new Options(requestTimeout, connectTimeout, size);
    }
  }

  private static final System.Logger LOG = System.getLogger(ParleyClient.class.getName());
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final String PONG = "{\"type\":\"pong\"}";

  // Shared by all connections: one selector thread serves thousands of sockets in the load tool.
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final ExecutorService CALLBACKS =
      Executors.newCachedThreadPool(daemonThreads("parley-client-callback"));
  private static final ScheduledThreadPoolExecutor TIMERS = newTimers();

  private final Options options;
  private final CompletableFuture<ParleyClient> welcomed = new CompletableFuture<>();
  private final CompletableFuture<CloseStatus> closed = new CompletableFuture<>();
  private final AtomicLong ids = new AtomicLong();
  private final Map<String, Pending> pending = new ConcurrentHashMap<>();
  private final Map<String, Long> lastSeqs = new ConcurrentHashMap<>();
  private final List<Consumer<JsonNode>> listeners = new CopyOnWriteArrayList<>();

  private final ReentrantLock pushLock = new ReentrantLock();
  private final Condition pushArrived = pushLock.newCondition();
  private final ArrayDeque<JsonNode> received = new ArrayDeque<>();
  private final ArrayDeque<JsonNode> unconsumed = new ArrayDeque<>();
  private boolean overflowLogged;

  // java.net.http allows one outstanding send per socket, so every send waits for the one before.
  private final Object sendLock = new Object();
  private CompletableFuture<?> lastSend = CompletableFuture.completedFuture(null);

  private volatile WebSocket webSocket;
  private volatile String userId;
  private volatile String sessionId;
  private volatile String node;
  /** From the welcome: milliseconds the connection's token had left, or -1 if not said. */
  private volatile long tokenExpiresIn = -1;

  private ParleyClient(Options options) {
    this.options = options;
  }

  // ---------------------------------------------------------------------------------------------
  // Connecting

  /** Connects with {@link Options#defaults()}. */
  public static CompletableFuture<ParleyClient> connect(URI wsUri, String token) {
    return connect(wsUri, token, Options.defaults());
  }

  /**
   * Opens a WebSocket to {@code wsUri} (for example {@code ws://127.0.0.1:8080/v1/ws}) with the
   * token as {@code Authorization: Bearer} and the {@code parley.v1} subprotocol, and completes
   * once the {@code welcome} frame has arrived. A refused upgrade fails with the server's error
   * code (such as {@code token_expired}) and the HTTP status.
   */
  public static CompletableFuture<ParleyClient> connect(
      URI wsUri, String token, Options options) {
    ParleyClient client = new ParleyClient(options);
    HTTP.newWebSocketBuilder()
        .header("Authorization", "Bearer " + token)
        .subprotocols(SUBPROTOCOL)
        .connectTimeout(options.connectTimeout())
        .buildAsync(wsUri, client.new Receiver())
        .whenComplete(
            (ws, failure) -> {
              if (failure != null) {
                client.welcomed.completeExceptionally(handshakeFailure(failure));
              }
            });
    ScheduledFuture<?> welcomeTimer =
        TIMERS.schedule(
            () ->
                client.failConnect(
                    new ParleyException(
                        ParleyException.TIMEOUT,
                        "no welcome within " + options.connectTimeout())),
            options.connectTimeout().toMillis(),
            TimeUnit.MILLISECONDS);
    client.welcomed.whenComplete((c, failure) -> welcomeTimer.cancel(false));
    // Callers continue on the callback pool, not on the socket thread that saw the welcome.
    return client.welcomed.thenApplyAsync(Function.identity(), CALLBACKS);
  }

  /**
   * Asks a dev-profile node for a token ({@code POST /v1/dev/token}) and returns it. {@code
   * httpBase} is the node's HTTP address, for example {@code http://127.0.0.1:8080}.
   */
  public static String devToken(URI httpBase, String user) {
    HttpRequest request =
        HttpRequest.newBuilder(httpBase.resolve("/v1/dev/token"))
            .timeout(Options.defaults().requestTimeout())
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(object("user", user).toString()))
            .build();
    HttpResponse<String> response;
    try {
      response = HTTP.send(request, HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new ParleyException(
          ParleyException.CONNECT_FAILED, "POST " + request.uri() + " failed: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ParleyException(
          ParleyException.CONNECT_FAILED, "interrupted while fetching a token", e);
    }
    if (response.statusCode() != 200) {
      throw httpFailure(response.statusCode(), response.body());
    }
    JsonNode token = parse(response.body()).path("token");
    if (!token.isTextual()) {
      throw new ParleyException(
          ParleyException.PROTOCOL_ERROR, "no token in dev token reply: " + response.body());
    }
    return token.asText();
  }

  /** The user id the server authenticated, from the welcome. */
  public String userId() {
    return userId;
  }

  /** The server's id for this connection, from the welcome. */
  public String sessionId() {
    return sessionId;
  }

  /** The cluster node that holds this connection, from the welcome. */
  public String node() {
    return node;
  }

  /**
   * How long the connection's token had left when the server welcomed it (-1 if it did not
   * say). The server closes the connection (4401 {@code token_expired}) when the token expires
   * unless {@link #refresh} gives it a newer one first.
   */
  public Duration tokenExpiresIn() {
    return tokenExpiresIn < 0 ? null : Duration.ofMillis(tokenExpiresIn);
  }

  // ---------------------------------------------------------------------------------------------
  // Requests

  /**
   * Sends a request of {@code type} with {@code fields} (may be null) and completes with the
   * reply. Field values are converted with Jackson, so strings, numbers, booleans, maps and
   * lists all work.
   */
  public CompletableFuture<JsonNode> request(String type, Map<String, ?> fields) {
    ObjectNode frame = MAPPER.createObjectNode().put("type", type);
    if (fields != null) {
      frame.setAll((ObjectNode) MAPPER.valueToTree(fields));
      // The type argument wins over a "type" among the fields.
      frame.put("type", type);
    }
    return request(frame);
  }

  /**
   * Sends {@code frame}, which must have a {@code type}, and completes with the reply. The
   * client adds a fresh {@code id}; an {@code id} already in the frame is kept, so a test can
   * choose one, and must then be unique among the requests in flight.
   */
  public CompletableFuture<JsonNode> request(ObjectNode frame) {
    return request(frame, options.requestTimeout());
  }

  /** As {@link #request(ObjectNode)}, with its own timeout. */
  public CompletableFuture<JsonNode> request(ObjectNode frame, Duration timeout) {
    if (!frame.path("type").isTextual()) {
      throw new IllegalArgumentException("a request needs a type: " + frame);
    }
    ObjectNode out = MAPPER.createObjectNode();
    out.set("type", frame.get("type"));
    out.put("id", Long.toString(ids.incrementAndGet()));
    out.setAll(frame);
    String id = out.get("id").asText();

    CompletableFuture<JsonNode> reply = new CompletableFuture<>();
    Pending entry = new Pending(reply);
    if (pending.putIfAbsent(id, entry) != null) {
      return CompletableFuture.failedFuture(
          new IllegalArgumentException("a request with id " + id + " is already in flight"));
    }
    entry.timer =
        TIMERS.schedule(
            () ->
                fail(
                    id,
                    new ParleyException(
                        ParleyException.TIMEOUT,
                        "no reply to " + out.get("type").asText() + " (id " + id + ") within "
                            + timeout)),
            timeout.toMillis(),
            TimeUnit.MILLISECONDS);
    // A close that raced the registration above has already drained the map, so check again.
    if (closed.isDone()) {
      fail(id, closedFailure());
    } else {
      enqueue(ws -> ws.sendText(out.toString(), true))
          .whenComplete(
              (ok, failure) -> {
                if (failure != null) {
                  fail(id, sendFailure(failure));
                }
              });
    }
    return reply;
  }

  public CompletableFuture<Long> createRoom(String room, String visibility, String topic) {
    ObjectNode frame = frame("create_room").put("room", room);
    putIfNotNull(frame, "visibility", visibility);
    putIfNotNull(frame, "topic", topic);
    return request(frame).thenApply(ParleyClient::seq);
  }

  public CompletableFuture<Long> join(String room) {
    return request(frame("join").put("room", room)).thenApply(ParleyClient::seq);
  }

  public CompletableFuture<Long> leave(String room) {
    return request(frame("leave").put("room", room)).thenApply(ParleyClient::seq);
  }

  public CompletableFuture<Long> invite(String room, String user) {
    return request(frame("invite").put("room", room).put("user", user))
        .thenApply(ParleyClient::seq);
  }

  public CompletableFuture<Long> removeMember(String room, String user) {
    return request(frame("remove_member").put("room", room).put("user", user))
        .thenApply(ParleyClient::seq);
  }

  public CompletableFuture<Long> setTopic(String room, String topic) {
    return request(frame("set_topic").put("room", room).put("topic", topic))
        .thenApply(ParleyClient::seq);
  }

  /** The {@code rooms} array: {@code [{room, lastSeq, readSeq, unread}]}. */
  public CompletableFuture<JsonNode> listRooms() {
    return request(frame("list_rooms")).thenApply(reply -> reply.path("rooms"));
  }

  /** The whole reply: {@code room}, {@code members}, {@code topic}, {@code visibility}. */
  public CompletableFuture<JsonNode> listMembers(String room) {
    return request(frame("list_members").put("room", room));
  }

  public CompletableFuture<Sent> send(String room, String clientMsgId, String body) {
    return request(
            frame("send").put("room", room).put("clientMsgId", clientMsgId).put("body", body))
        .thenApply(reply -> Sent.fromReply(reply, clientMsgId));
  }

  public CompletableFuture<Sent> sendDm(String to, String clientMsgId, String body) {
    return request(
            frame("send_dm").put("to", to).put("clientMsgId", clientMsgId).put("body", body))
        .thenApply(reply -> Sent.fromReply(reply, clientMsgId));
  }

  public CompletableFuture<Sent> edit(String room, long target, String clientMsgId, String body) {
    return request(
            frame("edit")
                .put("room", room)
                .put("target", target)
                .put("clientMsgId", clientMsgId)
                .put("body", body))
        .thenApply(reply -> Sent.fromReply(reply, clientMsgId));
  }

  public CompletableFuture<Sent> delete(String room, long target, String clientMsgId) {
    return request(
            frame("delete").put("room", room).put("target", target).put("clientMsgId", clientMsgId))
        .thenApply(reply -> Sent.fromReply(reply, clientMsgId));
  }

  /**
   * A page of the room's timeline, oldest first, ending before {@code before} (null: the newest).
   * The whole reply: {@code room}, {@code events}, {@code hasMore}.
   */
  public CompletableFuture<JsonNode> history(String room, Long before, int limit) {
    ObjectNode frame = frame("history").put("room", room).put("limit", limit);
    if (before != null) {
      frame.put("before", before);
    }
    return request(frame);
  }

  /**
   * Starts the event stream. With {@code positions} (typically {@link #positions()} of the
   * previous connection) the server replays what came after each; rooms left out, or all rooms
   * when {@code positions} is null, start after the read marker. Completes with each room's
   * latest seq.
   */
  public CompletableFuture<Map<String, Long>> resume(Map<String, Long> positions) {
    ObjectNode frame = frame("resume");
    if (positions != null) {
      ObjectNode rooms = frame.putObject("rooms");
      positions.forEach(rooms::put);
    }
    return request(frame)
        .thenApply(
            reply -> {
              Map<String, Long> latest = new LinkedHashMap<>();
              reply
                  .path("rooms")
                  .properties()
                  .forEach(room -> latest.put(room.getKey(), room.getValue().asLong()));
              return Map.copyOf(latest);
            });
  }

  /** The whole reply: {@code room}, {@code readSeq}, {@code unread}. */
  public CompletableFuture<JsonNode> markRead(String room, long seq) {
    return request(frame("mark_read").put("room", room).put("seq", seq));
  }

  /**
   * Tells the room this user is typing. The server never replies, so the future completes once
   * the frame is written.
   */
  public CompletableFuture<Void> typing(String room) {
    // Every request carries an id, even one the server never answers.
    String id = Long.toString(ids.incrementAndGet());
    String text = frame("typing").put("id", id).put("room", room).toString();
    if (closed.isDone()) {
      return CompletableFuture.failedFuture(closedFailure());
    }
    return enqueue(ws -> ws.sendText(text, true))
        .exceptionallyCompose(failure -> CompletableFuture.failedFuture(sendFailure(failure)));
  }

  /**
   * Hands the server a new token for this connection's user, so the connection outlives the
   * token it was opened with; completes with how long the new token has left. A refused token
   * fails with its code ({@code token_user_mismatch}, {@code token_expired}, …) and changes
   * nothing.
   */
  public CompletableFuture<Duration> refresh(String token) {
    ObjectNode frame = frame("refresh");
    frame.put("token", token);
    return request(frame).thenApply(ok -> Duration.ofMillis(ok.path("tokenExpiresIn").asLong()));
  }

  /** Round trip of a {@code ping}, answered by {@code pong}. */
  public CompletableFuture<Duration> ping() {
    long start = System.nanoTime();
    return request(frame("ping")).thenApply(pong -> Duration.ofNanos(System.nanoTime() - start));
  }

  // ---------------------------------------------------------------------------------------------
  // Pushes

  /**
   * Adds a listener for every push from now on. It runs on the socket's receive thread, in
   * arrival order; it must be quick and must not block (not on a reply, not in {@link #close}),
   * since nothing else is read meanwhile. A listener that throws is logged and does not disturb
   * the others.
   */
  public void onPush(Consumer<JsonNode> listener) {
    listeners.add(Objects.requireNonNull(listener));
  }

  /**
   * Waits for the first push not yet returned by this method that matches, and returns it;
   * pushes that do not match stay available for later calls. Fails with code {@code timeout}
   * when none arrives in time, or {@code closed} when the connection ends first. Meant for
   * tests; volume belongs in a listener.
   */
  public JsonNode awaitPush(Predicate<JsonNode> match, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    pushLock.lock();
    try {
      while (true) {
        for (Iterator<JsonNode> it = unconsumed.iterator(); it.hasNext(); ) {
          JsonNode push = it.next();
          if (match.test(push)) {
            it.remove();
            return push;
          }
        }
        if (closed.isDone()) {
          throw new ParleyException(
              ParleyException.CLOSED,
              "connection closed (" + closed.join() + ") before a matching push arrived");
        }
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new ParleyException(
              ParleyException.TIMEOUT, "no matching push within " + timeout);
        }
        pushArrived.awaitNanos(left);
      }
    } finally {
      pushLock.unlock();
    }
  }

  /** Every push kept so far (up to the buffer size), oldest first, whether awaited or not. */
  public List<JsonNode> pushes() {
    pushLock.lock();
    try {
      return List.copyOf(received);
    } finally {
      pushLock.unlock();
    }
  }

  /** The highest {@code seq} of an {@code event} pushed for {@code room}, or 0 if none yet. */
  public long lastSeq(String room) {
    return lastSeqs.getOrDefault(room, 0L);
  }

  /** {@link #lastSeq} of every room that pushed an event: what {@link #resume} takes. */
  public Map<String, Long> positions() {
    return Map.copyOf(lastSeqs);
  }

  // ---------------------------------------------------------------------------------------------
  // Closing

  /** Completes when the connection ends, with the server's close code and reason. */
  public CompletableFuture<CloseStatus> closed() {
    return closed.thenApplyAsync(Function.identity(), CALLBACKS);
  }

  /**
   * Sends a normal close (1000) and waits up to the connect timeout for the server's close;
   * then drops the socket. Requests still in flight fail with code {@code closed}.
   */
  @Override
  public void close() {
    if (closed.isDone()) {
      return;
    }
    enqueue(ws -> ws.sendClose(WebSocket.NORMAL_CLOSURE, ""));
    try {
      closed.get(options.connectTimeout().toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException | ExecutionException e) {
      abort("no close frame from the server within " + options.connectTimeout());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      abort("interrupted while closing");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  /** Reassembles frames and routes them; the JDK calls it one message part at a time. */
  private final class Receiver implements WebSocket.Listener {

    private final StringBuilder parts = new StringBuilder();

    @Override
    public void onOpen(WebSocket ws) {
      webSocket = ws;
      if (!SUBPROTOCOL.equals(ws.getSubprotocol())) {
        // Browsers drop such a connection, so the reference client does too.
        failConnect(
            new ParleyException(
                ParleyException.HANDSHAKE_FAILED,
                "server did not select the " + SUBPROTOCOL + " subprotocol"));
        return;
      }
      ws.request(1);
    }

    @Override
    public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
      parts.append(data);
      if (last) {
        String text = parts.toString();
        parts.setLength(0);
        onFrame(text);
      }
      ws.request(1);
      return null;
    }

    @Override
    public CompletionStage<?> onBinary(WebSocket ws, ByteBuffer data, boolean last) {
      LOG.log(Level.WARNING, "Ignoring a binary frame: protocol v1 is JSON text only");
      ws.request(1);
      return null;
    }

    @Override
    public CompletionStage<?> onClose(WebSocket ws, int code, String reason) {
      onClosed(new CloseStatus(code, reason));
      return null;
    }

    @Override
    public void onError(WebSocket ws, Throwable error) {
      onClosed(new CloseStatus(CloseStatus.ABNORMAL, String.valueOf(error)));
    }
  }

  private void onFrame(String text) {
    JsonNode frame;
    try {
      frame = MAPPER.readTree(text);
    } catch (JsonProcessingException e) {
      LOG.log(Level.WARNING, "Ignoring a frame that is not JSON: {0}", abbreviate(text));
      return;
    }
    if (frame == null || !frame.isObject()) {
      LOG.log(Level.WARNING, "Ignoring a frame that is not a JSON object: {0}", abbreviate(text));
      return;
    }
    String type = frame.path("type").asText("");
    if (type.equals("ping") && !frame.has("id")) {
      // The server's heartbeat. A failed send means the socket is closing, which onClose reports.
      enqueue(ws -> ws.sendText(PONG, true));
      return;
    }
    if (type.equals("welcome") && !welcomed.isDone()) {
      onWelcome(frame);
      return;
    }
    boolean reply = type.equals("ok") || type.equals("pong") || type.equals("error");
    if (reply && frame.hasNonNull("id")) {
      Pending entry = pending.remove(frame.get("id").asText());
      if (entry != null) {
        entry.cancelTimer();
        CALLBACKS.execute(() -> entry.resolve(frame));
        return;
      }
    }
    onPushFrame(type, frame);
  }

  private void onWelcome(JsonNode welcome) {
    int protocol = welcome.path("protocol").asInt(PROTOCOL_VERSION);
    if (protocol != PROTOCOL_VERSION || !welcome.path("user").isTextual()) {
      failConnect(
          new ParleyException(
              ParleyException.PROTOCOL_ERROR,
              "welcome is not protocol " + PROTOCOL_VERSION + ": " + welcome));
      return;
    }
    userId = welcome.get("user").asText();
    sessionId = welcome.path("session").asText(null);
    node = welcome.path("node").asText(null);
    tokenExpiresIn = welcome.path("tokenExpiresIn").asLong(-1);
    welcomed.complete(this);
  }

  private void onPushFrame(String type, JsonNode push) {
    // Before the buffer and the listeners, so whoever sees the event can already resume past it.
    if (type.equals("event")
        && push.path("room").isTextual()
        && push.path("seq").isIntegralNumber()) {
      lastSeqs.merge(push.get("room").asText(), push.get("seq").asLong(), Math::max);
    }
    if (options.pushBuffer() > 0) {
      pushLock.lock();
      try {
        keep(received, push);
        keep(unconsumed, push);
        pushArrived.signalAll();
      } finally {
        pushLock.unlock();
      }
    }
    for (Consumer<JsonNode> listener : listeners) {
      try {
        listener.accept(push);
      } catch (RuntimeException e) {
        LOG.log(Level.WARNING, "A push listener failed", e);
      }
    }
  }

  private void keep(ArrayDeque<JsonNode> buffer, JsonNode push) {
    if (buffer.size() >= options.pushBuffer()) {
      buffer.removeFirst();
      if (!overflowLogged) {
        overflowLogged = true;
        LOG.log(
            Level.WARNING,
            "Push buffer of {0} is full; dropping the oldest pushes",
            options.pushBuffer());
      }
    }
    buffer.addLast(push);
  }

  private void onClosed(CloseStatus status) {
    if (!closed.complete(status)) {
      return;
    }
    welcomed.completeExceptionally(
        new ParleyException(ParleyException.CLOSED, "closed before the welcome: " + status));
    for (String id : List.copyOf(pending.keySet())) {
      fail(id, closedFailure());
    }
    pushLock.lock();
    try {
      pushArrived.signalAll();
    } finally {
      pushLock.unlock();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  /** A request waiting for its reply. */
  private static final class Pending {
    final CompletableFuture<JsonNode> reply;
    volatile ScheduledFuture<?> timer;

    Pending(CompletableFuture<JsonNode> reply) {
      this.reply = reply;
    }

    void cancelTimer() {
      ScheduledFuture<?> scheduled = timer;
      if (scheduled != null) {
        scheduled.cancel(false);
      }
    }

    void resolve(JsonNode frame) {
      if (frame.path("type").asText().equals("error")) {
        reply.completeExceptionally(ParleyException.of(frame));
      } else {
        reply.complete(frame);
      }
    }
  }

  private void fail(String id, ParleyException failure) {
    Pending entry = pending.remove(id);
    if (entry != null) {
      entry.cancelTimer();
      CALLBACKS.execute(() -> entry.reply.completeExceptionally(failure));
    }
  }

  private void failConnect(ParleyException failure) {
    if (welcomed.completeExceptionally(failure)) {
      abort(failure.getMessage());
    }
  }

  private void abort(String reason) {
    WebSocket ws = webSocket;
    if (ws != null) {
      ws.abort();
    }
    onClosed(new CloseStatus(CloseStatus.ABNORMAL, reason));
  }

  private CompletableFuture<Void> enqueue(Function<WebSocket, CompletableFuture<WebSocket>> send) {
    synchronized (sendLock) {
      CompletableFuture<Void> next =
          lastSend
              // A failed send must not hold up the ones queued behind it.
              .handle((ignored, failure) -> null)
              .thenCompose(ignored -> send.apply(webSocket))
              .thenApply(ws -> null);
      lastSend = next;
      return next;
    }
  }

  private ParleyException closedFailure() {
    return new ParleyException(
        ParleyException.CLOSED, "connection closed: " + closed.getNow(null));
  }

  private ParleyException sendFailure(Throwable failure) {
    Throwable cause = failure instanceof CompletionException ? failure.getCause() : failure;
    return new ParleyException(ParleyException.CLOSED, "could not send: " + cause, cause);
  }

  private static ParleyException handshakeFailure(Throwable failure) {
    Throwable cause = failure instanceof CompletionException ? failure.getCause() : failure;
    if (cause instanceof WebSocketHandshakeException refused) {
      HttpResponse<?> response = refused.getResponse();
      Object body = response.body();
      return httpFailure(response.statusCode(), body instanceof String s ? s : "");
    }
    if (cause instanceof HttpConnectTimeoutException) {
      return new ParleyException(ParleyException.TIMEOUT, String.valueOf(cause), cause);
    }
    return new ParleyException(ParleyException.CONNECT_FAILED, String.valueOf(cause), cause);
  }

  /** The server's {@code {"type":"error","code":…}} body if there is one, else a generic code. */
  private static ParleyException httpFailure(int status, String body) {
    JsonNode error = parseOrNull(body);
    if (error != null && error.path("code").isTextual()) {
      return new ParleyException(
          error.get("code").asText(), error.path("message").asText("HTTP " + status), status);
    }
    return new ParleyException(
        ParleyException.HANDSHAKE_FAILED, "HTTP " + status + ": " + abbreviate(body), status);
  }

  private static long seq(JsonNode reply) {
    return reply.path("seq").asLong();
  }

  private static ObjectNode frame(String type) {
    return MAPPER.createObjectNode().put("type", type);
  }

  private static ObjectNode object(String field, String value) {
    return MAPPER.createObjectNode().put(field, value);
  }

  private static void putIfNotNull(ObjectNode frame, String field, String value) {
    if (value != null) {
      frame.put(field, value);
    }
  }

  private static JsonNode parse(String text) {
    JsonNode node = parseOrNull(text);
    if (node == null) {
      throw new ParleyException(ParleyException.PROTOCOL_ERROR, "not JSON: " + abbreviate(text));
    }
    return node;
  }

  private static JsonNode parseOrNull(String text) {
    if (text == null || text.isBlank()) {
      return null;
    }
    try {
      return MAPPER.readTree(text);
    } catch (JsonProcessingException e) {
      return null;
    }
  }

  private static String abbreviate(String text) {
    return text.length() <= 200 ? text : text.substring(0, 200) + "…";
  }

  private static ThreadFactory daemonThreads(String name) {
    AtomicLong count = new AtomicLong();
    return task -> {
      Thread thread = new Thread(task, name + "-" + count.incrementAndGet());
      thread.setDaemon(true);
      return thread;
    };
  }

  private static ScheduledThreadPoolExecutor newTimers() {
    ScheduledThreadPoolExecutor timers =
        new ScheduledThreadPoolExecutor(1, daemonThreads("parley-client-timer"));
    // Nearly every timer is cancelled by its reply; don't keep them queued until they expire.
    timers.setRemoveOnCancelPolicy(true);
    return timers;
  }
}
