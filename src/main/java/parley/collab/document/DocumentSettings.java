package parley.collab.document;

import com.typesafe.config.Config;
import java.time.Duration;

/**
 * Limits of collaborative documents, read once at start-up from {@code parley.documents}
 * (conf/documents.conf).
 *
 * @param snapshotEvery journal events between snapshots of a document's state
 * @param retainedOps recent operations a document keeps to transform late submissions and to
 *     serve catch-up; anything older needs a resync
 * @param maxBytes largest document size, in UTF-16 bytes: two per {@code char}, i.e. per
 *     JavaScript code unit, so {@code text.length() * 2}
 * @param dedupWindow client operation ids a document remembers to answer retries
 * @param roomMembershipTtl how long a document owned by a room trusts a "member" answer of the
 *     room for a user before it asks the room again
 * @param roomAskTimeout how long a document waits for the room's answer before it refuses the
 *     request as {@code unavailable}
 * @param retainedBytes the most the retained operations may weigh together (an upper bound of
 *     their journaled size): a few huge pastes are dropped sooner than a thousand keystrokes,
 *     so no document's state, snapshot or catch-up reply grows past it
 */
public record DocumentSettings(
    int snapshotEvery,
    int retainedOps,
    int maxBytes,
    int dedupWindow,
    Duration roomMembershipTtl,
    Duration roomAskTimeout,
    int retainedBytes) {

  public DocumentSettings {
    requirePositive("snapshot-every", snapshotEvery);
    requirePositive("retained-ops", retainedOps);
    requirePositive("max-size", maxBytes);
    requirePositive("dedup-window", dedupWindow);
    requirePositive("room-membership-ttl", roomMembershipTtl);
    requirePositive("room-ask-timeout", roomAskTimeout);
    requirePositive("retained-ops-size", retainedBytes);
  }

  /** Reads {@code parley.documents} from the node's root config. */
  public static DocumentSettings from(Config root) {
    Config c = root.getConfig("parley.documents");
    long maxBytes = c.getBytes("max-size");
    if (maxBytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "parley.documents.max-size must be below 2 GiB, was " + maxBytes + " bytes");
    }
    return new DocumentSettings(
        c.getInt("snapshot-every"),
        c.getInt("retained-ops"),
        (int) maxBytes,
        c.getInt("dedup-window"),
        c.getDuration("room-membership-ttl"),
        c.getDuration("room-ask-timeout"),
        (int) Math.min(Integer.MAX_VALUE, c.getBytes("retained-ops-size")));
  }

  /** Whether a text of this many UTF-16 code units is over {@link #maxBytes()}. */
  boolean tooLarge(String text) {
    return 2L * text.length() > maxBytes;
  }

  private static void requirePositive(String key, int value) {
    if (value < 1) {
      throw new IllegalArgumentException("parley.documents." + key + " must be positive, was " + value);
    }
  }

  private static void requirePositive(String key, Duration value) {
    if (value == null || value.isZero() || value.isNegative()) {
      throw new IllegalArgumentException("parley.documents." + key + " must be positive, was " + value);
    }
  }
}
