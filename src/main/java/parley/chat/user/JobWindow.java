package parley.chat.user;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * The latest push of each of a user's recently changed jobs, in the order of their latest
 * change, each stamped with a position that grows by one per accepted push: what a long-poll or
 * SSE client that was away between two connections missed (docs/transports.md, "Job pushes").
 * A push carries the whole job, so a job's newest push stands for the ones before it.
 *
 * <p>Bounded by jobs and by bytes; what falls out is remembered only as the highest position
 * that fell out, so a client whose position is older learns that it may have missed something
 * rather than missing it silently. Memory only: it lives and dies with one incarnation of the
 * user's entity, which names itself with a random {@link #epoch()}.
 */
final class JobWindow {

  /** One job's latest push: its version orders it among the job's pushes. */
  record Entry(long position, String job, long version, String frame) {}

  /** Pushes after a position, oldest first; {@code more}: the page was cut short. */
  record Page(List<Entry> entries, boolean more) {}

  private final String epoch;
  private final int maxJobs;
  private final long maxChars;
  /** By job id, in the order of their positions (a job's new push moves it to the end). */
  private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>();
  private long position;
  private long chars;
  /** The highest position that was dropped for room: a client before it may lack its job. */
  private long droppedUpTo;

  JobWindow(String epoch, int maxJobs, long maxChars) {
    this.epoch = epoch;
    this.maxJobs = maxJobs;
    this.maxChars = maxChars;
  }

  String epoch() {
    return epoch;
  }

  /** The position of the latest accepted push (0 before the first). */
  long position() {
    return position;
  }

  /**
   * The highest position dropped for room: every push kept is after it, and a client whose
   * place is before it may lack a job's latest push.
   */
  long droppedUpTo() {
    return droppedUpTo;
  }

  /**
   * Keeps {@code frame} as the job's latest push, at the next position; null (and nothing kept)
   * when the window already holds that version of the job or a newer one, so a push that comes
   * twice, or late, is not passed on twice.
   */
  Entry accept(String job, long version, String frame) {
    Entry known = entries.get(job);
    if (known != null && known.version() >= version) {
      return null;
    }
    if (known != null) {
      entries.remove(job);
      chars -= known.frame().length();
    }
    Entry entry = new Entry(++position, job, version, frame);
    entries.put(job, entry);
    chars += frame.length();
    Iterator<Entry> oldest = entries.values().iterator();
    while ((entries.size() > maxJobs || chars > maxChars) && entries.size() > 1) {
      Entry dropped = oldest.next();
      oldest.remove();
      chars -= dropped.frame().length();
      droppedUpTo = dropped.position();
    }
    return entry;
  }

  /** The pushes kept after {@code after}, oldest first, at most {@code maxChars} of frames (always at least one). */
  Page after(long after, long maxChars) {
    List<Entry> page = new ArrayList<>();
    long size = 0;
    for (Entry entry : entries.values()) {
      if (entry.position() <= after) {
        continue;
      }
      if (!page.isEmpty() && size + entry.frame().length() > maxChars) {
        return new Page(page, true);
      }
      page.add(entry);
      size += entry.frame().length();
    }
    return new Page(page, false);
  }
}
