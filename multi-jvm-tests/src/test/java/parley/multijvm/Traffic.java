package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import parley.client.ParleyClient;
import parley.client.ParleyException;
import parley.client.Sent;

/**
 * Steady chat load against a cluster, and the ledger of what the cluster promised.
 *
 * <p>Writers each own one user and one room and send a message at a steady pace, each with a
 * fresh {@code clientMsgId}. A failed send is retried with the same id (idempotency makes
 * that safe); after a closed connection, or two timeouts in a row, the writer reconnects to
 * another running node. Every acknowledgement is recorded with when its attempt was sent and
 * when the answer came.
 *
 * <p>Readers are members of every room; each follows them all over one connection, records
 * every event pushed to it, and when its connection ends reconnects to another node and
 * resumes from the last seq it saw of each room.
 *
 * <p>{@link #verify} then reads every room's history and checks it against the ledger: the
 * timeline is gap-free from 1, every acknowledged message sits at its acknowledged seq, no
 * message is stored twice, and each writer's messages are in the order it sent them. {@link
 * #awaitReaders} checks that every reader saw every seq exactly once, in order.
 */
final class Traffic implements AutoCloseable {

  /** One acknowledged send: {@code sentAt} is when the attempt that got it was sent. */
  record Ack(String writer, String room, String clientMsgId, long seq, boolean duplicate, long sentAt, long ackedAt) {}

  /** One failed attempt and its error code. */
  record Failure(String room, String clientMsgId, String code, long at) {}

  /** A reader was told {@code user} went offline, at {@code at} (System.nanoTime()). */
  record Offline(String user, long at) {}

  private static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(90);
  private static final ParleyClient.Options OPTIONS =
      ParleyClient.Options.defaults()
          .withRequestTimeout(Duration.ofSeconds(5))
          .withConnectTimeout(Duration.ofSeconds(3))
          .withPushBuffer(0);

  private final String prefix;
  private final Supplier<List<ClusterNode>> nodes;
  private final Map<String, Integer> writersPerRoom;
  private final Duration pace;
  private final Map<String, String> tokens = new ConcurrentHashMap<>();
  private final List<Writer> writers = new ArrayList<>();
  private final List<Reader> readers = new ArrayList<>();
  private final List<Ack> acks = new CopyOnWriteArrayList<>();
  private final List<Failure> failures = new CopyOnWriteArrayList<>();
  private final List<Offline> offline = new CopyOnWriteArrayList<>();
  private final List<String> fatal = new CopyOnWriteArrayList<>();
  private final Map<String, List<JsonNode>> histories = new ConcurrentHashMap<>();
  private final ExecutorService background = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "traffic-background");
    t.setDaemon(true);
    return t;
  });
  private volatile boolean running;
  private volatile long drainDeadline = Long.MAX_VALUE;

  /**
   * {@code writersPerRoom} names the rooms (created by the first writer of each) and how many
   * writers each gets; writer {@code i} connects first to running node {@code i % n}, reader
   * {@code j} to node {@code j % n}.
   */
  Traffic(String prefix, Supplier<List<ClusterNode>> nodes, Map<String, Integer> writersPerRoom, int readers, Duration pace) {
    this.prefix = prefix;
    this.nodes = nodes;
    this.writersPerRoom = new LinkedHashMap<>(writersPerRoom);
    this.pace = pace;
    int w = 0;
    for (Map.Entry<String, Integer> room : this.writersPerRoom.entrySet()) {
      for (int i = 0; i < room.getValue(); i++) {
        writers.add(new Writer(prefix + "-w" + w, room.getKey(), w));
        w++;
      }
    }
    for (int r = 0; r < readers; r++) {
      this.readers.add(new Reader(prefix + "-r" + r, r));
    }
  }

  Set<String> rooms() {
    return writersPerRoom.keySet();
  }

  /** Creates the rooms, makes every writer and reader a member, then starts the load. */
  Traffic start() throws Exception {
    Map<String, Boolean> created = new HashMap<>();
    for (Writer writer : writers) {
      try (ParleyClient client = connect(writer.user, writer.index)) {
        if (created.putIfAbsent(writer.room, true) == null) {
          client.createRoom(writer.room, "public", "load").get(15, TimeUnit.SECONDS);
        } else {
          client.join(writer.room).get(15, TimeUnit.SECONDS);
        }
      }
    }
    joinAll(auditor(), 0);
    for (Reader reader : readers) {
      joinAll(reader.user, reader.index);
      reader.connect();
    }
    running = true;
    writers.forEach(Writer::start);
    return this;
  }

  /** Stops sending: each writer sees its last message acknowledged (retrying), then ends. */
  void stop() throws InterruptedException {
    running = false;
    drainDeadline = System.nanoTime() + DRAIN_TIMEOUT.toNanos();
    for (Writer writer : writers) {
      writer.thread.join(DRAIN_TIMEOUT.toMillis() + 10_000);
    }
  }

  List<Ack> acks() {
    return List.copyOf(acks);
  }

  List<Failure> failures() {
    return List.copyOf(failures);
  }

  int readerReconnects() {
    return readers.stream().mapToInt(r -> r.reconnects).sum();
  }

  /** The readers whose connection ended at least once (and who reconnected). */
  Set<String> reconnectedReaders() {
    return readers.stream().filter(r -> r.reconnects > 0).map(r -> r.user).collect(Collectors.toSet());
  }

  /** The users some reader was told went offline at or after {@code since} (System.nanoTime()). */
  Set<String> wentOfflineSince(long since) {
    return offline.stream().filter(o -> o.at() >= since).map(Offline::user).collect(Collectors.toSet());
  }

  /**
   * The positive control of {@link #wentOfflineSince}: a new user joins every room on one
   * connection and closes it cleanly, which ends their only session at once, so the readers
   * must be told they went offline. Returns when one was; fails if none was within {@code
   * timeout} of the close.
   */
  void awaitCleanCloseSeenOffline(Duration timeout) throws Exception {
    String user = prefix + "-leaver";
    long since = System.nanoTime();
    long deadline = since + timeout.toNanos();
    try (ParleyClient client = connect(user, 0)) {
      // Shards may still be moving to a node that just came back, so a request may time out;
      // a client retries it (a join is idempotent).
      for (String room : rooms()) {
        retrying(() -> client.join(room));
      }
      // A room tells the user's entity of a join after journaling it: the offline notice goes
      // to the rooms the entity knows, so wait until it knows them all.
      while (!retrying(() -> client.resume(Map.of())).keySet().containsAll(rooms())) {
        if (System.nanoTime() > deadline) {
          throw new AssertionError(user + "'s room list never held all of " + rooms());
        }
        Thread.sleep(50);
      }
    }
    long closedAt = System.nanoTime();
    deadline = closedAt + timeout.toNanos();
    while (!wentOfflineSince(since).contains(user)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("no reader was told " + user + " went offline within " + timeout + " of a clean close");
      }
      Thread.sleep(50);
    }
    Measured.print(prefix, "joining, then closing cleanly took", Measured.since(since).minus(Measured.since(closedAt)));
    Measured.print(prefix, "a reader was told of the clean close within", Measured.since(closedAt));
  }

  /** Acknowledgements of {@code room} so far. */
  long acked(String room) {
    return acks.stream().filter(a -> a.room().equals(room)).count();
  }

  /** Waits until {@code room} has at least {@code count} more acknowledgements than now. */
  void awaitAcks(String room, int count, Duration timeout) throws InterruptedException {
    long target = acked(room) + count;
    long deadline = System.nanoTime() + timeout.toNanos();
    while (acked(room) < target) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(room + " got fewer than " + count + " acknowledgements in " + timeout + "; failures: " + failureCodes(0, Long.MAX_VALUE));
      }
      Thread.sleep(50);
    }
  }

  /**
   * How long after {@code nanos} the first write to {@code room} that was sent after it was
   * acknowledged: the time until the room accepted writes again.
   */
  Optional<Duration> firstAckAfter(String room, long nanos) {
    return acks.stream()
        .filter(a -> a.room().equals(room) && a.sentAt() >= nanos)
        .mapToLong(Ack::ackedAt)
        .min()
        .stream()
        .mapToObj(at -> Duration.ofNanos(at - nanos))
        .findFirst();
  }

  /** The longest time {@code room} went without an acknowledgement between the two instants. */
  Duration longestStall(String room, long from, long to) {
    List<Long> times = new ArrayList<>();
    times.add(from);
    acks.stream().filter(a -> a.room().equals(room) && a.ackedAt() > from && a.ackedAt() < to).forEach(a -> times.add(a.ackedAt()));
    times.add(to);
    Collections.sort(times);
    long longest = 0;
    for (int i = 1; i < times.size(); i++) {
      longest = Math.max(longest, times.get(i) - times.get(i - 1));
    }
    return Duration.ofNanos(longest);
  }

  /** Failed attempts between the two instants, counted by error code. */
  Map<String, Long> failureCodes(long from, long to) {
    Map<String, Long> codes = new TreeMap<>();
    failures.stream().filter(f -> f.at() >= from && f.at() <= to).forEach(f -> codes.merge(f.code(), 1L, Long::sum));
    return codes;
  }

  /**
   * Reads every room's whole history through a running node and checks it against the ledger.
   * Returns each room's last seq.
   */
  Map<String, Long> verify() throws Exception {
    if (!fatal.isEmpty()) {
      throw new AssertionError("writers hit errors no retry can fix: " + fatal);
    }
    Map<String, Long> lastSeqs = new TreeMap<>();
    try (ParleyClient auditor = connect(auditor(), 0)) {
      for (String room : rooms()) {
        List<JsonNode> history = history(auditor, room);
        histories.put(room, history);
        lastSeqs.put(room, verifyRoom(room, history));
      }
    }
    return lastSeqs;
  }

  /**
   * From the history {@link #verify} read: how long after {@code epochMillis} (wall clock, the
   * nodes share this machine's) {@code room} stored its first event. Unlike the first
   * acknowledgement a client saw, this does not depend on when clients happened to retry.
   */
  Duration firstWriteAfter(String room, long epochMillis) {
    for (JsonNode event : histories.getOrDefault(room, List.of())) {
      long ts = Instant.parse(event.path("ts").asText()).toEpochMilli();
      if (ts > epochMillis) {
        return Duration.ofMillis(ts - epochMillis);
      }
    }
    throw new AssertionError(room + " stored nothing after " + Instant.ofEpochMilli(epochMillis));
  }

  private long verifyRoom(String room, List<JsonNode> history) {
    Map<Long, String> stored = new HashMap<>();
    Map<String, Long> seqOf = new HashMap<>();
    for (int i = 0; i < history.size(); i++) {
      JsonNode event = history.get(i);
      long seq = event.path("seq").asLong();
      if (seq != i + 1) {
        throw new AssertionError(room + ": the timeline is not gap-free from 1: position " + (i + 1) + " holds seq " + seq);
      }
      if ("message".equals(event.path("kind").asText())) {
        String id = event.path("clientMsgId").asText();
        Long earlier = seqOf.put(id, seq);
        if (earlier != null) {
          throw new AssertionError(room + ": message " + id + " is stored twice, at seq " + earlier + " and " + seq);
        }
        if (!event.path("body").asText().equals(body(id))) {
          throw new AssertionError(room + ": seq " + seq + " holds " + id + " with body '" + event.path("body").asText() + "'");
        }
        stored.put(seq, id);
      }
    }
    Map<String, Long> lastSeqOfWriter = new HashMap<>();
    Map<String, Long> ackedSeq = new HashMap<>();
    for (Ack ack : acks) {
      if (!ack.room().equals(room)) {
        continue;
      }
      if (!ack.clientMsgId().equals(stored.get(ack.seq()))) {
        throw new AssertionError(room + ": " + ack.clientMsgId() + " was acknowledged at seq " + ack.seq() + " but that seq holds " + stored.get(ack.seq()));
      }
      Long other = ackedSeq.put(ack.clientMsgId(), ack.seq());
      if (other != null && other != ack.seq()) {
        throw new AssertionError(room + ": " + ack.clientMsgId() + " was acknowledged at seq " + other + " and at seq " + ack.seq());
      }
      Long previous = lastSeqOfWriter.put(ack.writer(), ack.seq());
      if (previous != null && previous >= ack.seq()) {
        throw new AssertionError(room + ": " + ack.writer() + "'s messages are out of order: seq " + ack.seq() + " after " + previous);
      }
    }
    for (Map.Entry<String, Long> message : seqOf.entrySet()) {
      if (message.getKey().startsWith(prefix + "-") && !ackedSeq.containsKey(message.getKey())) {
        throw new AssertionError(room + ": " + message.getKey() + " is stored at seq " + message.getValue() + " but its writer never heard so");
      }
    }
    return history.size();
  }

  /**
   * Waits until every reader has seen each room up to its last seq, then checks that each saw
   * every seq exactly once, in order, across its reconnects.
   */
  void awaitReaders(Map<String, Long> lastSeqs, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    for (Reader reader : readers) {
      while (!reader.reached(lastSeqs)) {
        if (System.nanoTime() > deadline) {
          throw new AssertionError(reader.user + " did not catch up to " + lastSeqs + " within " + timeout + "; it has " + reader.lastSeqs());
        }
        Thread.sleep(100);
      }
      for (Map.Entry<String, Long> room : lastSeqs.entrySet()) {
        List<Long> seen = reader.seen(room.getKey());
        List<Long> expected = new ArrayList<>();
        for (long seq = 1; seq <= room.getValue(); seq++) {
          expected.add(seq);
        }
        assertEquals(expected, seen, reader.user + " saw a gap or a duplicate in " + room.getKey());
      }
    }
  }

  /**
   * Every event pushed to a reader matches the event the room's history holds at that seq:
   * nothing was pushed that the journal does not have.
   */
  void verifyPushesMatchHistory() throws Exception {
    try (ParleyClient auditor = connect(auditor(), 0)) {
      for (String room : rooms()) {
        Map<Long, String> stored = new HashMap<>();
        for (JsonNode event : history(auditor, room)) {
          stored.put(event.path("seq").asLong(), event.path("clientMsgId").asText(event.path("kind").asText()));
        }
        for (Reader reader : readers) {
          reader.pushedIds(room).forEach((seq, id) -> {
            if (!id.equals(stored.get(seq))) {
              throw new AssertionError(reader.user + " was pushed " + id + " at " + room + " seq " + seq + ", but the journal holds " + stored.get(seq));
            }
          });
        }
      }
    }
  }

  @Override
  public void close() {
    running = false;
    drainDeadline = System.nanoTime();
    readers.forEach(Reader::close);
    background.shutdownNow();
  }

  private String auditor() {
    return prefix + "-audit";
  }

  private static String body(String clientMsgId) {
    return "message " + clientMsgId;
  }

  private void joinAll(String user, int preferred) throws Exception {
    try (ParleyClient client = connect(user, preferred)) {
      for (String room : rooms()) {
        client.join(room).get(15, TimeUnit.SECONDS);
      }
    }
  }

  private List<JsonNode> history(ParleyClient client, String room) throws Exception {
    List<JsonNode> events = new ArrayList<>();
    Long before = null;
    while (true) {
      Long from = before;
      JsonNode page = retrying(() -> client.history(room, from, 200));
      List<JsonNode> older = new ArrayList<>();
      page.path("events").forEach(older::add);
      events.addAll(0, older);
      if (!page.path("hasMore").asBoolean() || older.isEmpty()) {
        return events;
      }
      before = older.get(0).path("seq").asLong();
    }
  }

  private static <T> T retrying(Supplier<CompletableFuture<T>> request) throws Exception {
    for (int attempt = 1; ; attempt++) {
      try {
        return request.get().get(15, TimeUnit.SECONDS);
      } catch (ExecutionException e) {
        if (attempt == 5 || !(e.getCause() instanceof ParleyException p) || !retryable(p.code())) {
          throw e;
        }
        Thread.sleep(500);
      }
    }
  }

  private static boolean retryable(String code) {
    return code.equals(ParleyException.TIMEOUT) || code.equals("unavailable");
  }

  /**
   * Connects {@code user} to a running node, trying them in turn from {@code preferred};
   * returns null if none accepted.
   */
  private ParleyClient tryConnect(String user, int preferred) {
    List<ClusterNode> live = nodes.get();
    for (int i = 0; i < live.size(); i++) {
      ClusterNode node = live.get(Math.floorMod(preferred + i, live.size()));
      try {
        String token = tokens.computeIfAbsent(user, u -> ParleyClient.devToken(node.http(), u));
        return ParleyClient.connect(node.ws(), token, OPTIONS).get(5, TimeUnit.SECONDS);
      } catch (Exception e) {
        // That node is down, frozen or shutting down: try the next one.
      }
    }
    return null;
  }

  private ParleyClient connect(String user, int preferred) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (System.nanoTime() < deadline) {
      ParleyClient client = tryConnect(user, preferred);
      if (client != null) {
        return client;
      }
      Thread.sleep(250);
    }
    throw new AssertionError(user + " could not connect to any of " + nodes.get() + " within 60 s");
  }

  private void closeQuietly(ParleyClient client) {
    if (client != null) {
      background.execute(client::close);
    }
  }

  /** One user sending to one room, one message in flight at a time. */
  private final class Writer {
    final String user;
    final String room;
    final int index;
    final Thread thread;
    ParleyClient client;
    int preferred;

    Writer(String user, String room, int index) {
      this.user = user;
      this.room = room;
      this.index = index;
      this.preferred = index;
      this.thread = new Thread(this::run, "writer-" + user);
      thread.setDaemon(true);
    }

    void start() {
      thread.start();
    }

    private void run() {
      try {
        for (long n = 1; running; n++) {
          if (!deliver(user + "-" + n)) {
            return;
          }
          Thread.sleep(pace.toMillis());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } finally {
        closeQuietly(client);
      }
    }

    /** Sends one message until it is acknowledged; false if the writer must give up. */
    private boolean deliver(String clientMsgId) throws InterruptedException {
      int timeouts = 0;
      while (System.nanoTime() < drainDeadline) {
        if (client == null) {
          client = tryConnect(user, preferred);
          if (client == null) {
            Thread.sleep(250);
            continue;
          }
        }
        long sentAt = System.nanoTime();
        try {
          Sent sent = client.send(room, clientMsgId, body(clientMsgId)).get(20, TimeUnit.SECONDS);
          acks.add(new Ack(user, room, clientMsgId, sent.seq(), sent.duplicate(), sentAt, System.nanoTime()));
          return true;
        } catch (ExecutionException e) {
          String code = e.getCause() instanceof ParleyException p ? p.code() : e.getCause().toString();
          failures.add(new Failure(room, clientMsgId, code, System.nanoTime()));
          switch (code) {
            case ParleyException.TIMEOUT -> {
              if (++timeouts >= 2) {
                moveOn();
                timeouts = 0;
              }
            }
            case "unavailable", "rate_limited" -> Thread.sleep(200);
            case ParleyException.CLOSED, ParleyException.CONNECT_FAILED -> moveOn();
            default -> {
              fatal.add(user + " sending " + clientMsgId + ": " + e.getCause());
              return false;
            }
          }
        } catch (TimeoutException e) {
          failures.add(new Failure(room, clientMsgId, "no-reply", System.nanoTime()));
          moveOn();
        }
      }
      fatal.add(user + " could not get " + clientMsgId + " acknowledged before the drain deadline");
      return false;
    }

    /** Leaves this connection (its node may be gone or frozen) for the next node. */
    private void moveOn() {
      closeQuietly(client);
      client = null;
      preferred++;
    }
  }

  /** One user following every room, reconnecting and resuming whenever its connection ends. */
  private final class Reader {
    final String user;
    final int index;
    final Map<String, List<Long>> seqs = new HashMap<>();
    final Map<String, Map<Long, String>> ids = new HashMap<>();
    volatile ParleyClient client;
    volatile boolean closed;
    volatile int reconnects;
    int preferred;

    Reader(String user, int index) {
      this.user = user;
      this.index = index;
      this.preferred = index;
    }

    void connect() throws InterruptedException {
      while (!closed) {
        ParleyClient next = tryConnect(user, preferred);
        if (next == null) {
          Thread.sleep(250);
          continue;
        }
        next.onPush(this::onPush);
        try {
          next.resume(lastSeqs()).get(15, TimeUnit.SECONDS);
        } catch (Exception e) {
          next.close();
          preferred++;
          continue;
        }
        client = next;
        next.closed().thenRunAsync(this::reconnect, background);
        return;
      }
    }

    private void reconnect() {
      if (closed) {
        return;
      }
      reconnects++;
      preferred++;
      try {
        connect();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    private void onPush(JsonNode push) {
      if ("presence".equals(push.path("type").asText()) && "offline".equals(push.path("status").asText())) {
        offline.add(new Offline(push.path("user").asText(), System.nanoTime()));
      }
      if (!"event".equals(push.path("type").asText())) {
        return;
      }
      String room = push.path("room").asText();
      if (!writersPerRoom.containsKey(room)) {
        return;
      }
      long seq = push.path("seq").asLong();
      synchronized (this) {
        seqs.computeIfAbsent(room, r -> new ArrayList<>()).add(seq);
        ids.computeIfAbsent(room, r -> new HashMap<>()).put(seq, push.path("clientMsgId").asText(push.path("kind").asText()));
      }
    }

    synchronized Map<String, Long> lastSeqs() {
      Map<String, Long> positions = new HashMap<>();
      for (String room : writersPerRoom.keySet()) {
        List<Long> seen = seqs.get(room);
        positions.put(room, seen == null || seen.isEmpty() ? 0L : seen.get(seen.size() - 1));
      }
      return positions;
    }

    synchronized boolean reached(Map<String, Long> lastSeqs) {
      Map<String, Long> mine = lastSeqs();
      return lastSeqs.entrySet().stream().allMatch(e -> mine.getOrDefault(e.getKey(), 0L) >= e.getValue());
    }

    synchronized List<Long> seen(String room) {
      return List.copyOf(seqs.getOrDefault(room, List.of()));
    }

    synchronized Map<Long, String> pushedIds(String room) {
      return Map.copyOf(ids.getOrDefault(room, Map.of()));
    }

    void close() {
      closed = true;
      ParleyClient current = client;
      if (current != null) {
        current.close();
      }
    }
  }
}
