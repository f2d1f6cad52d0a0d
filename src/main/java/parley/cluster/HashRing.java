package parley.cluster;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Collection;
import java.util.Collections;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * An immutable consistent-hash ring: each member (a cluster member address such as
 * {@code pekko://Parley@127.0.0.2:25520}) is placed on a 64-bit ring at a number of virtual
 * nodes, and a key belongs to the member of the first virtual node at or after the key's hash,
 * wrapping around.
 *
 * <p>Because every member's positions depend only on its own name, adding a member takes keys
 * only for that member and removing one hands only its keys on, each to the next member
 * clockwise; no key moves between two members that stayed. The hash is SHA-256, so the same
 * members give the same owners on every JVM and every node.
 */
public final class HashRing {

  /** Enough points that four members each own a share within a few percent of a quarter. */
  public static final int DEFAULT_VIRTUAL_NODES = 128;

  private final SortedSet<String> members;
  private final int virtualNodesPerMember;
  private final NavigableMap<Long, String> ring;

  public HashRing(Collection<String> members) {
    this(members, DEFAULT_VIRTUAL_NODES);
  }

  public HashRing(Collection<String> members, int virtualNodesPerMember) {
    if (virtualNodesPerMember < 1) {
      throw new IllegalArgumentException(
          "virtualNodesPerMember must be at least 1, was " + virtualNodesPerMember);
    }
    this.members = Collections.unmodifiableSortedSet(new TreeSet<>(members));
    this.virtualNodesPerMember = virtualNodesPerMember;
    TreeMap<Long, String> points = new TreeMap<>();
    for (String member : this.members) {
      for (int i = 0; i < virtualNodesPerMember; i++) {
        // On the (astronomically unlikely) collision of two points the smaller name keeps it,
        // so the ring still does not depend on the order members were given in.
        points.merge(hash(member + "#" + i), member, (a, b) -> a.compareTo(b) <= 0 ? a : b);
      }
    }
    this.ring = Collections.unmodifiableNavigableMap(points);
  }

  /** The member that owns {@code key}. */
  public String owner(String key) {
    if (ring.isEmpty()) {
      throw new IllegalStateException("an empty ring has no owner for " + key);
    }
    Map.Entry<Long, String> point = ring.ceilingEntry(hash(key));
    return point != null ? point.getValue() : ring.firstEntry().getValue();
  }

  /** The members on this ring, sorted. */
  public Set<String> members() {
    return members;
  }

  public int virtualNodesPerMember() {
    return virtualNodesPerMember;
  }

  /** The first 8 bytes of the SHA-256 of the UTF-8 bytes, big-endian: the same on every JVM. */
  static long hash(String value) {
    byte[] digest = sha256().digest(value.getBytes(StandardCharsets.UTF_8));
    long h = 0;
    for (int i = 0; i < Long.BYTES; i++) {
      h = (h << 8) | (digest[i] & 0xFF);
    }
    return h;
  }

  private static MessageDigest sha256() {
    try {
      // A fresh instance each time: MessageDigest is not thread-safe and the ring is shared.
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform must provide SHA-256", e);
    }
  }

  @Override
  public String toString() {
    return "HashRing" + members + " x" + virtualNodesPerMember;
  }
}
