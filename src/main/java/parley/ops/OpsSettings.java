package parley.ops;

import com.typesafe.config.Config;
import java.time.Duration;

/**
 * Settings of the operations endpoints ({@code parley.ops}), read once when Pekko Management
 * starts.
 *
 * @param pollInterval how often this node counts its shards and entities for the metrics
 * @param statsTimeout how long the shard distribution waits for the cluster's regions
 * @param virtualNodes virtual nodes per member on the consistent-hash ring, to name each
 *     shard's ring owner ({@code parley.cluster.virtual-nodes})
 * @param managementToken the bearer token {@code /cluster/*} and {@code /shard-distribution}
 *     require; empty leaves them open ({@code PARLEY_MANAGEMENT_TOKEN})
 */
public record OpsSettings(Duration pollInterval, Duration statsTimeout, int virtualNodes, String managementToken) {

  public static OpsSettings from(Config root) {
    Config ops = root.getConfig("parley.ops");
    return new OpsSettings(
        ops.getDuration("poll-interval"),
        ops.getDuration("stats-timeout"),
        root.getInt("parley.cluster.virtual-nodes"),
        ops.getString("management-token"));
  }
}
