package parley.transport;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.ProtocolException;
import parley.protocol.Request;
import parley.testing.CapturedLog;
import parley.testing.InJvmNode;
import parley.testing.PausableSocket;
import parley.testing.TestCassandra;

/**
 * Thousands of generated frames ({@link FuzzFrames}, from a printed seed) against a real node
 * on the real test Cassandra, over real sockets, from several users into rooms and documents
 * (public, private, direct) that honest users write to at the same time. Whatever arrives, the
 * node answers every frame with a documented frame, stays ready, keeps every honest write and
 * every room and document writable, and closes no connection that keeps to the request rate;
 * one that floods is refused with {@code rate_limited} and then closed with 1008.
 *
 * <p>{@code -Dparley.fuzz.seed=N} repeats a run's frames; {@code -Dparley.fuzz.frames=N} sets
 * how many (10,000 by default).
 */
class FuzzIT {

  private static final long SEED = Long.getLong("parley.fuzz.seed", new SecureRandom().nextLong());
  private static final int FRAMES = Integer.getInteger("parley.fuzz.frames", 10_000);
  private static final Duration WAIT = Duration.ofSeconds(30);
  /** Requests a fuzzing connection has awaiting their reply at most. */
  private static final int WINDOW = 32;

  /** Every frame type docs/protocol.md lists for the server to send. */
  /** The replies' types and every push of the protocol (SpecTest holds them to the docs). */
  private static final Set<String> DOCUMENTED_TYPES =
      Stream.concat(Stream.of("ok", "error", "pong"), Codec.PUSHES.keySet().stream()).collect(Collectors.toUnmodifiableSet());

  private static final List<String> HONEST = List.of("alice", "bob", "carol");
  private static final List<String> FUZZERS = List.of("fz0", "fz1", "fz2", "fz3");
  private static final int CONNECTIONS_PER_FUZZER = 2;

  /** Rooms fuzzers may never see into; direct rooms are besides visible only to their two users. */
  private static final Set<String> SEALED_ROOMS = Set.of("priv2", "dm:alice:bob");
  private static final Set<String> SEALED_DOCS = Set.of("plan");

  private static final FuzzFrames.World WORLD =
      new FuzzFrames.World(
          List.of(
              "pub1", "pub2", "priv1", "priv2", "dm:alice:bob", "dm:carol:fz1", "dm:alice:fz0",
              "fz-0", "fz-1", "fz-2", "fz-3", "fz-4", "fz-5", "fz-6", "fz-7", "nope-1", "nope-2"),
          List.of("memo", "plan", "board", "fzd-0", "fzd-1", "fzd-2", "fzd-3", "fzd-4", "nodoc"),
          List.of("alice", "bob", "carol", "fz0", "fz1", "fz2", "fz3", "nobody"));

  private static Config keyspaces;

  @BeforeAll
  static void keyspaces() {
    System.out.println("[fuzz] seed " + SEED + " (repeat with -Dparley.fuzz.seed=" + SEED + "), " + FRAMES + " frames");
    keyspaces = TestCassandra.keyspacesFor("FuzzIT");
  }

  // ---------------------------------------------------------------------------------------
  // Phase 1: the fuzz, at a request rate that lets every frame through

  @Test
  void generatedFramesGetDocumentedAnswersAndBreakNoRoomDocumentOrConnection() throws Exception {
    Config fast =
        ConfigFactory.parseString(
            """
            parley.chat.rate-per-second = 100000
            parley.chat.rate-burst = 100000
            parley.chat.user-rate-per-second = 100000
            parley.chat.user-rate-burst = 100000
            """);
    long starting = System.nanoTime();
    // Everything the node logs while it is fuzzed: an entity whose write failed, a session
    // that crashed or a stage that failed logs an ERROR, so none may appear.
    try (CapturedLog logged = CapturedLog.attach();
        InJvmNode node = InJvmNode.start(keyspaces, 0, 0, fast)) {
      new Fuzz(node, starting, logged).run();
    }
  }

  /** One run of the fuzz against one node, and what it found. */
  private static final class Fuzz {
    private final InJvmNode node;
    private final Codec codec;
    private final int maxFrameBytes;
    private final List<String> violations = new CopyOnWriteArrayList<>();
    private final Map<String, LongAdder> replies = new ConcurrentHashMap<>();
    private final Map<String, LongAdder> honestReplies = new ConcurrentHashMap<>();
    private final Map<String, String> tokens = new ConcurrentHashMap<>();
    private final List<String> made = new CopyOnWriteArrayList<>();
    private final Set<String> validTypesSent = ConcurrentHashMap.newKeySet();
    private final LongAdder pushes = new LongAdder();
    private final AtomicInteger sent = new AtomicInteger();
    private final LongAdder bytesSent = new LongAdder();
    private final List<String> readiness = new CopyOnWriteArrayList<>();
    private final List<String> blips = new CopyOnWriteArrayList<>();
    private final List<Written> ledger = new CopyOnWriteArrayList<>();
    private final List<String> honestFailures = new CopyOnWriteArrayList<>();
    private final StringBuilder planText = new StringBuilder();
    private final AtomicBoolean fuzzing = new AtomicBoolean(true);
    private final long maxDocumentChars;
    private final long starting;
    private final CapturedLog logged;

    Fuzz(InJvmNode node, long starting, CapturedLog logged) {
      this.node = node;
      this.starting = starting;
      this.logged = logged;
      Config config = node.system.settings().config();
      this.codec =
          new Codec(new Codec.Limits(config.getInt("parley.chat.max-body-bytes"), config.getInt("parley.chat.max-topic-bytes")));
      this.maxFrameBytes = config.getInt("parley.chat.max-frame-bytes");
      this.maxDocumentChars = config.getBytes("parley.documents.max-size") / 2;
    }

    void run() throws Exception {
      long nodeUp = System.nanoTime();
      setUp();
      List<Conn> fuzzConns = new ArrayList<>();
      for (String user : FUZZERS) {
        for (int i = 0; i < CONNECTIONS_PER_FUZZER; i++) {
          fuzzConns.add(Conn.open(node, user, user + "." + i, violations, replies, pushes));
        }
      }
      Map<String, Conn> honest = new LinkedHashMap<>();
      for (String user : HONEST) {
        honest.put(user, Conn.open(node, user, user, violations, honestReplies, pushes));
      }

      long started = System.nanoTime();
      List<Thread> writers = new ArrayList<>();
      honest.forEach((user, conn) -> writers.add(thread("honest-" + user, () -> writeHonestly(user, conn))));
      List<Thread> fuzzers = new ArrayList<>();
      for (int i = 0; i < fuzzConns.size(); i++) {
        Conn conn = fuzzConns.get(i);
        int frames = FRAMES / fuzzConns.size() + (i < FRAMES % fuzzConns.size() ? 1 : 0);
        FuzzFrames generator = new FuzzFrames(new Random(SEED + i), WORLD, conn.name.replace(".", "a"), maxFrameBytes);
        fuzzers.add(thread("fuzz-" + conn.name, () -> fuzz(conn, generator, frames)));
      }
      for (Thread t : fuzzers) {
        t.join();
      }
      long deadline = System.nanoTime() + WAIT.toNanos();
      for (Conn conn : fuzzConns) {
        conn.awaitAllAnswered(deadline);
      }
      double seconds = (System.nanoTime() - started) / 1e9;
      this.fuzzing.set(false);
      for (Thread t : writers) {
        t.join();
      }

      // Every fuzzing connection is still open and still answers.
      List<String> closed = new ArrayList<>();
      for (Conn conn : concat(fuzzConns, honest.values())) {
        if (!conn.isOpen()) {
          closed.add(conn.name + ": " + conn.endedHow());
        } else if (!"pong".equals(conn.request("{\"type\":\"ping\",\"id\":\"last-ping\"}").path("type").asText())) {
          closed.add(conn.name + " does not answer a ping");
        }
      }
      long audit = System.nanoTime();
      List<String> roomProblems = auditRooms();
      List<String> docProblems = auditDocuments();
      List<String> unanswered = new ArrayList<>();
      for (Conn conn : fuzzConns) {
        unanswered.addAll(conn.unsettled());
      }
      List<String> unansweredList =
          unanswered.size() > 20 ? List.of(unanswered.size() + " requests, among them " + unanswered.subList(0, 20)) : unanswered;
      for (Conn conn : concat(fuzzConns, honest.values())) {
        conn.close();
      }

      System.out.printf(
          "[fuzz] seed %d: %d frames (%.1f M characters) in %.1f s (%.0f/s) over %d connections, %d honest writes (%s), %d pushes; replies %s; rooms the fuzz made: %s;"
              + " /ready other than 200 once: %s; node up in %.1f s, set-up %.1f s, audit %.1f s%n",
          SEED, sent.get(), bytesSent.sum() / 1e6, seconds, sent.get() / seconds, fuzzConns.size(), ledger.size(), new TreeMap<>(tally(honestReplies)),
          pushes.sum(), new TreeMap<>(tally(replies)), made, blips,
          (nodeUp - starting) / 1e9, (started - nodeUp) / 1e9, (System.nanoTime() - audit) / 1e9);

      assertAll(
          () -> assertEquals(FRAMES, sent.get(), "frames sent"),
          () -> assertEquals(Codec.REQUESTS.keySet(), validTypesSent, "request types sent valid at least once"),
          () -> assertEquals(List.of(), violations, "(1) frames outside the contract"),
          () -> assertEquals(List.of(), unansweredList, "(1) requests answered not exactly once"),
          () -> assertEquals(FRAMES / 1000, readiness.stream().filter(r -> r.endsWith(": 200")).count(), "(2) /ready after every 1,000 frames: " + readiness),
          () -> assertEquals(List.of(), honestFailures, "(3) honest writes that did not get ok"),
          () -> assertEquals(0, replies.getOrDefault("error:unavailable", new LongAdder()).sum() + honestReplies.getOrDefault("error:unavailable", new LongAdder()).sum(),
              "(3) a write or an entity failed: unavailable"),
          () -> assertEquals(List.of(), roomProblems, "(3) rooms"),
          () -> assertEquals(List.of(), docProblems, "(3) documents"),
          () -> assertEquals(List.of(), closed, "(4) connections the server closed or that stopped answering"),
          () -> assertEquals(List.of(), logged.errorsUpTo(node.system, WAIT), "(5) errors the node logged (a failed write, a crashed session or stage)"));
    }

    private static List<Conn> concat(List<Conn> a, Collection<Conn> b) {
      List<Conn> all = new ArrayList<>(a);
      all.addAll(b);
      return all;
    }

    private Thread thread(String name, ThrowingRunnable body) {
      Thread t =
          new Thread(
              () -> {
                try {
                  body.run();
                } catch (Throwable e) {
                  violations.add(name + " broke: " + e);
                }
              },
              name);
      t.start();
      return t;
    }

    // -------------------------------------------------------------------------------------
    // The fuzzing connections

    private void fuzz(Conn conn, FuzzFrames generator, int frames) throws Exception {
      for (int i = 0; i < frames && conn.isOpen(); i++) {
        FuzzFrames.Frame frame = generator.next();
        Expected expected = expect(frame);
        if (expected.reply()) {
          if (!conn.window.tryAcquire(WAIT.toSeconds(), TimeUnit.SECONDS)) {
            violations.add(conn.name + ": no reply for " + WAIT.toSeconds() + " s to the " + WINDOW + " requests before "
                + abbreviate(frame.text()));
            return;
          }
          conn.expect(expected.id(), expected.code());
        }
        try {
          if (frame.binary() != null) {
            conn.socket.sendBinary(frame.binary());
            bytesSent.add(frame.binary().length);
          } else {
            conn.socket.send(frame.text());
            bytesSent.add(frame.text().length());
          }
        } catch (RuntimeException e) {
          violations.add(conn.name + ": could not send " + frame.kind() + " " + abbreviate(frame.text()) + ": " + e);
          return;
        }
        if (frame.kind().startsWith("valid:")) {
          validTypesSent.add(frame.kind().substring("valid:".length()));
        }
        int total = sent.incrementAndGet();
        if (total % 1000 == 0) {
          readiness.add(total + ": " + ready(total));
        }
      }
    }

    /** What the node must answer to a frame, decided by the protocol's own codec. */
    private Expected expect(FuzzFrames.Frame frame) {
      if (frame.binary() != null) {
        return new Expected(true, null, ErrorCode.BAD_FRAME.wire());
      }
      if (frame.oversizeId() != null) {
        return new Expected(true, frame.oversizeId().isEmpty() ? null : frame.oversizeId(), ErrorCode.FRAME_TOO_LARGE.wire());
      }
      try {
        Codec.Decoded decoded = codec.decode(frame.text());
        boolean silent = decoded.request() instanceof Request.Pong || decoded.request() instanceof Request.Typing;
        return new Expected(!silent, decoded.id(), null);
      } catch (ProtocolException refused) {
        return new Expected(true, refused.id(), refused.code().wire());
      } catch (RuntimeException e) {
        violations.add("the codec itself throws " + e + " on " + frame.kind() + " " + abbreviate(frame.text()));
        return new Expected(false, null, null);
      }
    }

    /**
     * {@code /ready} as Kubernetes asks it (deploy/kubernetes: three failures in a row take a pod
     * out): "200", or the last of three answers a second apart. A single answer other than 200
     * is kept and printed: Pekko Management answers 500 when a check is slower than its
     * check-timeout, and a machine shared with other builds makes the Cassandra check slow.
     */
    private String ready(int frames) {
      String answer = readyOnce();
      for (int attempt = 1; !answer.equals("200") && attempt < 3; attempt++) {
        blips.add(frames + ": " + answer);
        sleep(1000);
        answer = readyOnce();
      }
      return answer;
    }

    private String readyOnce() {
      try {
        HttpResponse<String> response =
            HttpClient.newHttpClient()
                .send(
                    HttpRequest.newBuilder(node.management().resolve("/ready")).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.ofString());
        return response.statusCode() == 200 ? "200" : response.statusCode() + " " + abbreviate(response.body());
      } catch (Exception e) {
        return "failed: " + e;
      }
    }

    // -------------------------------------------------------------------------------------
    // The honest users

    private void setUp() throws Exception {
      rest("alice", "POST", "/v1/rooms", "{\"room\":\"pub1\"}", null);
      rest("alice", "POST", "/v1/rooms", "{\"room\":\"pub2\",\"topic\":\"general\"}", null);
      rest("bob", "POST", "/v1/rooms", "{\"room\":\"priv1\",\"visibility\":\"private\"}", null);
      rest("bob", "POST", "/v1/rooms/priv1/invite", "{\"user\":\"carol\"}", null);
      rest("bob", "POST", "/v1/rooms/priv1/invite", "{\"user\":\"fz0\"}", null);
      rest("carol", "POST", "/v1/rooms/priv1/join", null, null);
      rest("fz0", "POST", "/v1/rooms/priv1/join", null, null);
      rest("carol", "POST", "/v1/rooms", "{\"room\":\"priv2\",\"visibility\":\"private\"}", null);
      rest("carol", "POST", "/v1/rooms/priv2/invite", "{\"user\":\"alice\"}", null);
      rest("alice", "POST", "/v1/rooms/priv2/join", null, null);
      rest("bob", "POST", "/v1/rooms/pub1/join", null, null);
      rest("carol", "POST", "/v1/rooms/pub2/join", null, null);
      for (String fuzzer : FUZZERS) {
        rest(fuzzer, "POST", "/v1/rooms/pub1/join", null, null);
        rest(fuzzer, "POST", "/v1/rooms/pub2/join", null, null);
      }
      record(rest("alice", "POST", "/v1/dm/bob", "{\"body\":\"hi bob\"}", "setup-1"), "alice", "setup-1", "hi bob");
      record(rest("carol", "POST", "/v1/dm/fz1", "{\"body\":\"hi fz1\"}", "setup-2"), "carol", "setup-2", "hi fz1");
      record(rest("alice", "POST", "/v1/dm/fz0", "{\"body\":\"hi fz0\"}", "setup-3"), "alice", "setup-3", "hi fz0");
      rest("alice", "POST", "/v1/docs", "{\"doc\":\"memo\",\"text\":\"memo\",\"editors\":[\"fz0\",\"bob\"]}", null);
      rest("bob", "POST", "/v1/docs", "{\"doc\":\"plan\",\"text\":\"plan:\"}", null);
      planText.append("plan:");
      rest("alice", "POST", "/v1/docs", "{\"doc\":\"board\",\"room\":\"pub1\"}", null);
    }

    private void record(JsonNode written, String user, String clientMsgId, String body) {
      ledger.add(new Written(written.path("room").asText(), written.path("seq").asLong(), user, clientMsgId, body));
    }

    /** Sends into each of the user's rooms in turn, one write at a time, until the fuzz ends. */
    private void writeHonestly(String user, Conn conn) throws Exception {
      List<String> targets =
          switch (user) {
            case "alice" -> List.of("pub1", "pub2", "priv2", ">bob", ">fz0");
            case "bob" -> List.of("priv1", "pub1", ">alice", "#plan");
            default -> List.of("priv1", "priv2", "pub2", ">fz1");
          };
      long revision = 0;
      for (int n = 0; fuzzing.get(); n++) {
        String target = targets.get(n % targets.size());
        String clientId = "h-" + user + "-" + n;
        String body = "honest " + user + " " + n + " \u2603";
        String frame;
        if (target.startsWith("#")) {
          String insert = "[" + n + "]";
          frame = "{\"type\":\"doc_submit\",\"id\":\"" + clientId + "\",\"doc\":\"plan\",\"clientOpId\":\"" + clientId
              + "\",\"revision\":" + revision + ",\"op\":[" + planText.length() + ",\"" + insert + "\"]}";
          JsonNode reply = conn.request(frame);
          if ("ok".equals(reply.path("type").asText()) && reply.path("revision").asLong() == revision + 1) {
            revision++;
            planText.append(insert);
          } else {
            honestFailures.add(user + " " + frame + " -> " + reply);
          }
        } else {
          frame = target.startsWith(">")
              ? "{\"type\":\"send_dm\",\"id\":\"" + clientId + "\",\"to\":\"" + target.substring(1) + "\",\"clientMsgId\":\"" + clientId + "\",\"body\":\"" + body + "\"}"
              : "{\"type\":\"send\",\"id\":\"" + clientId + "\",\"room\":\"" + target + "\",\"clientMsgId\":\"" + clientId + "\",\"body\":\"" + body + "\"}";
          JsonNode reply = conn.request(frame);
          if ("ok".equals(reply.path("type").asText()) && !reply.path("duplicate").asBoolean()) {
            record(reply, user, clientId, body);
          } else {
            honestFailures.add(user + " " + frame + " -> " + reply);
          }
        }
        Thread.sleep(50); // an honest pace, well inside the rate
      }
    }

    // -------------------------------------------------------------------------------------
    // After the fuzz: every room and document still works and lost nothing

    /**
     * The honest rooms hold every honest write at its seq, in order, with no gap, and nothing
     * from anyone who may not write there; every room the fuzz could have made or written to
     * takes a write.
     */
    private List<String> auditRooms() {
      List<String> problems = new ArrayList<>();
      Map<String, String> reader =
          Map.of(
              "pub1", "alice", "pub2", "alice", "priv1", "bob", "priv2", "carol",
              "dm:alice:bob", "alice", "dm:carol:fz1", "carol", "dm:alice:fz0", "alice");
      Map<String, Set<String>> writers =
          Map.of("priv2", Set.of("carol", "alice"), "dm:alice:bob", Set.of("alice", "bob"),
              "dm:carol:fz1", Set.of("carol", "fz1"), "dm:alice:fz0", Set.of("alice", "fz0"));
      for (Map.Entry<String, String> room : reader.entrySet()) {
        try {
          auditHonestRoom(room.getKey(), room.getValue(), writers.get(room.getKey()), problems);
        } catch (AssertionError | RuntimeException e) {
          problems.add(room.getKey() + ": " + e);
        }
      }
      for (String room : WORLD.rooms()) {
        if (!reader.containsKey(room)) {
          auditFuzzRoom(room, problems);
        }
      }
      return problems;
    }

    private void auditHonestRoom(String room, String reader, Set<String> allowed, List<String> problems) {
      List<JsonNode> events = history(room, reader);
      for (int i = 0; i < events.size(); i++) {
        if (events.get(i).path("seq").asLong() != i + 1) {
          problems.add(room + ": seq " + events.get(i).path("seq") + " at position " + (i + 1) + " (a gap or a repeat)");
          break;
        }
      }
      Map<Long, JsonNode> bySeq = new HashMap<>();
      events.forEach(e -> bySeq.put(e.path("seq").asLong(), e));
      Map<String, Long> lastByUser = new HashMap<>();
      for (Written w : ledger) {
        if (!w.room().equals(room)) {
          continue;
        }
        JsonNode e = bySeq.get(w.seq());
        if (e == null || !w.user().equals(e.path("user").asText()) || !w.body().equals(e.path("body").asText())
            || !w.clientMsgId().equals(e.path("clientMsgId").asText())) {
          problems.add(room + ": honest write " + w + " is not in the history as written: " + e);
        }
        if (w.seq() <= lastByUser.getOrDefault(w.user(), 0L)) {
          problems.add(room + ": " + w.user() + "'s writes out of order at seq " + w.seq());
        }
        lastByUser.put(w.user(), w.seq());
      }
      if (allowed != null) {
        for (JsonNode e : events) {
          if (e.has("user") && !allowed.contains(e.path("user").asText())) {
            problems.add(room + " holds an event of " + e.path("user").asText() + ": " + e);
          }
        }
        for (JsonNode m : rest(reader, "GET", "/v1/rooms/" + room + "/members", null, null).path("members")) {
          if (!allowed.contains(m.path("user").asText())) {
            problems.add(room + " has member " + m.path("user").asText());
          }
        }
      }
      HttpResponse<String> more = node.rest("POST", "/v1/rooms/" + room + "/messages", token(reader), "{\"body\":\"after the fuzz\"}", "after-" + room);
      if (more.statusCode() != 200) {
        problems.add(room + " refuses an honest send after the fuzz: " + more.statusCode() + " " + more.body());
      }
    }

    /**
     * A room only fuzzers may have made: if it exists, it takes a message from the server
     * publish API, which writes to any room whoever its members are.
     */
    private void auditFuzzRoom(String room, List<String> problems) {
      HttpResponse<String> published =
          node.rest("POST", "/v1/rooms/" + room + "/messages", InJvmNode.SERVER_KEY, "{\"user\":\"auditor\",\"body\":\"after the fuzz\"}", "audit-" + room);
      if (published.statusCode() == 200) {
        made.add(room);
      } else if (published.statusCode() != 404 || !"room_not_found".equals(Frames.read(published.body()).path("code").asText())) {
        problems.add(room + " refuses a published message after the fuzz: " + published.statusCode() + " " + published.body());
      }
    }

    /**
     * Bob's document holds exactly his edits; every document that exists takes an edit from
     * the first user (honest ones first) who may open it.
     */
    private List<String> auditDocuments() {
      List<String> problems = new ArrayList<>();
      for (String doc : WORLD.docs()) {
        Map<String, String> refusals = new LinkedHashMap<>();
        for (String user : concatUsers()) {
          HttpResponse<String> opened = node.rest("GET", "/v1/docs/" + doc, token(user), null, null);
          if (opened.statusCode() != 200) {
            refusals.put(user, Frames.read(opened.body()).path("code").asText());
            continue;
          }
          JsonNode state = Frames.read(opened.body());
          String text = state.path("text").asText();
          if (doc.equals("plan") && !text.equals(planText.toString())) {
            problems.add("plan is \"" + text + "\", not bob's edits \"" + planText + "\"");
          }
          String op = "{\"revision\":" + state.path("revision").asLong() + ",\"op\":" + (text.isEmpty() ? "[\"!\"]" : "[" + text.length() + ",\"!\"]")
              + ",\"clientOpId\":\"audit-" + doc + "\"}";
          HttpResponse<String> edited = node.rest("POST", "/v1/docs/" + doc + "/ops", token(user), op, null);
          boolean full = edited.statusCode() == 413 && text.length() >= maxDocumentChars;
          if (edited.statusCode() != 200 && !full) {
            problems.add(doc + " refuses " + user + "'s edit after the fuzz: " + edited.statusCode() + " " + edited.body());
          }
          refusals.clear();
          break;
        }
        if (!refusals.values().stream().allMatch(code -> code.equals("doc_not_found") || code.equals("forbidden"))) {
          problems.add(doc + " cannot be opened: " + refusals);
        }
      }
      return problems;
    }

    private static List<String> concatUsers() {
      List<String> users = new ArrayList<>(HONEST);
      users.addAll(FUZZERS);
      return users;
    }

    /** A room's whole history, oldest first, read over REST page by page. */
    private List<JsonNode> history(String room, String user) {
      List<JsonNode> events = new ArrayList<>();
      Long before = null;
      while (true) {
        JsonNode page = rest(user, "GET", "/v1/rooms/" + room + "/messages?limit=200" + (before == null ? "" : "&before=" + before), null, null);
        List<JsonNode> batch = new ArrayList<>();
        page.path("events").forEach(batch::add);
        events.addAll(0, batch);
        if (!page.path("hasMore").asBoolean() || batch.isEmpty()) {
          return events;
        }
        before = batch.get(0).path("seq").asLong();
      }
    }

    private String token(String user) {
      return tokens.computeIfAbsent(user, node::token);
    }

    private JsonNode rest(String user, String method, String path, String body, String key) {
      HttpResponse<String> response = node.rest(method, path, token(user), body, key);
      assertEquals(200, response.statusCode(), method + " " + path + " as " + user + ": " + response.body());
      return Frames.read(response.body());
    }
  }

  // ---------------------------------------------------------------------------------------
  // Phase 2: the normal rate

  @Test
  void aFloodIsRateLimitedThenClosedWith1008WhileAPoliteConnectionOfTheSameUserGoesOn() throws Exception {
    try (InJvmNode node = InJvmNode.start(keyspaces, 0, 0, ConfigFactory.empty())) {
      Config config = node.system.settings().config();
      int disconnectAfter = config.getInt("parley.chat.flood-disconnect-after");
      List<String> violations = new CopyOnWriteArrayList<>();
      Map<String, LongAdder> floodReplies = new ConcurrentHashMap<>();
      Map<String, LongAdder> politeReplies = new ConcurrentHashMap<>();
      LongAdder pushes = new LongAdder();
      Conn flooder = Conn.open(node, "fz0", "flooder", violations, floodReplies, pushes);
      Conn polite = Conn.open(node, "fz0", "polite", violations, politeReplies, pushes);

      List<String> politeLate = new CopyOnWriteArrayList<>();
      Thread politeThread =
          new Thread(
              () -> {
                Random random = new Random(SEED);
                for (int i = 0; i < 30; i++) {
                  JsonNode reply =
                      i % 2 == 0
                          ? polite.request("not json " + random.nextInt(), null)
                          : polite.request("{\"type\":\"send\",\"id\":\"p" + i + "\",\"room\":\"\\ud800\"}", "p" + i);
                  if (!"error".equals(reply.path("type").asText())) {
                    politeLate.add(reply.toString());
                  }
                  // 10 frames a second: half the connection's rate, and with what the flooder gets
                  // through (its connection's 20 a second) within the user's 40.
                  sleep(100);
                }
              },
              "polite");
      politeThread.start();
      int flooded = 0;
      while (flooded < 1_000 && flooder.isOpen()) {
        flooder.expect("f" + flooded, null);
        try {
          flooder.socket.send("{\"type\":\"ping\",\"id\":\"f" + flooded + "\"} trailing");
        } catch (RuntimeException closedMeanwhile) {
          break;
        }
        flooded++;
      }
      String ended = flooder.socket.ended().get(WAIT.toSeconds(), TimeUnit.SECONDS);
      politeThread.join();
      JsonNode afterwards = polite.request("{\"type\":\"ping\",\"id\":\"after\"}");

      long rateLimited = floodReplies.getOrDefault("error:rate_limited", new LongAdder()).sum();
      System.out.printf(
          "[fuzz] flood: %d frames sent, answers %s, then %s, socket %s; the polite connection of the same user: %s%n",
          flooded, new TreeMap<>(tally(floodReplies)), flooder.closeFrame(), ended, new TreeMap<>(tally(politeReplies)));
      assertAll(
          () -> assertEquals(List.of(), violations, "frames outside the contract"),
          () -> assertEquals(disconnectAfter + 1, rateLimited, "rate_limited answers before the close"),
          () -> assertEquals(flooder.closeFrame(), flooder.lastFrame(), "the close frame is the last"),
          () -> assertEquals(1008, flooder.closeFrame() == null ? 0 : flooder.closeFrame().path("code").asInt(), "the close code: " + flooder.closeFrame()),
          () -> assertEquals(List.of(), politeLate, "the polite connection's frames not answered with their error"),
          () -> assertEquals(30, politeReplies.getOrDefault("error:bad_frame", new LongAdder()).sum() + politeReplies.getOrDefault("error:bad_room_id", new LongAdder()).sum(),
              "the polite connection's answers: " + politeReplies),
          () -> assertEquals("pong", afterwards.path("type").asText(), "the polite connection after the flood"),
          () -> assertTrue(polite.isOpen(), "the polite connection was closed: " + polite.endedHow()));
      polite.close();
    }
  }

  // ---------------------------------------------------------------------------------------

  /** A reply the node owes: {@code code} the error it must be, or null for any answer. */
  private record Expected(boolean reply, String id, String code) {}

  private record Written(String room, long seq, String user, String clientMsgId, String body) {}

  private interface ThrowingRunnable {
    void run() throws Exception;
  }

  private static Map<String, Long> tally(Map<String, LongAdder> counts) {
    return counts.entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().sum()));
  }

  private static String abbreviate(String text) {
    if (text == null) {
      return "(binary)";
    }
    String escaped = text.codePoints().limit(300).mapToObj(c -> c < 0x20 ? String.format("\\u%04x", c) : Character.toString(c)).collect(Collectors.joining());
    return text.length() > 300 ? escaped + "…(" + text.length() + " chars)" : escaped;
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * One WebSocket. Every frame the server sends is checked against the contract as it arrives;
   * replies are matched against what the connection owes: each request answered exactly once,
   * with its id, and with the codec's own refusal when the codec refuses it.
   */
  private static final class Conn implements AutoCloseable {
    private static final String NO_ID = "(no id)";

    final String name;
    final String user;
    final Semaphore window = new Semaphore(WINDOW);
    PausableSocket socket;
    private final List<String> violations;
    private final Map<String, LongAdder> replies;
    private final LongAdder pushes;
    private final CountDownLatch welcomed = new CountDownLatch(1);
    private final LinkedBlockingQueue<JsonNode> answers = new LinkedBlockingQueue<>();
    private final Map<String, Integer> owedAny = new HashMap<>();
    private final Map<String, Map<String, Integer>> owedError = new HashMap<>();
    private volatile JsonNode lastFrame;
    private volatile JsonNode closeFrame;

    private Conn(String name, String user, List<String> violations, Map<String, LongAdder> replies, LongAdder pushes) {
      this.name = name;
      this.user = user;
      this.violations = violations;
      this.replies = replies;
      this.pushes = pushes;
    }

    static Conn open(InJvmNode node, String user, String name, List<String> violations, Map<String, LongAdder> replies, LongAdder pushes)
        throws Exception {
      Conn conn = new Conn(name, user, violations, replies, pushes);
      conn.socket = PausableSocket.connectRaw(node.ws(), node.token(user), conn::onText);
      assertTrue(conn.welcomed.await(WAIT.toSeconds(), TimeUnit.SECONDS), name + ": no welcome");
      return conn;
    }

    private void onText(String text) {
      JsonNode frame;
      try {
        frame = Codec.JSON.readTree(text);
      } catch (JsonProcessingException e) {
        violations.add(name + " got a frame that is not strict JSON: " + abbreviate(text));
        return;
      }
      if (frame == null || !frame.isObject() || !frame.path("type").isTextual() || !DOCUMENTED_TYPES.contains(frame.path("type").asText())) {
        violations.add(name + " got a frame of no documented type: " + abbreviate(text));
        return;
      }
      lastFrame = frame;
      String type = frame.path("type").asText();
      switch (type) {
        case "welcome" -> welcomed.countDown();
        case "ping" -> socket.send("{\"type\":\"pong\"}");
        case "ok", "pong", "error" -> onReply(frame, type);
        case "close" -> closeFrame = frame;
        default -> onPush(frame, type);
      }
    }

    private void onReply(JsonNode frame, String type) {
      String code = frame.path("code").asText();
      if (type.equals("error")
          && (!(ErrorCode.fromWire(code).isPresent() || code.startsWith("token_")) || !frame.path("message").isTextual() || frame.path("message").asText().isEmpty())) {
        violations.add(name + " got an error with an undocumented code or no message: " + frame);
      }
      replies.computeIfAbsent(type.equals("error") ? "error:" + code : type, k -> new LongAdder()).increment();
      JsonNode id = frame.get("id");
      if (id != null && !id.isTextual()) {
        violations.add(name + " got a reply whose id is not a string: " + frame);
      }
      settle(id == null ? NO_ID : id.asText(), type.equals("error") ? code : null, frame);
      answers.add(frame);
      window.release();
    }

    private void onPush(JsonNode frame, String type) {
      pushes.increment();
      String room = frame.path("room").asText(null);
      boolean fuzzer = FUZZERS.contains(user);
      if (fuzzer && room != null && (SEALED_ROOMS.contains(room) || (room.startsWith("dm:") && !List.of(room.split(":")).contains(user)))) {
        violations.add(name + " (" + user + ") was pushed a frame of room " + room + ": " + frame);
      }
      if (fuzzer && SEALED_DOCS.contains(frame.path("doc").asText())) {
        violations.add(name + " (" + user + ") was pushed a frame of document " + frame.path("doc").asText() + ": " + frame);
      }
      if (type.equals("reload") && !Set.of("cursor_stale", "cursor_ahead").contains(frame.path("code").asText())) {
        violations.add(name + " got a reload with an undocumented code: " + frame);
      }
      if (type.equals("doc_resync") && !Set.of("resync_required", "forbidden", "doc_not_found").contains(frame.path("code").asText())) {
        violations.add(name + " got a doc_resync with an undocumented code: " + frame);
      }
      if (type.equals("lagged")) {
        violations.add(name + " lagged (replies are not sent again after a lag, so the fuzz cannot count them): " + frame);
      }
    }

    /** The connection owes one reply to a request with {@code id} (null: none): {@code code}, or any if null. */
    synchronized void expect(String id, String code) {
      String key = id == null ? NO_ID : id;
      if (code == null) {
        owedAny.merge(key, 1, Integer::sum);
      } else {
        owedError.computeIfAbsent(key, k -> new HashMap<>()).merge(code, 1, Integer::sum);
      }
    }

    private synchronized void settle(String id, String code, JsonNode frame) {
      Map<String, Integer> errors = owedError.get(id);
      if (code != null && errors != null && errors.getOrDefault(code, 0) > 0) {
        errors.merge(code, -1, Integer::sum);
      } else if (owedAny.getOrDefault(id, 0) > 0) {
        owedAny.merge(id, -1, Integer::sum);
      } else {
        violations.add(name + " got a reply to no request (or not the codec's refusal of it): " + frame);
      }
    }

    /** What is still owed: requests that got no answer, or not the answer the codec gives. */
    synchronized List<String> unsettled() {
      List<String> owed = new ArrayList<>();
      owedAny.forEach((id, n) -> {
        if (n != 0) {
          owed.add(name + " " + id + " x" + n);
        }
      });
      owedError.forEach((id, codes) -> codes.forEach((code, n) -> {
        if (n != 0) {
          owed.add(name + " " + id + " " + code + " x" + n);
        }
      }));
      return owed;
    }

    void awaitAllAnswered(long deadline) throws InterruptedException {
      if (window.tryAcquire(WINDOW, Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
        window.release(WINDOW);
      }
    }

    /** Sends a request with an id and waits for its reply (one request at a time). */
    JsonNode request(String frame) {
      return request(frame, Frames.read(frame).path("id").asText());
    }

    /** Sends a frame the node answers with {@code id} (null: with none) and waits for that answer. */
    JsonNode request(String frame, String id) {
      answers.clear();
      expect(id, null);
      socket.send(frame);
      long deadline = System.nanoTime() + WAIT.toNanos();
      try {
        while (System.nanoTime() < deadline) {
          JsonNode reply = answers.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
          if (reply != null && (id == null ? !reply.has("id") : id.equals(reply.path("id").asText()))) {
            return reply;
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return Frames.read("{\"type\":\"(no reply in time)\"}");
    }

    boolean isOpen() {
      return !socket.ended().isDone() && closeFrame == null;
    }

    JsonNode closeFrame() {
      return closeFrame;
    }

    JsonNode lastFrame() {
      return lastFrame;
    }

    String endedHow() {
      return (closeFrame != null ? "close frame " + closeFrame + "; " : "") + socket.ended().getNow("still connected");
    }

    @Override
    public void close() {
      socket.close();
    }
  }
}
