package parley.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import parley.client.ParleyClient;

/**
 * Catch-up: a member goes offline, {@code --missed} messages are written to its room, and it
 * reconnects and resumes from the last seq it saw. Measured from the start of the reconnect
 * until its client has the last missed message, in order and without a gap. Only the oldest
 * messages beyond the room's in-memory window come from the journal, so this reads both.
 *
 * <p>Both sides use the reference client ({@link ParleyClient}): this is what a real client
 * goes through, JSON parsing included.
 */
final class Catchup implements Scenario {

  @Override
  public List<Result> run(Args args) throws Exception {
    URI url = args.uri("url", "http://127.0.0.1:18280");
    int missed = args.integer("missed", 10_000);
    int repeats = args.integer("repeats", 5);
    int size = args.integer("size", 100);
    int inFlight = args.integer("in-flight", 64);
    String run = args.runId();
    Usage usage = Usage.from(args);
    args.requireAllUsed();

    URI ws = URI.create("ws" + url.toString().substring(4)).resolve("/v1/ws");
    String room = "cu-" + run;
    String readerToken = ParleyClient.devToken(url, "cu-" + run + "-reader");
    String writerToken = ParleyClient.devToken(url, "cu-" + run + "-writer");
    ParleyClient.Options options = ParleyClient.Options.defaults().withPushBuffer(0).withRequestTimeout(Duration.ofSeconds(30));

    List<Map<String, Object>> rows = new ArrayList<>();
    List<String> notes = new ArrayList<>();
    try (ParleyClient writer = ParleyClient.connect(ws, writerToken, options).get(30, TimeUnit.SECONDS)) {
      writer.resume(null).get(30, TimeUnit.SECONDS);
      writer.createRoom(room, "public", null).get(30, TimeUnit.SECONDS);
      long seen;
      try (ParleyClient reader = ParleyClient.connect(ws, readerToken, options).get(30, TimeUnit.SECONDS)) {
        reader.resume(null).get(30, TimeUnit.SECONDS);
        seen = reader.join(room).get(30, TimeUnit.SECONDS);
      }
      for (int repeat = 1; repeat <= repeats; repeat++) {
        System.err.printf("catchup: writing %d messages while the reader is away%n", missed);
        long last = write(writer, room, missed, size, inFlight, repeat);
        Thread.sleep(1000);
        Map<String, Object> row = reconnect(repeat, ws, readerToken, options, room, seen, last, usage);
        rows.add(row);
        if ((long) row.get("received") != last - seen) {
          notes.add("repeat " + repeat + ": received " + row.get("received") + " of " + (last - seen));
        }
        seen = last;
      }
    }
    return List.of(new Result("catchup", "parley", rows, notes));
  }

  /** Writes {@code count} messages, {@code inFlight} at a time; returns the last seq. */
  private static long write(ParleyClient writer, String room, int count, int size, int inFlight, int repeat)
      throws Exception {
    Semaphore window = new Semaphore(inFlight);
    AtomicLong last = new AtomicLong();
    List<CompletableFuture<?>> sends = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      window.acquire();
      sends.add(
          writer
              .send(room, "r" + repeat + "-" + i, Payload.body(Payload.stamp(), size))
              .whenComplete((sent, failure) -> {
                window.release();
                if (sent != null) {
                  last.accumulateAndGet(sent.seq(), Math::max);
                }
              }));
    }
    try {
      CompletableFuture.allOf(sends.toArray(CompletableFuture[]::new)).get(5, TimeUnit.MINUTES);
    } catch (Exception e) {
      throw new IllegalStateException(
          "writing the missed messages failed (" + e.getCause()
              + "); a node with the default per-connection rate limit needs"
              + " -Dparley.chat.rate-per-second raised, as bench/run does", e);
    }
    return last.get();
  }

  private static Map<String, Object> reconnect(
      int repeat,
      URI ws, String token, ParleyClient.Options options, String room, long seen, long last, Usage usage)
      throws Exception {
    AtomicLong delivered = new AtomicLong(seen);
    AtomicLong received = new AtomicLong();
    AtomicLong gaps = new AtomicLong();
    AtomicLong firstAt = new AtomicLong();
    CompletableFuture<Long> done = new CompletableFuture<>();
    Usage.Window window = usage.start();
    long start = System.nanoTime();
    try (ParleyClient reader = ParleyClient.connect(ws, token, options).get(30, TimeUnit.SECONDS)) {
      long welcomed = System.nanoTime();
      reader.onPush(push -> {
        if (!isEventOf(push, room)) {
          return;
        }
        long seq = push.get("seq").asLong();
        if (seq != delivered.get() + 1) {
          gaps.incrementAndGet();
        }
        delivered.set(seq);
        received.incrementAndGet();
        firstAt.compareAndSet(0, System.nanoTime());
        if (seq >= last) {
          done.complete(System.nanoTime());
        }
      });
      reader.resume(Map.of(room, seen)).get(30, TimeUnit.SECONDS);
      long finished = done.get(5, TimeUnit.MINUTES);
      Map<String, Object> used = window.stop();
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("repeat", repeat);
      row.put("missed", last - seen);
      row.put("received", received.get());
      row.put("gaps", gaps.get());
      row.put("welcome_ms", millis(welcomed - start));
      row.put("first_ms", millis(firstAt.get() - start));
      row.put("total_ms", millis(finished - start));
      row.put("msgs_per_s", Numbers.round((last - seen) / ((finished - start) / 1e9), 0));
      row.putAll(used);
      return row;
    }
  }

  private static boolean isEventOf(JsonNode push, String room) {
    return "event".equals(push.path("type").asText()) && room.equals(push.path("room").asText());
  }

  private static Number millis(long nanos) {
    return Numbers.round(nanos / 1e6, 1);
  }
}
