package parley.bench;

import java.util.concurrent.locks.LockSupport;

/**
 * An open-loop schedule: calls {@link Tick#at} at the current rate per second, round-robin over
 * {@code targets} indexes, on the thread that runs it. Each call gets the moment it was due,
 * so a sender that falls behind shows up as latency instead of silently lowering the rate (no
 * coordinated omission); how far behind it fell is kept for the step's notes.
 */
final class Schedule implements Runnable {

  /** One send or edit, due at {@code dueNanos} ({@link System#nanoTime()}), for target {@code index}. */
  interface Tick {
    void at(long dueNanos, int index);
  }

  private final int targets;
  private final Tick tick;
  private volatile int rate;
  private volatile boolean stopped;
  private volatile long worstLagNanos;

  Schedule(int targets, Tick tick) {
    this.targets = targets;
    this.tick = tick;
  }

  /** From now on, {@code perSecond} ticks a second in all (0 pauses). */
  void rate(int perSecond) {
    worstLagNanos = 0;
    rate = perSecond;
  }

  /** How far behind the schedule the ticks fell since the last call. */
  long worstLagMillis() {
    long lag = worstLagNanos / 1_000_000;
    worstLagNanos = 0;
    return lag;
  }

  void stop() {
    stopped = true;
  }

  @Override
  public void run() {
    int current = 0;
    long start = 0;
    long count = 0;
    int next = 0;
    while (!stopped) {
      if (rate != current) {
        current = rate;
        start = System.nanoTime();
        count = 0;
      }
      if (current == 0) {
        LockSupport.parkNanos(1_000_000);
        continue;
      }
      long due = start + count * 1_000_000_000L / current;
      long now = System.nanoTime();
      if (due > now) {
        LockSupport.parkNanos(Math.min(due - now, 1_000_000));
        continue;
      }
      worstLagNanos = Math.max(worstLagNanos, now - due);
      tick.at(due, next);
      next = (next + 1) % targets;
      count++;
    }
  }
}
