package parley.testing;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;

/** Config for in-JVM test nodes: a real cluster provider on a free port, joined to itself. */
public final class TestNodes {

  private TestNodes() {}

  /** A node config against {@link TestCassandra} with the keyspaces of {@code owner}. */
  public static Config config(String owner) {
    return ConfigFactory.parseString(
            """
            pekko.remote.artery.canonical.hostname = "127.0.0.1"
            pekko.remote.artery.canonical.port = 0
            pekko.cluster.jmx.multi-mbeans-in-same-jvm = on
            pekko.coordinated-shutdown.exit-jvm = off
            pekko.coordinated-shutdown.run-by-jvm-shutdown-hook = off
            pekko.cluster.run-coordinated-shutdown-when-down = off
            pekko.actor.testkit.typed.single-expect-default = 10s
            pekko.actor.testkit.typed.default-timeout = 10s
            # Above the node's own shutdown budget: its shard regions alone may take 10 s
            # (conf/cluster.conf) when a message waits for a shard home as the coordinator stops.
            pekko.actor.testkit.typed.system-shutdown-default = 30s
            """)
        .withFallback(TestCassandra.keyspacesFor(owner))
        .withFallback(ConfigFactory.load());
  }
}
