package parley.multijvm;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Polls the peers' membership views (Pekko Management's /cluster/members, every 100 ms) while
 * something happens to one node, noting which peers saw it unreachable and when the first of
 * them saw it unreachable, marked down, and gone from the membership: the steps of a
 * failover's time budget.
 */
final class MembershipWatch implements AutoCloseable {

  private final String address;
  private final Set<String> sawUnreachable = new TreeSet<>();
  private final AtomicBoolean running = new AtomicBoolean(true);
  private final Thread thread;
  private long unreachableAt = -1;
  private long downAt = -1;
  private long removedAt = -1;
  private boolean listed;

  MembershipWatch(List<ClusterNode> peers, String address) {
    this.address = address;
    thread = new Thread(() -> poll(peers), "membership-watch");
    thread.setDaemon(true);
    thread.start();
  }

  private void poll(List<ClusterNode> peers) {
    while (running.get()) {
      for (ClusterNode peer : peers) {
        peer.getJson("/cluster/members").ifPresent(view -> note(peer, view, System.nanoTime()));
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private synchronized void note(ClusterNode peer, JsonNode view, long now) {
    for (JsonNode unreachable : view.path("unreachable")) {
      if (address.equals(unreachable.path("node").asText())) {
        sawUnreachable.add(peer.host);
        unreachableAt = unreachableAt < 0 ? now : unreachableAt;
      }
    }
    boolean member = false;
    for (JsonNode m : view.path("members")) {
      if (address.equals(m.path("node").asText())) {
        member = true;
        listed = true;
        if ("Down".equals(m.path("status").asText()) && downAt < 0) {
          downAt = now;
        }
      }
    }
    if (!member && listed && removedAt < 0) {
      removedAt = now;
    }
  }

  /** The peers that ever saw the node unreachable. */
  synchronized Set<String> sawUnreachable() {
    return Set.copyOf(sawUnreachable);
  }

  /** When (System.nanoTime) a peer first saw the node unreachable. */
  synchronized OptionalLong unreachableAt() {
    return unreachableAt < 0 ? OptionalLong.empty() : OptionalLong.of(unreachableAt);
  }

  /**
   * When a peer first listed the node as Down: the split-brain resolver's decision, or for a
   * process that exited, its watchers' (parley.cluster.ExitedPeerDowning).
   */
  synchronized OptionalLong downAt() {
    return downAt < 0 ? OptionalLong.empty() : OptionalLong.of(downAt);
  }

  /** When a peer that had listed the node first no longer listed it at all. */
  synchronized OptionalLong removedAt() {
    return removedAt < 0 ? OptionalLong.empty() : OptionalLong.of(removedAt);
  }

  @Override
  public void close() {
    running.set(false);
  }
}
