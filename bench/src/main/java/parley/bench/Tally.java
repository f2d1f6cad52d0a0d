package parley.bench;

import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Counts and times what every connection of a scenario hears. Only messages whose stamp lies
 * in the current measurement window count, so messages of the warm-up, or late ones of an
 * earlier step, never blur a step's numbers; a window's messages that arrive after it has
 * ended (while the next traffic already flows) still count, until the window is taken.
 */
final class Tally implements Link.Listener {

  /** A window's numbers: counts and latency histograms in microseconds. */
  record Counts(
      long sent,
      long delivered,
      long acked,
      long failed,
      long lost,
      Histogram deliveryMicros,
      Histogram ackMicros,
      Map<String, Long> failures) {}

  private volatile long windowStart = Long.MAX_VALUE;
  private volatile long windowEnd = Long.MIN_VALUE;
  private final Recorder delivery = new Recorder(Numbers.MAX_MICROS, 3);
  private final Recorder ack = new Recorder(Numbers.MAX_MICROS, 3);
  private final LongAdder sent = new LongAdder();
  private final LongAdder failed = new LongAdder();
  private final LongAdder lost = new LongAdder();
  private final Map<String, LongAdder> failures = new ConcurrentHashMap<>();

  /** Counts, from now on, the messages stamped during the next {@code length}. */
  void open(Duration length) {
    // Shut first, so the old window's stragglers never land in the new one's counts.
    windowStart = Long.MAX_VALUE;
    take();
    // A millisecond ahead: no message stamped in the window can have been sent before it opens.
    long from = Payload.stamp() + 1000;
    windowEnd = from + length.toNanos() / 1000;
    windowStart = from;
  }

  /** The numbers since the window was opened; counting goes on until the next {@link #open}. */
  Counts take() {
    Map<String, Long> codes = new TreeMap<>();
    failures.forEach((code, count) -> codes.put(code, count.sumThenReset()));
    failures.clear();
    Histogram deliveries = delivery.getIntervalHistogram();
    Histogram acks = ack.getIntervalHistogram();
    // The histograms' counts, not separate counters, so counts and latencies always agree.
    return new Counts(
        sent.sumThenReset(),
        deliveries.getTotalCount(),
        acks.getTotalCount(),
        failed.sumThenReset(),
        lost.sumThenReset(),
        deliveries,
        acks,
        codes);
  }

  /** The number of connections lost so far in this window, without resetting it. */
  long lostSoFar() {
    return lost.sum();
  }

  private boolean inWindow(long stamp) {
    return stamp >= windowStart && stamp < windowEnd;
  }

  /** The tool sent a message stamped {@code stamp}. */
  void sent(long stamp) {
    if (inWindow(stamp)) {
      sent.increment();
    }
  }

  @Override
  public void delivered(long stamp) {
    if (inWindow(stamp)) {
      delivery.recordValue(Math.min(Payload.stamp() - stamp, Numbers.MAX_MICROS));
    }
  }

  @Override
  public void acked(long stamp) {
    if (inWindow(stamp)) {
      ack.recordValue(Math.min(Payload.stamp() - stamp, Numbers.MAX_MICROS));
    }
  }

  @Override
  public void failed(String code) {
    failed.increment();
    failures.computeIfAbsent(code, c -> new LongAdder()).increment();
  }

  @Override
  public void lost(int code, String reason) {
    lost.increment();
    failures.computeIfAbsent("closed " + code + " " + reason, c -> new LongAdder()).increment();
  }
}
