package parley.multijvm;

import java.time.Duration;

/** The numbers a scenario measured, printed one per line so a run's output can be quoted. */
final class Measured {

  private Measured() {}

  static void print(String scenario, String what, Object value) {
    System.out.println("[multi-jvm] " + scenario + ": " + what + " = " + format(value));
  }

  static String format(Object value) {
    if (value instanceof Duration d) {
      return String.format("%.1f s", d.toMillis() / 1000.0);
    }
    return String.valueOf(value);
  }

  static Duration since(long nanos) {
    return Duration.ofNanos(System.nanoTime() - nanos);
  }
}
