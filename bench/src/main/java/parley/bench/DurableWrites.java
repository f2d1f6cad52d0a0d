package parley.bench;

import com.datastax.oss.driver.api.core.ConsistencyLevel;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.uuid.Uuids;
import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Durable writes: many rooms written at the highest rate they accept, each by one connection
 * keeping {@code --in-flight} sends outstanding (a closed loop: every acknowledgement releases
 * the next send). An acknowledgement means the message is in Cassandra.
 *
 * <p>Beside it, in the same run and against the same Cassandra, the reference this number is
 * held to: a raw driver loop inserting rows of the journal's own shape (the {@code messages}
 * table of persistence-schema/journal.cql, created in a keyspace of the bench) with as many
 * inserts outstanding, one row per insert, at the journal plugin's consistency (QUORUM). It is
 * the limit of a path that writes every message as its own row; Parley's rooms gather the
 * messages that arrive during a write into one batch, so they can come close to it or pass it.
 * With {@code --repeats} the two alternate, so drift on a shared machine hits both alike.
 *
 * <p>{@code --target parley-netty} writes through the node's WebSocket port ({@code --ws-port})
 * rather than its client port. Each row of Parley's also carries {@code server_ms_per_write}:
 * the node's CPU time per acknowledged write.
 */
final class DurableWrites implements Scenario {

  @Override
  public List<Result> run(Args args) throws Exception {
    Target target = Target.named(args.string("target", "parley"));
    if (target != Target.PARLEY && target != Target.PARLEY_NETTY) {
      throw new IllegalArgumentException("durable-writes: --target must be parley or parley-netty, not " + target.label());
    }
    URI url = args.uri("url", "http://127.0.0.1:18280");
    int rooms = args.integer("rooms", 100);
    int inFlight = args.integer("in-flight", 4);
    int size = args.integer("size", 100);
    Duration warmup = args.duration("warmup", Duration.ofSeconds(5));
    Duration duration = args.duration("duration", Duration.ofSeconds(20));
    int repeats = args.integer("repeats", 1);
    String cassandra = args.string("cassandra", "127.0.0.1:39142");
    String datacenter = args.string("datacenter", "datacenter1");
    String replication = args.string("replication", "{'class': 'SimpleStrategy', 'replication_factor': 1}");
    int concurrency = args.integer("connect-concurrency", 32);
    String run = args.runId();
    Usage usage = Usage.from(args);
    args.requireAllUsed();

    List<Map<String, Object>> parleyRows = new ArrayList<>();
    List<Map<String, Object>> rawRows = new ArrayList<>();
    List<String> parleyNotes = new ArrayList<>();
    List<String> rawNotes = new ArrayList<>();

    Tally tally = new Tally();
    List<Writer> writers = new ArrayList<>();
    List<String> users = new ArrayList<>();
    for (int r = 0; r < rooms; r++) {
      Writer writer = new Writer("dw-" + run + "-" + r, size, tally);
      writers.add(writer);
      users.add("dw-" + run + "-u" + r);
    }
    System.err.printf("durable-writes: connecting %d writers to %s%n", rooms, url);
    Crowd crowd = Crowd.connect(target, url, users, writers::get, concurrency);
    for (int r = 0; r < rooms; r++) {
      writers.get(r).link = crowd.get(r);
    }
    CompletableFuture.allOf(
            writers.stream().map(w -> w.link.join(w.room, true)).toArray(CompletableFuture[]::new))
        .get(60, TimeUnit.SECONDS);

    try (CqlSession session = RawCassandra.session(cassandra, datacenter)) {
      PreparedStatement insert = prepareRawTable(session, replication);
      for (int repeat = 1; repeat <= repeats; repeat++) {
        System.err.printf("durable-writes: Parley, %d rooms × %d in flight%n", rooms, inFlight);
        writers.forEach(w -> w.start(inFlight));
        Map<String, Object> row = measure(repeat, tally, usage, warmup, duration, parleyNotes);
        if (row.get("server_cpu_pct") instanceof Number cpu && ((Number) row.get("writes_per_s")).doubleValue() > 0) {
          // cpu_pct of one core over writes/s: ms of node CPU per write.
          row.put("server_ms_per_write", Numbers.round(cpu.doubleValue() * 10 / ((Number) row.get("writes_per_s")).doubleValue(), 3));
        }
        parleyRows.add(row);
        writers.forEach(Writer::stop);
        Thread.sleep(2000);

        System.err.printf("durable-writes: raw driver loop, %d partitions × %d in flight%n", rooms, inFlight);
        RawLoop raw = new RawLoop(session, insert, run + "-" + repeat, rooms, inFlight, size, tally);
        raw.start();
        rawRows.add(measure(repeat, tally, usage, warmup, duration, rawNotes));
        raw.stop();
        Thread.sleep(2000);
      }
    } finally {
      crowd.close();
    }
    return List.of(
        new Result("durable-writes", target.label(), parleyRows, parleyNotes),
        new Result("durable-writes", "cassandra", rawRows, rawNotes));
  }

  private static Map<String, Object> measure(
      int repeat, Tally tally, Usage usage, Duration warmup, Duration duration, List<String> notes)
      throws InterruptedException {
    Thread.sleep(warmup.toMillis());
    tally.open(duration);
    Usage.Window window = usage.start();
    Thread.sleep(duration.toMillis());
    Map<String, Object> used = window.stop();
    // The window's last writes count if acknowledged within 2 s, while the load goes on.
    Thread.sleep(2000);
    Tally.Counts counts = tally.take();
    double seconds = duration.toMillis() / 1000.0;
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("repeat", repeat);
    row.put("writes_per_s", Numbers.round(counts.acked() / seconds, 0));
    row.put("errors", counts.failed() + counts.lost());
    Numbers.latencies(row, "ack", counts.ackMicros());
    row.putAll(used);
    if (!counts.failures().isEmpty()) {
      notes.add("repeat " + repeat + ": failures " + counts.failures());
    }
    return row;
  }

  /**
   * One room's writer: keeps {@code inFlight} sends outstanding while started. Its connection
   * also hears its own room's events (it is a member), as a real room's members do.
   */
  private static final class Writer implements Link.Listener {
    final String room;
    private final int size;
    private final Tally tally;
    volatile Link link;
    private volatile boolean running;

    Writer(String room, int size, Tally tally) {
      this.room = room;
      this.size = size;
      this.tally = tally;
    }

    void start(int inFlight) {
      running = true;
      for (int i = 0; i < inFlight; i++) {
        next();
      }
    }

    void stop() {
      running = false;
    }

    private void next() {
      if (running) {
        long stamp = Payload.stamp();
        tally.sent(stamp);
        link.publish(room, stamp, Payload.body(stamp, size));
      }
    }

    @Override
    public void delivered(long stamp) {}

    @Override
    public void acked(long stamp) {
      tally.acked(stamp);
      next();
    }

    @Override
    public void failed(String code) {
      tally.failed(code);
      next();
    }

    @Override
    public void lost(int code, String reason) {
      tally.lost(code, reason);
    }
  }

  /** The insert the journal plugin makes for an untagged event, into the bench's own table. */
  private static PreparedStatement prepareRawTable(CqlSession session, String replication) throws IOException {
    RawCassandra.createTable(session, replication, "journal.cql", "parley_journal.messages");
    return session.prepare(
        "INSERT INTO " + RawCassandra.KEYSPACE + ".messages (persistence_id, partition_nr, sequence_nr,"
            + " timestamp, timebucket, writer_uuid, ser_id, ser_manifest, event_manifest, event)"
            + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  }

  /**
   * The reference: {@code partitions × inFlight} single-row inserts outstanding, each
   * completion starting the next in the same partition.
   */
  private static final class RawLoop {
    private final CqlSession session;
    private final PreparedStatement insert;
    private final String run;
    private final int partitions;
    private final int inFlight;
    private final ByteBuffer event;
    private final Tally tally;
    private final String writer = UUID.randomUUID().toString();
    private final String timebucket = Long.toString(System.currentTimeMillis() / 3_600_000);
    private final AtomicLong[] sequence;
    private volatile boolean running;

    RawLoop(CqlSession session, PreparedStatement insert, String run, int partitions, int inFlight, int size, Tally tally) {
      this.session = session;
      this.insert = insert;
      this.run = run;
      this.partitions = partitions;
      this.inFlight = inFlight;
      this.tally = tally;
      // About what a MessagePosted event of this body size serializes to (CBOR: ids, body, ts).
      byte[] bytes = new byte[size + 100];
      ThreadLocalRandom.current().nextBytes(bytes);
      this.event = ByteBuffer.wrap(bytes);
      this.sequence = new AtomicLong[partitions];
      for (int p = 0; p < partitions; p++) {
        sequence[p] = new AtomicLong();
      }
    }

    void start() {
      running = true;
      for (int p = 0; p < partitions; p++) {
        for (int i = 0; i < inFlight; i++) {
          next(p);
        }
      }
    }

    void stop() throws InterruptedException {
      running = false;
      TimeUnit.SECONDS.sleep(1);
    }

    private void next(int partition) {
      if (!running) {
        return;
      }
      long stamp = Payload.stamp();
      tally.sent(stamp);
      session
          .executeAsync(
              insert
                  .bind(
                      "raw-" + run + "-" + partition,
                      0L,
                      sequence[partition].incrementAndGet(),
                      Uuids.timeBased(),
                      timebucket,
                      writer,
                      33,
                      "parley.chat.room.RoomEntity$MessagePosted",
                      "",
                      event.duplicate())
                  .setConsistencyLevel(ConsistencyLevel.QUORUM))
          .whenComplete(
              (rs, failure) -> {
                if (failure == null) {
                  tally.acked(stamp);
                  next(partition);
                } else {
                  // A refusal can complete at once, on this thread: retrying at once would spin.
                  tally.failed(failure.getClass().getSimpleName());
                  CompletableFuture.delayedExecutor(10, TimeUnit.MILLISECONDS).execute(() -> next(partition));
                }
              });
    }
  }
}
