package parley.bench;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Counts and times what the editors of the docs scenario do, the same way for every server.
 * An operation counts if it went on the wire while a window was open; its acknowledgement and
 * its arrival at the other editors are timed from that moment, also after the window has
 * closed, until the window's numbers are taken. Operations are named by an id unique in the
 * run: Parley's client operation id, ShareDB's source and sequence number.
 */
final class EditMeter {

  /** A window's numbers; latencies in microseconds. */
  record Counts(
      long edits,
      long submitted,
      long acknowledged,
      long resyncs,
      long lost,
      Histogram ackMicros,
      Histogram othersMicros) {

    /** Operations of the window that were never acknowledged. */
    long unacknowledged() {
      return submitted - acknowledged;
    }
  }

  private final Map<String, Long> submittedAt = new ConcurrentHashMap<>();
  private final Recorder ack = new Recorder(Numbers.MAX_MICROS, 3);
  private final Recorder others = new Recorder(Numbers.MAX_MICROS, 3);
  private final LongAdder edits = new LongAdder();
  private final LongAdder acknowledged = new LongAdder();
  private final LongAdder resyncs = new LongAdder();
  private final LongAdder lost = new LongAdder();
  private volatile boolean measuring;

  /** Starts a window: counts from nothing, and takes operations sent from now on. */
  void open() {
    measuring = false;
    take();
    measuring = true;
  }

  /** Stops taking new operations; those already taken are still followed. */
  void close() {
    measuring = false;
  }

  /** Whether every operation of the window has been acknowledged. */
  boolean settled() {
    return acknowledged.sum() >= submittedAt.size();
  }

  /** The window's numbers; counting starts over. */
  Counts take() {
    Counts counts =
        new Counts(
            edits.sumThenReset(),
            submittedAt.size(),
            acknowledged.sumThenReset(),
            resyncs.sumThenReset(),
            lost.sumThenReset(),
            ack.getIntervalHistogram(),
            others.getIntervalHistogram());
    submittedAt.clear();
    return counts;
  }

  /** An editor changed its local text (whether or not it sent the edit at once). */
  void edited() {
    if (measuring) {
      edits.increment();
    }
  }

  /** An operation went on the wire; one sent again after a reconnect keeps its first time. */
  void submitted(String id) {
    if (measuring) {
      submittedAt.putIfAbsent(id, System.nanoTime());
    }
  }

  /** The server acknowledged operation {@code id} to its author. */
  void acknowledged(String id) {
    Long at = submittedAt.get(id);
    if (at != null) {
      ack.recordValue(micros(at));
      acknowledged.increment();
    }
  }

  /** Operation {@code id} reached an editor other than its author. */
  void arrived(String id) {
    Long at = submittedAt.get(id);
    if (at != null) {
      others.recordValue(micros(at));
    }
  }

  /** An editor gave up its unacknowledged edits and took the server's text. */
  void resynced() {
    resyncs.increment();
  }

  /** An editor's connection ended without the scenario closing it. */
  void lost() {
    lost.increment();
  }

  private static long micros(long fromNanos) {
    return Math.min(Numbers.MAX_MICROS, (System.nanoTime() - fromNanos) / 1000);
  }
}
