package parley.bench;

import java.util.Map;
import org.HdrHistogram.Histogram;

/** Rounding and latency columns, so every scenario reports numbers the same way. */
final class Numbers {

  /** Latencies are recorded in microseconds, up to a minute, to three significant digits. */
  static final long MAX_MICROS = 60_000_000;

  private Numbers() {}

  /** A whole number when {@code decimals} is 0, so the JSON says 12 rather than 12.0. */
  static Number round(double value, int decimals) {
    if (decimals == 0) {
      return Math.round(value);
    }
    double scale = Math.pow(10, decimals);
    return Math.round(value * scale) / scale;
  }

  /**
   * {@code <prefix>_p50_ms}, {@code _p99_ms}, {@code _p999_ms} and {@code _max_ms} of a
   * histogram of microseconds; an empty histogram gives no columns but a zero count.
   */
  static void latencies(Map<String, Object> row, String prefix, Histogram micros) {
    row.put(prefix + "_count", micros.getTotalCount());
    if (micros.getTotalCount() == 0) {
      return;
    }
    row.put(prefix + "_p50_ms", ms(micros.getValueAtPercentile(50)));
    row.put(prefix + "_p99_ms", ms(micros.getValueAtPercentile(99)));
    row.put(prefix + "_p999_ms", ms(micros.getValueAtPercentile(99.9)));
    row.put(prefix + "_max_ms", ms(micros.getMaxValue()));
  }

  private static Number ms(long micros) {
    return round(micros / 1000.0, 2);
  }
}
