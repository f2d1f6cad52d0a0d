package parley.transport;

import java.time.Duration;

/**
 * The liveness rule of an interactive connection, as Socket.IO's {@code pingInterval} and
 * {@code pingTimeout}: the server pings every interval, and a client heard from neither by a
 * pong nor by any other frame for interval + timeout is gone. A client that vanished without
 * closing (a laptop lid shut, a NAT mapping dropped) sends no FIN; without this rule its
 * session would stay until TCP gives up, many minutes later.
 *
 * <p>Times are {@link System#nanoTime()} readings passed in by the caller, so the rule is
 * tested without a clock. Not thread-safe: it belongs to one session.
 */
final class Heartbeat {

  private final long allowedSilenceNanos;
  private long lastHeard;

  Heartbeat(Duration interval, Duration timeout, long now) {
    if (interval.isNegative() || interval.isZero() || timeout.isNegative()) {
      throw new IllegalArgumentException("heartbeat interval must be > 0 and timeout >= 0");
    }
    this.allowedSilenceNanos = interval.plus(timeout).toNanos();
    this.lastHeard = now;
  }

  /** A frame arrived from the client: proof of life, whatever it was. */
  void heard(long now) {
    lastHeard = now;
  }

  /** How much longer the client may stay silent; zero once it counts as gone. */
  Duration remaining(long now) {
    return Duration.ofNanos(Math.max(0, lastHeard + allowedSilenceNanos - now));
  }

  boolean expired(long now) {
    return remaining(now).isZero();
  }
}
