package parley.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;
import parley.client.DocumentClient;
import parley.client.ParleyClient;
import parley.collab.ot.TextOperation;

/**
 * Load and soak runs against one collaboratively edited document on a running dev-profile node
 * (tokens come from {@code POST /v1/dev/token}), through protocol v1 and the reference
 * {@link DocumentClient}, as real editors would use it.
 *
 * <pre>
 * java -cp 'target/parley.jar:target/lib/*' parley.bench.DocumentBench MODE [--option value]...
 *
 *   latency   --editors 20 --rate 5 --seconds 30 --warmup 5
 *             N editors each make `rate` edits per second (one character typed or deleted at a
 *             random place); prints p50/p99 submit-to-ack and submit-to-others.
 *   ramp      --rate 10 --from 10 --step 10 --max 300 --seconds 15 --warmup 3 --limit-ms 50
 *             adds `step` such editors at a time until p99 submit-to-ack passes `limit-ms`;
 *             the last step under it is the highest sustained rate on one document.
 *   converge  --editors 5 --seconds 300 --seed (random)
 *             random edits at random moments with random reconnects; at the end every
 *             editor's text must equal the server's (exit status 1 if not).
 *   fill      --revisions 100000 --connections 8 --window 32
 *             writes that many one-character revisions into a new document as fast as the
 *             node takes them. Needs a node whose request limits are raised, e.g.
 *             -Dparley.chat.rate-per-second=1000000 -Dparley.chat.rate-burst=1000000
 *             -Dparley.chat.user-rate-per-second=1000000 -Dparley.chat.user-rate-burst=1000000.
 *   open      --doc ID --times 5
 *             times doc_open of an existing document, each on a new connection; run it first
 *             after a node restart to see a cold open (recovery from snapshot and journal).
 *
 * Every mode: --url http://127.0.0.1:8080 (the node's HTTP address) and --doc (a fresh id).
 * </pre>
 *
 * <p>Submit-to-ack runs from the moment an operation is written to the socket to its
 * {@code ok}; submit-to-others from the same moment to its {@code doc_op} at each other
 * editor. An edit made while the editor's previous operation is unacknowledged joins the
 * buffer (OT composes it), so under load fewer operations than edits reach the server; both
 * rates are printed. The tool shares the machine with the node, so it measures both.
 *
 * <p>The same editing load against Parley and ShareDB side by side, with the load tool's
 * result files, is {@code bench docs} ({@link DocumentsScenario}).
 */
public final class DocumentBench {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String OWNER = "bench-owner";
  private static final long MAX_NANOS = TimeUnit.MINUTES.toNanos(1);
  private static final Set<String> OPTIONS =
      Set.of("url", "doc", "editors", "rate", "seconds", "warmup", "from", "step", "max", "limit-ms", "seed",
          "revisions", "connections", "window", "times");

  private final URI http;
  private final URI ws;
  private final Map<String, String> options;

  private DocumentBench(Map<String, String> options) {
    this.options = options;
    this.http = URI.create(option("url", "http://127.0.0.1:8080"));
    this.ws = URI.create(http.toString().replaceFirst("^http", "ws")).resolve("/v1/ws");
  }

  public static void main(String[] argv) throws Exception {
    if (argv.length == 0 || argv[0].startsWith("--") || argv.length % 2 == 0) {
      usage();
      System.exit(2);
    }
    Map<String, String> options = new HashMap<>();
    for (int i = 1; i < argv.length; i += 2) {
      if (!argv[i].startsWith("--") || !OPTIONS.contains(argv[i].substring(2))) {
        System.err.println("unknown option " + argv[i]);
        usage();
        System.exit(2);
      }
      options.put(argv[i].substring(2), argv[i + 1]);
    }
    DocumentBench bench = new DocumentBench(options);
    boolean ok =
        switch (argv[0]) {
          case "latency" -> bench.latency();
          case "ramp" -> bench.ramp();
          case "converge" -> bench.converge();
          case "fill" -> bench.fill();
          case "open" -> bench.open();
          default -> {
            usage();
            yield false;
          }
        };
    // The JDK's HTTP client keeps threads of its own; the run is over.
    System.exit(ok ? 0 : 1);
  }

  // ---------------------------------------------------------------------------------------------
  // latency and ramp

  /** Latencies of the operations submitted while {@link #measuring} is on. */
  private static final class Measurement {
    final Histogram ack = new ConcurrentHistogram(MAX_NANOS, 3);
    final Histogram others = new ConcurrentHistogram(MAX_NANOS, 3);
    final Map<String, Long> submittedAt = new ConcurrentHashMap<>();
    final AtomicLong edits = new AtomicLong();
    final AtomicLong submitted = new AtomicLong();
    final AtomicLong acknowledged = new AtomicLong();
    volatile boolean measuring;

    DocumentClient.Listener listener() {
      return new DocumentClient.Listener() {
        @Override
        public void onSubmitted(String clientOpId, long baseRevision) {
          if (measuring) {
            submittedAt.put(clientOpId, System.nanoTime());
            submitted.incrementAndGet();
          }
        }

        @Override
        public void onAcknowledged(String clientOpId, long revision) {
          Long at = submittedAt.get(clientOpId);
          if (at != null) {
            ack.recordValue(Math.min(MAX_NANOS, System.nanoTime() - at));
            acknowledged.incrementAndGet();
          }
        }

        @Override
        public void onRemoteOperation(long revision, String author, String clientOpId, TextOperation applied) {
          Long at = submittedAt.get(clientOpId);
          if (at != null) {
            others.recordValue(Math.min(MAX_NANOS, System.nanoTime() - at));
          }
        }
      };
    }

    void start() {
      ack.reset();
      others.reset();
      submittedAt.clear();
      edits.set(0);
      submitted.set(0);
      acknowledged.set(0);
      measuring = true;
    }
  }

  /** Editors typing into one document at a steady rate each. */
  private final class Typists implements AutoCloseable {
    final String doc;
    final double rate;
    final Measurement measurement = new Measurement();
    final List<DocumentClient> clients = new ArrayList<>();
    final List<ScheduledFuture<?>> typing = new ArrayList<>();
    final ScheduledExecutorService timers = Executors.newScheduledThreadPool(2);

    Typists(String doc, double rate) {
      this.doc = doc;
      this.rate = rate;
    }

    void add(int count) throws Exception {
      List<CompletableFuture<DocumentClient>> opening = new ArrayList<>();
      int first = clients.size();
      for (int i = first; i < first + count; i++) {
        opening.add(DocumentClient.open(connector("bench-" + i), doc, measurement.listener()));
      }
      long period = (long) (1e9 / rate);
      for (CompletableFuture<DocumentClient> future : opening) {
        DocumentClient client = future.get(60, TimeUnit.SECONDS);
        clients.add(client);
        typing.add(
            timers.scheduleAtFixedRate(
                () -> typeOne(client), ThreadLocalRandom.current().nextLong(period), period, TimeUnit.NANOSECONDS));
      }
    }

    private void typeOne(DocumentClient client) {
      try {
        client.edit(text -> oneCharacter(text, ThreadLocalRandom.current()));
        if (measurement.measuring) {
          measurement.edits.incrementAndGet();
        }
      } catch (IllegalStateException resyncing) {
        // Skipped: the editor is taking the server's text after a refusal.
      }
    }

    /** Measures for {@code seconds} after {@code warmup}; returns what the step measured. */
    Map<String, Object> step(int warmup, int seconds) throws Exception {
      Thread.sleep(warmup * 1000L);
      measurement.start();
      Thread.sleep(seconds * 1000L);
      measurement.measuring = false;
      // The operations of the window are acknowledged a little later; typing goes on meanwhile.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (measurement.acknowledged.get() < measurement.submitted.get() && System.nanoTime() < deadline) {
        Thread.sleep(50);
      }
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("editors", clients.size());
      row.put("edits/s", measurement.edits.get() / (double) seconds);
      row.put("ops/s", measurement.submitted.get() / (double) seconds);
      row.put("acked/s", measurement.acknowledged.get() / (double) seconds);
      row.put("ack p50", millis(measurement.ack.getValueAtPercentile(50)));
      row.put("ack p99", millis(measurement.ack.getValueAtPercentile(99)));
      row.put("ack max", millis(measurement.ack.getMaxValue()));
      row.put("others p50", millis(measurement.others.getValueAtPercentile(50)));
      row.put("others p99", millis(measurement.others.getValueAtPercentile(99)));
      row.put("revision", clients.get(0).revision());
      return row;
    }

    @Override
    public void close() {
      timers.shutdownNow();
      clients.parallelStream().forEach(DocumentClient::close);
    }
  }

  private boolean latency() throws Exception {
    int editors = integer("editors", 20);
    double rate = number("rate", 5);
    int seconds = integer("seconds", 30);
    int warmup = integer("warmup", 5);
    String doc = createDocument(editors);
    System.out.printf(
        Locale.ROOT, "latency: document %s, %d editors x %.1f edits/s, %d s measured after %d s warm-up%n",
        doc, editors, rate, seconds, warmup);
    try (Typists typists = new Typists(doc, rate)) {
      typists.add(editors);
      Map<String, Object> row = typists.step(warmup, seconds);
      System.out.printf(
          Locale.ROOT,
          "  edits/s %.1f, operations submitted/s %.1f, acknowledged/s %.1f; revision %s%n"
              + "  submit->ack     p50 %s ms  p99 %s ms  max %s ms  (n=%d)%n"
              + "  submit->others  p50 %s ms  p99 %s ms  (n=%d)%n",
          row.get("edits/s"), row.get("ops/s"), row.get("acked/s"), row.get("revision"),
          row.get("ack p50"), row.get("ack p99"), row.get("ack max"), typists.measurement.ack.getTotalCount(),
          row.get("others p50"), row.get("others p99"), typists.measurement.others.getTotalCount());
    }
    return true;
  }

  private boolean ramp() throws Exception {
    double rate = number("rate", 10);
    int from = integer("from", 10);
    int step = integer("step", 10);
    int max = integer("max", 300);
    int seconds = integer("seconds", 15);
    int warmup = integer("warmup", 3);
    double limit = number("limit-ms", 50);
    String doc = createDocument(max);
    System.out.printf(
        Locale.ROOT, "ramp: document %s, editors at %.1f edits/s each, until p99 submit->ack > %.0f ms%n",
        doc, rate, limit);
    System.out.println("  editors  edits/s    ops/s  acked/s  ack p50  ack p99  others p50  others p99");
    Map<String, Object> best = null;
    try (Typists typists = new Typists(doc, rate)) {
      for (int editors = from; editors <= max; editors += step) {
        typists.add(editors - typists.clients.size());
        Map<String, Object> row = typists.step(warmup, seconds);
        System.out.printf(
            Locale.ROOT, "  %7d  %7.1f  %7.1f  %7.1f  %7.2f  %7.2f  %10.2f  %10.2f%n",
            row.get("editors"), row.get("edits/s"), row.get("ops/s"), row.get("acked/s"),
            row.get("ack p50"), row.get("ack p99"), row.get("others p50"), row.get("others p99"));
        if ((double) row.get("ack p99") > limit) {
          break;
        }
        if (best == null || (double) row.get("acked/s") > (double) best.get("acked/s")) {
          best = row;
        }
      }
    }
    if (best == null) {
      System.out.println("  p99 submit->ack was over the limit from the first step");
    } else {
      System.out.printf(
          Locale.ROOT, "  highest sustained with p99 submit->ack <= %.0f ms: %.1f operations/s (%.1f edits/s, %s editors)%n",
          limit, best.get("acked/s"), best.get("edits/s"), best.get("editors"));
    }
    return true;
  }

  /**
   * One character typed at a random place, or deleted once the text is long: the edit of the
   * {@code latency} and {@code ramp} modes and of the {@code docs} scenario.
   */
  static TextOperation oneCharacter(String text, Random random) {
    int at = random.nextInt(text.length() + 1);
    if (text.length() > 2000 && at < text.length()) {
      return TextOperation.builder().retain(at).delete(1).retain(text.length() - at - 1).build();
    }
    String typed = String.valueOf((char) ('a' + random.nextInt(26)));
    return TextOperation.builder().retain(at).insert(typed).retain(text.length() - at).build();
  }

  // ---------------------------------------------------------------------------------------------
  // converge

  private boolean converge() throws Exception {
    int editors = integer("editors", 5);
    int seconds = integer("seconds", 300);
    long seed = Long.parseLong(option("seed", Long.toString(System.nanoTime())));
    String doc = createDocument(editors);
    System.out.printf(Locale.ROOT, "converge: document %s, %d editors for %d s, seed %d%n", doc, editors, seconds, seed);
    List<String> resyncs = new CopyOnWriteArrayList<>();
    List<DocumentClient> clients = new ArrayList<>();
    for (int i = 0; i < editors; i++) {
      String user = "bench-" + i;
      clients.add(
          DocumentClient.open(connector(user), doc, new DocumentClient.Listener() {
                @Override
                public void onResync(String code, String message) {
                  resyncs.add(user + ": " + code + " " + message);
                }
              })
              .get(60, TimeUnit.SECONDS));
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    AtomicLong reconnects = new AtomicLong();
    ExecutorService threads = Executors.newFixedThreadPool(editors);
    List<CompletableFuture<Void>> typing = new ArrayList<>();
    for (int i = 0; i < editors; i++) {
      DocumentClient client = clients.get(i);
      Random random = new Random(seed + i);
      typing.add(CompletableFuture.runAsync(() -> {
        while (System.nanoTime() < deadline) {
          sleep(random.nextInt(100));
          client.edit(text -> randomEdit(text, random));
          if (random.nextInt(50) == 0) {
            reconnects.incrementAndGet();
            client.reconnect();
          }
        }
      }, threads));
    }
    CompletableFuture.allOf(typing.toArray(CompletableFuture[]::new)).get(seconds + 60L, TimeUnit.SECONDS);
    threads.shutdown();
    for (DocumentClient client : clients) {
      client.await(s -> s.live() && !s.pending(), Duration.ofSeconds(60));
    }
    JsonNode server;
    try (ParleyClient reader = connector(OWNER).connect().get(30, TimeUnit.SECONDS)) {
      server = reader.request(frame("doc_open", doc)).get(30, TimeUnit.SECONDS);
    }
    long revision = server.path("revision").asLong();
    String text = server.path("text").asText();
    boolean converged = true;
    for (DocumentClient client : clients) {
      DocumentClient.Snapshot last = client.await(s -> s.revision() >= revision, Duration.ofSeconds(60));
      if (!last.text().equals(text) || last.revision() != revision) {
        converged = false;
        System.out.printf("  DIVERGED: %s has %d characters at revision %d%n", client, last.text().length(), last.revision());
      }
      client.close();
    }
    System.out.printf(
        Locale.ROOT, "  %s: %d revisions, %d characters, %d random reconnects, %d resyncs%s%n",
        converged ? "converged" : "FAILED", revision, text.length(), reconnects.get(), resyncs.size(),
        resyncs.isEmpty() ? "" : " " + resyncs);
    return converged && resyncs.isEmpty();
  }

  /** A few characters inserted or deleted at a random place between code points. */
  private static TextOperation randomEdit(String text, Random random) {
    int start = text.offsetByCodePoints(0, random.nextInt(text.codePointCount(0, text.length()) + 1));
    boolean delete = start < text.length() && random.nextInt(300) < text.length();
    if (delete) {
      int end = start;
      for (int n = 1 + random.nextInt(4); n > 0 && end < text.length(); n--) {
        end = text.offsetByCodePoints(end, 1);
      }
      return TextOperation.builder().retain(start).delete(end - start).retain(text.length() - end).build();
    }
    StringBuilder typed = new StringBuilder();
    for (int n = 1 + random.nextInt(5); n > 0; n--) {
      typed.append(random.nextInt(10) == 0 ? "🙂" : String.valueOf((char) ('a' + random.nextInt(26))));
    }
    return TextOperation.builder().retain(start).insert(typed.toString()).retain(text.length() - start).build();
  }

  // ---------------------------------------------------------------------------------------------
  // fill and open

  private boolean fill() throws Exception {
    long target = Long.parseLong(option("revisions", "100000"));
    int connections = integer("connections", 8);
    int window = integer("window", 32);
    String doc = createDocument(0);
    System.out.printf(Locale.ROOT, "fill: document %s, %d revisions over %d connections, %d in flight each%n", doc, target, connections, window);
    AtomicLong head = new AtomicLong();
    AtomicLong issued = new AtomicLong();
    AtomicReference<Throwable> failed = new AtomicReference<>();
    long started = System.nanoTime();
    List<ParleyClient> clients = new ArrayList<>();
    List<CompletableFuture<Void>> writers = new ArrayList<>();
    ExecutorService threads = Executors.newFixedThreadPool(connections);
    for (int c = 0; c < connections; c++) {
      ParleyClient client = connector(OWNER).connect().get(30, TimeUnit.SECONDS);
      clients.add(client);
      Semaphore inFlight = new Semaphore(window);
      String prefix = "fill" + c + ".";
      writers.add(CompletableFuture.runAsync(() -> {
        long n;
        while (failed.get() == null && (n = issued.incrementAndGet()) <= target) {
          inFlight.acquireUninterruptibly();
          // Every revision adds one character, so the text at revision r is r long and an
          // insert at its start fits any base the document still retains.
          long base = head.get();
          ObjectNode submit = frame("doc_submit", doc).put("clientOpId", prefix + n).put("revision", base);
          submit.set("op", JSON.valueToTree(TextOperation.builder().insert("x").retain((int) base).build()));
          client.request(submit).whenComplete((reply, failure) -> {
            inFlight.release();
            if (failure != null) {
              failed.compareAndSet(null, failure);
            } else {
              head.accumulateAndGet(reply.path("revision").asLong(), Math::max);
            }
          });
        }
        inFlight.acquireUninterruptibly(window);
      }, threads));
    }
    CompletableFuture.allOf(writers.toArray(CompletableFuture[]::new)).get();
    threads.shutdown();
    double elapsed = (System.nanoTime() - started) / 1e9;
    clients.forEach(ParleyClient::close);
    if (failed.get() != null) {
      System.out.println("  failed: " + failed.get().getMessage()
          + (failed.get().getMessage().contains("rate_limited") ? " (raise the node's parley.chat.rate-per-second)" : ""));
      return false;
    }
    System.out.printf(Locale.ROOT, "  %d revisions in %.1f s: %.0f revisions/s%n", head.get(), elapsed, head.get() / elapsed);
    return true;
  }

  private boolean open() throws Exception {
    String doc = options.get("doc");
    if (doc == null) {
      usage();
      return false;
    }
    int times = integer("times", 5);
    for (int i = 1; i <= times; i++) {
      try (ParleyClient client = connector(OWNER).connect().get(30, TimeUnit.SECONDS)) {
        long started = System.nanoTime();
        JsonNode opened = client.request(frame("doc_open", doc), Duration.ofSeconds(60)).get(70, TimeUnit.SECONDS);
        double millis = (System.nanoTime() - started) / 1e6;
        System.out.printf(
            Locale.ROOT, "open %d: %.1f ms (revision %d, %d characters)%n",
            i, millis, opened.path("revision").asLong(), opened.path("text").asText().length());
      }
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing

  /** A new document owned by {@value #OWNER}, editable by bench-0 to bench-(editors - 1). */
  private String createDocument(int editors) throws Exception {
    String doc = option("doc", "bench-" + Long.toString(System.currentTimeMillis(), 36));
    List<String> users = new ArrayList<>();
    for (int i = 0; i < editors; i++) {
      users.add("bench-" + i);
    }
    try (ParleyClient owner = connector(OWNER).connect().get(30, TimeUnit.SECONDS)) {
      DocumentClient.create(owner, doc, "", users).get(30, TimeUnit.SECONDS);
    }
    return doc;
  }

  private DocumentClient.Connector connector(String user) {
    ParleyClient.Options quiet = ParleyClient.Options.defaults().withPushBuffer(0);
    return () ->
        CompletableFuture.supplyAsync(() -> ParleyClient.devToken(http, user))
            .thenCompose(token -> ParleyClient.connect(ws, token, quiet));
  }

  private static ObjectNode frame(String type, String doc) {
    return JSON.createObjectNode().put("type", type).put("doc", doc);
  }

  private String option(String name, String fallback) {
    return options.getOrDefault(name, fallback);
  }

  private int integer(String name, int fallback) {
    return Integer.parseInt(option(name, Integer.toString(fallback)));
  }

  private double number(String name, double fallback) {
    return Double.parseDouble(option(name, Double.toString(fallback)));
  }

  private static double millis(long nanos) {
    return Math.round(nanos / 10_000.0) / 100.0;
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static void usage() {
    String doc = DocumentBench.class.getName();
    System.err.println("usage: java -cp 'target/parley.jar:target/lib/*' " + doc
        + " latency|ramp|converge|fill|open [--option value]...\n(see the class comment for the options and their defaults)");
  }
}
