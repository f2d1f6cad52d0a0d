package parley.multijvm;

import java.time.Duration;
import java.util.List;

/** Reading the nodes' Prometheus metrics (/metrics on the management port). */
final class Metrics {

  private Metrics() {}

  /** A sample's value (name and labels as written, e.g. {@code x{a="b"}}) summed over the nodes. */
  static double sum(List<ClusterNode> nodes, String sample) {
    double total = 0;
    for (ClusterNode node : nodes) {
      String text = node.getText("/metrics").orElseThrow(() -> new AssertionError(node + " did not serve /metrics"));
      for (String line : text.split("\n")) {
        if (line.startsWith(sample + " ")) {
          total += Double.parseDouble(line.substring(sample.length() + 1).trim());
        }
      }
    }
    return total;
  }

  /** Shard and entity counts are refreshed every few seconds: wait for the sum to reach a value. */
  static double awaitSum(List<ClusterNode> nodes, String sample, double atLeast, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      double sum = sum(nodes, sample);
      if (sum >= atLeast) {
        return sum;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError(sample + " stayed at " + sum + ", below " + atLeast + ", for " + timeout);
      }
      Thread.sleep(250);
    }
  }
}
