package parley.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;

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

  /** Makes the test kit's node a cluster of one and waits until it is up: sharding starts entities only then. */
  public static void joinItself(ActorTestKit node) {
    Cluster cluster = Cluster.get(node.system());
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    node.createTestProbe().awaitAssert(Duration.ofSeconds(20), () -> {
      assertEquals(MemberStatus.up(), cluster.selfMember().status());
      return null;
    });
  }
}
