package parley.bench;

import com.datastax.oss.driver.api.core.CqlSession;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.HdrHistogram.Histogram;

/**
 * What an idle connection costs the server: N authenticated connections that do nothing after
 * connecting (a Parley connection has resumed, so its session and user entity are live; a
 * Socket.IO one has joined the main namespace). The server's resident memory is read before
 * and after, and divided by N: as it is, and after a full garbage collection (a JVM through
 * jcmd; a Node.js peer on {@code --gc-signal USR2}); for a JVM also the live heap.
 *
 * <p>The server is warmed up first with a round of connections that are closed again, so class
 * loading, JIT and pools grown once do not count as a per-connection cost. The connections are
 * then held for {@code --settle}, past at least one keep-alive round of each server. Idle CPU
 * is measured over that hold but for its first {@value #QUIET_SECONDS} s (a third of it if
 * shorter), so it counts what holding costs, not the opening's tail: the last resumes
 * answered, their first last-seen writes, the JIT compiling the paths they took.
 *
 * <p>A Parley connection's dev token is fetched before the opening is timed, as a real client
 * holds its token before it connects ({@code dev_tokens_per_s}: how fast they came); opening
 * is then the upgrade (where the token is checked), the session, and {@code resume} with the
 * user's presence.
 *
 * <p>{@code --returning} says who opens: {@code none} (default), users connecting for the first
 * time, whose user entities start empty and journal a first last-seen; {@code awake}, users who
 * connected once and left just before, whose entities are still in memory; {@code asleep}, the
 * same users after {@code --asleep-after} (75 s, past the bench node's 45 s passivation), whose
 * entities are recovered from Cassandra on connect, as after a night away or a node's failure.
 * Returning users open with a dev token fetched anew ({@code --tokens fresh}, the default), or
 * with the token they first connected with ({@code --tokens kept}), as a client reconnecting
 * after a blip or a node's failure does: the node has then seen that token before.
 *
 * <p>On Parley, chat must still work for the connections held: after the hold, {@value
 * #CHAT_SAMPLE} of them spread over the whole crowd join one room, one sends a message, and
 * {@code chat_delivered} counts how many of them received it ({@code chat_ms}: how long the
 * last took).
 */
final class Connections implements Scenario {

  private static final int QUIET_SECONDS = 15;
  private static final int CHAT_SAMPLE = 100;

  @Override
  public List<Result> run(Args args) throws Exception {
    Target target = Target.named(args.string("target", "parley"));
    URI url = args.uri("url", "http://127.0.0.1:18280");
    int count = args.integer("connections", 5000);
    int warmupCount = args.integer("warmup-connections", 500);
    Duration settle = args.duration("settle", Duration.ofSeconds(55));
    int concurrency = args.integer("connect-concurrency", 32);
    String gcSignal = args.string("gc-signal", "");
    String returning = args.string("returning", "none");
    Duration asleepAfter = args.duration("asleep-after", Duration.ofSeconds(75));
    String tokens = args.string("tokens", "fresh");
    String cassandra = args.string("cassandra", "");
    if (!List.of("none", "awake", "asleep").contains(returning)) {
      throw new IllegalArgumentException("--returning is none, awake or asleep, not " + returning);
    }
    if (!List.of("fresh", "kept").contains(tokens) || (tokens.equals("kept") && returning.equals("none"))) {
      throw new IllegalArgumentException("--tokens is fresh, or kept with --returning awake or asleep, not " + tokens);
    }
    String run = args.runId();
    Usage usage = Usage.from(args);
    args.requireAllUsed();
    ProcessProbe server = usage.server();
    if (server == null) {
      throw new IllegalArgumentException("connections needs --server-pid: it measures the server");
    }

    Tally tally = new Tally();
    System.err.printf("connections: warming up with %d connections%n", warmupCount);
    Crowd.connect(target, url, users("cw-" + run, warmupCount), i -> tally, concurrency).close();
    Thread.sleep(5000);
    Footprint before = Footprint.of(server, gcSignal);

    List<String> users = users("cn-" + run, count);
    Map<String, String> kept = Map.of();
    if (!returning.equals("none")) {
      System.err.printf("connections: %d users connect once and leave first (%s)%n", count, returning);
      if (tokens.equals("kept")) {
        Target.fetchTokens(url, users);
        kept = Target.fetched(users);
      }
      Crowd.connect(target, url, users, i -> tally, concurrency).close();
      // Their leaving journals their last-seen: not part of the opening timed next.
      usage.awaitQuiet(0.15, Duration.ofSeconds(60));
      if (returning.equals("asleep")) {
        System.err.printf("connections: waiting %d s for their user entities to passivate%n", asleepAfter.toSeconds());
        Thread.sleep(asleepAfter.toMillis());
      }
    }
    Double tokensPerSecond = null;
    if (!kept.isEmpty()) {
      Target.reuse(kept);
    } else if (target == Target.PARLEY || target == Target.PARLEY_NETTY) {
      System.err.printf("connections: fetching %d dev tokens first%n", count);
      tokensPerSecond = Target.fetchTokens(url, users);
    }
    System.err.printf("connections: opening %d connections to %s (%s)%n", count, url, target.label());
    CqlSession storage = cassandra.isEmpty() ? null : RawCassandra.session(cassandra, "datacenter1");
    Map<String, long[]> servedBefore = storage == null ? null : RawCassandra.served(storage);
    long opening = System.nanoTime();
    Usage.Window openWindow = usage.start();
    ChatCheck chat = new ChatCheck(tally);
    Crowd crowd = Crowd.connect(target, url, users, i -> chat, concurrency);
    Map<String, Object> openUsage = openWindow.stop();
    double openSeconds = (System.nanoTime() - opening) / 1e9;
    Histogram upgrades = new Histogram(Numbers.MAX_MICROS, 3);
    Histogram resumes = new Histogram(Numbers.MAX_MICROS, 3);
    for (Link link : crowd.links()) {
      if (link instanceof ParleyLink parley) {
        upgrades.recordValue(Math.min(parley.upgradeMicros(), Numbers.MAX_MICROS));
        resumes.recordValue(Math.min(parley.resumeMicros(), Numbers.MAX_MICROS));
      }
    }
    System.err.printf("connections: open in %.1f s; holding them %d s%n", openSeconds, settle.toSeconds());
    Duration quiet = Duration.ofSeconds(QUIET_SECONDS);
    if (quiet.multipliedBy(3).compareTo(settle) > 0) {
      quiet = settle.dividedBy(3);
    }
    Thread.sleep(quiet.toMillis());
    // Counted after the quiet spell, not at the last resume's answer: a resume is answered
    // without waiting for the user's entity, whose recovery and first write may still run.
    Map<String, long[]> served = storage == null ? null : RawCassandra.since(servedBefore, RawCassandra.served(storage));
    if (storage != null) {
      storage.close();
    }
    Usage.Window idle = usage.start();
    Thread.sleep(settle.minus(quiet).toMillis());
    Map<String, Object> idleUsage = idle.stop();
    Footprint after = Footprint.of(server, gcSignal);
    long lost = tally.lostSoFar();
    Map<String, Object> chatColumns =
        target == Target.PARLEY || target == Target.PARLEY_NETTY ? chat.run(crowd, "cn-" + run + "-chat") : Map.of();
    crowd.close();

    Map<String, Object> row = new LinkedHashMap<>();
    row.put("connections", count);
    row.put("returning", returning);
    row.put("tokens", tokens);
    row.put("open_per_s", Numbers.round(count / openSeconds, 0));
    if (tokensPerSecond != null) {
      row.put("dev_tokens_per_s", Numbers.round(tokensPerSecond, 0));
    }
    row.put("rss_before_mb", mb(before.rss()));
    row.put("rss_after_mb", mb(after.rss()));
    row.put("rss_per_conn_kb", perConnectionKb(before.rss(), after.rss(), count));
    if (before.collected() && after.collected()) {
      row.put("rss_gc_before_mb", mb(before.rssAfterCollection()));
      row.put("rss_gc_after_mb", mb(after.rssAfterCollection()));
      row.put("rss_gc_per_conn_kb", perConnectionKb(before.rssAfterCollection(), after.rssAfterCollection(), count));
    }
    if (before.liveHeap().isPresent() && after.liveHeap().isPresent()) {
      row.put("heap_before_mb", mb(before.liveHeap().getAsLong()));
      row.put("heap_after_mb", mb(after.liveHeap().getAsLong()));
      row.put("heap_per_conn_kb", perConnectionKb(before.liveHeap().getAsLong(), after.liveHeap().getAsLong(), count));
    }
    // What the machine did while they opened: the server, its storage (a Parley node's
    // Cassandra, with --storage-pid) and this tool, in % of one core.
    openUsage.forEach((column, value) -> {
      if (column.endsWith("_cpu_pct")) {
        row.put("open_" + column, value);
      }
    });
    if (resumes.getTotalCount() > 0) {
      // Where an open's time goes: the upgrade to the welcome, then resume to its answer.
      Numbers.latencies(row, "open_upgrade", upgrades);
      Numbers.latencies(row, "open_resume", resumes);
    }
    if (served != null) {
      // What Cassandra was asked per open: the floor `bench recoveries` measures must ask as much.
      long[] total = RawCassandra.total(served);
      row.put("reads_per_open", Numbers.round(total[0] / (double) count, 2));
      row.put("writes_per_open", Numbers.round(total[1] / (double) count, 2));
    }
    row.put("idle_server_cpu_pct", idleUsage.get("server_cpu_pct"));
    row.put("lost", lost);
    row.putAll(chatColumns);
    List<String> notes = new ArrayList<>();
    if (served != null) {
      served.forEach((table, c) -> notes.add("while opening, Cassandra served " + table + ": " + c[0] + " reads, " + c[1] + " writes"));
    }
    if (lost > 0) {
      notes.add(lost + " connections were closed by the server while idle: " + tally.take().failures());
    }
    return List.of(new Result("connections", target.label(), List.of(row), notes));
  }

  /**
   * The server's memory at one moment: resident as it is; then, if a full collection could be
   * run, resident after it (a JVM may give heap back to the system) and a JVM's heap in use,
   * which after the collection is its live data.
   */
  private record Footprint(long rss, boolean collected, long rssAfterCollection, OptionalLong liveHeap) {
    static Footprint of(ProcessProbe server, String gcSignal) {
      long rss = server.rssBytes();
      if (!server.collectGarbage(gcSignal)) {
        return new Footprint(rss, false, rss, OptionalLong.empty());
      }
      return new Footprint(rss, true, server.rssBytes(), server.heapUsedBytes());
    }
  }

  /**
   * Counts the deliveries of one message to a sample of the crowd; everything else goes to the
   * scenario's tally.
   */
  private static final class ChatCheck implements Link.Listener {
    private final Tally tally;
    private final AtomicInteger delivered = new AtomicInteger();

    ChatCheck(Tally tally) {
      this.tally = tally;
    }

    Map<String, Object> run(Crowd crowd, String room) throws Exception {
      List<Link> links = crowd.links();
      List<Link> sample = new ArrayList<>();
      for (int i = 0; i < CHAT_SAMPLE && i < links.size(); i++) {
        sample.add(links.get(i * links.size() / Math.min(CHAT_SAMPLE, links.size())));
      }
      sample.get(0).join(room, true).get(30, TimeUnit.SECONDS);
      Crowd.eachOf(sample.subList(1, sample.size()), link -> link.join(room, false), 32);
      long sent = System.nanoTime();
      long stamp = Payload.stamp();
      sample.get(0).publish(room, stamp, Payload.body(stamp, 100));
      long deadline = sent + Duration.ofSeconds(30).toNanos();
      while (delivered.get() < sample.size() && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      Map<String, Object> columns = new LinkedHashMap<>();
      columns.put("chat_members", sample.size());
      columns.put("chat_delivered", delivered.get());
      columns.put("chat_ms", Numbers.round((System.nanoTime() - sent) / 1e6, 0));
      return columns;
    }

    @Override
    public void delivered(long stamp) {
      delivered.incrementAndGet();
    }

    @Override
    public void acked(long stamp) {}

    @Override
    public void failed(String code) {
      tally.failed(code);
    }

    @Override
    public void lost(int code, String reason) {
      tally.lost(code, reason);
    }
  }

  private static Number mb(long bytes) {
    return Numbers.round(bytes / 1048576.0, 1);
  }

  private static Number perConnectionKb(long before, long after, int count) {
    return Numbers.round((after - before) / 1024.0 / count, 2);
  }

  private static List<String> users(String prefix, int count) {
    List<String> users = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      users.add(prefix + "-" + i);
    }
    return users;
  }
}
