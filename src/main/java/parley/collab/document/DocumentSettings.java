package parley.collab.document;

import com.typesafe.config.Config;

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
 */
public record DocumentSettings(int snapshotEvery, int retainedOps, int maxBytes, int dedupWindow) {

  public DocumentSettings {
    requirePositive("snapshot-every", snapshotEvery);
    requirePositive("retained-ops", retainedOps);
    requirePositive("max-size", maxBytes);
    requirePositive("dedup-window", dedupWindow);
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
        c.getInt("snapshot-every"), c.getInt("retained-ops"), (int) maxBytes, c.getInt("dedup-window"));
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
}
