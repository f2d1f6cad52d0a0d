package parley.bench;

import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Room fan-out: R rooms of M members each; members publish at a total rate P (spread evenly
 * over rooms and publishers), and every member, the sender included, receives every message of
 * its room. Several rates can be swept in one run over the same connections.
 *
 * <p>Sends follow a fixed schedule (open loop), and each message is stamped with the time it
 * was due, not the time it went out: when the server or the tool falls behind, the delay shows
 * up as latency instead of silently lowering the rate (no coordinated omission).
 */
final class Fanout implements Scenario {

  private record Publisher(Link link, String room) {}

  @Override
  public List<Result> run(Args args) throws Exception {
    Target target = Target.named(args.string("target", "parley"));
    URI url = args.uri("url", "http://127.0.0.1:18280");
    int rooms = args.integer("rooms", 1);
    int members = args.integer("members", 100);
    int publishersPerRoom = args.integer("publishers", members);
    List<Integer> rates = args.integers("rates", List.of(1000));
    int size = args.integer("size", 100);
    Duration warmup = args.duration("warmup", Duration.ofSeconds(5));
    Duration duration = args.duration("duration", Duration.ofSeconds(20));
    Duration tail = args.duration("tail", Duration.ofSeconds(5));
    int concurrency = args.integer("connect-concurrency", 32);
    String run = args.runId();
    Usage usage = Usage.from(args);
    args.requireAllUsed();
    if (!target.hasRooms()) {
      throw new IllegalArgumentException("fanout needs a server with rooms; " + target.label() + " has none");
    }
    if (publishersPerRoom < 1 || publishersPerRoom > members) {
      throw new IllegalArgumentException("--publishers must be between 1 and --members");
    }

    Tally tally = new Tally();
    List<String> users = new ArrayList<>();
    for (int r = 0; r < rooms; r++) {
      for (int m = 0; m < members; m++) {
        users.add("fan-" + run + "-r" + r + "-u" + m);
      }
    }
    System.err.printf("fanout: connecting %d members to %s (%s)%n", users.size(), url, target.label());
    Crowd crowd = Crowd.connect(target, url, users, i -> tally, concurrency);
    List<Publisher> publishers = new ArrayList<>();
    for (int r = 0; r < rooms; r++) {
      String room = "fan-" + run + "-" + r;
      Link owner = crowd.get(r * members);
      owner.join(room, true).get(30, TimeUnit.SECONDS);
      Crowd.eachOf(crowd.links().subList(r * members + 1, (r + 1) * members), l -> l.join(room, false), concurrency);
    }
    // Interleaved, so consecutive sends go to different rooms and different members.
    for (int p = 0; p < publishersPerRoom; p++) {
      for (int r = 0; r < rooms; r++) {
        publishers.add(new Publisher(crowd.get(r * members + p), "fan-" + run + "-" + r));
      }
    }
    // Join events and presence notices settle before the first step.
    Thread.sleep(2000);

    List<Map<String, Object>> rows = new ArrayList<>();
    List<String> notes = new ArrayList<>();
    Schedule schedule =
        new Schedule(
            publishers.size(),
            (due, i) -> {
              Publisher publisher = publishers.get(i);
              long stamp = Payload.stampAt(due);
              tally.sent(stamp);
              publisher.link().publish(publisher.room(), stamp, Payload.body(stamp, size));
            });
    Thread sender = new Thread(schedule, "bench-fanout-sender");
    sender.start();
    try {
      for (int rate : rates) {
        System.err.printf("fanout: %d msgs/s (%d s warm-up, %d s measured)%n", rate, warmup.toSeconds(), duration.toSeconds());
        schedule.rate(rate);
        Thread.sleep(warmup.toMillis());
        tally.open(duration);
        Usage.Window window = usage.start();
        Thread.sleep(duration.toMillis());
        Map<String, Object> used = window.stop();
        Thread.sleep(tail.toMillis());
        Tally.Counts counts = tally.take();
        rows.add(row(rate, members, duration, counts, used));
        notes.addAll(notesOf(rate, members, counts, schedule.worstLagMillis()));
        if (counts.lost() > 0) {
          notes.add("connections were lost at " + rate + " msgs/s; the sweep stops there");
          break;
        }
      }
    } finally {
      schedule.stop();
      sender.join();
      crowd.close();
    }
    return List.of(new Result("fanout", target.label(), rows, notes));
  }

  private static Map<String, Object> row(
      int rate, int members, Duration duration, Tally.Counts counts, Map<String, Object> used) {
    double seconds = duration.toMillis() / 1000.0;
    long sent = counts.sent();
    long expected = sent * members;
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("rate", rate);
    row.put("sent_per_s", Numbers.round(sent / seconds, 0));
    row.put("delivered_per_s", Numbers.round(counts.delivered() / seconds, 0));
    row.put("delivered_pct", expected == 0 ? 0 : Numbers.round(100.0 * counts.delivered() / expected, 2));
    // A publish neither acknowledged nor refused by the end of the tail counts as an error too.
    row.put("errors", counts.failed() + counts.lost() + Math.max(0, sent - counts.acked() - counts.failed()));
    Numbers.latencies(row, "e2e", counts.deliveryMicros());
    Numbers.latencies(row, "ack", counts.ackMicros());
    row.putAll(used);
    // Deliveries per second of CPU spent by the server and its storage: what a step costs,
    // whatever share of the machine the server got while others competed for it.
    double cpu = percent(used.get("server_cpu_pct")) + percent(used.get("storage_cpu_pct"));
    if (cpu > 0) {
      row.put("delivered_per_cpu_s", Numbers.round(counts.delivered() / seconds / (cpu / 100), 0));
    }
    return row;
  }

  private static double percent(Object column) {
    return column instanceof Number n ? n.doubleValue() : 0;
  }

  private static List<String> notesOf(int rate, int members, Tally.Counts counts, long lagMillis) {
    List<String> notes = new ArrayList<>();
    long expected = counts.sent() * members;
    if (counts.delivered() < expected) {
      notes.add(rate + " msgs/s: " + (expected - counts.delivered()) + " of " + expected
          + " deliveries did not arrive within the tail");
    }
    if (!counts.failures().isEmpty()) {
      notes.add(rate + " msgs/s: failures " + counts.failures());
    }
    if (lagMillis > 100) {
      notes.add(rate + " msgs/s: the sender fell up to " + lagMillis
          + " ms behind its schedule (the delay is in the latencies)");
    }
    return notes;
  }
}
