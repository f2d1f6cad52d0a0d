package parley.bench;

/**
 * Message bodies that carry their send time, so the receiver computes send-to-receive latency
 * without a table of what was sent: {@code ~t<stamp>~} followed by {@code x} up to the wanted
 * size. Bodies use only letters, digits and {@code ~}, so every protocol carries them without
 * escaping, and the stamp is found by a plain string search in any frame.
 *
 * <p>A stamp is microseconds on this tool's monotonic clock plus 10^9. It is always at least
 * 10^9, so it never collides with the small numbers that name set-up requests; and it stays far
 * below 2^53, so Socket.IO, which treats acknowledgement ids as JavaScript numbers, hands it
 * back unchanged. Sender and receivers are the same process, so stamps compare exactly.
 */
final class Payload {

  static final long STAMP_FLOOR = 1_000_000_000L;

  private static final long ORIGIN = System.nanoTime();
  private static final String MARK = "~t";

  private Payload() {}

  static long stamp() {
    return (System.nanoTime() - ORIGIN) / 1000 + STAMP_FLOOR;
  }

  /** The stamp of the instant {@code nanoTime}, a {@link System#nanoTime} reading. */
  static long stampAt(long nanoTime) {
    return (nanoTime - ORIGIN) / 1000 + STAMP_FLOOR;
  }

  /** A body of {@code size} characters (at least the stamp's own length) carrying {@code stamp}. */
  static String body(long stamp, int size) {
    StringBuilder body = new StringBuilder(Math.max(size, 24)).append(MARK).append(stamp).append('~');
    while (body.length() < size) {
      body.append('x');
    }
    return body.toString();
  }

  /** The stamp of the first body in {@code frame}, or -1 if it carries none. */
  static long stampIn(String frame) {
    int at = frame.indexOf(MARK);
    if (at < 0) {
      return -1;
    }
    long stamp = 0;
    for (int i = at + MARK.length(); i < frame.length(); i++) {
      char c = frame.charAt(i);
      if (c < '0' || c > '9') {
        return c == '~' ? stamp : -1;
      }
      stamp = stamp * 10 + (c - '0');
    }
    return -1;
  }
}
