package parley.transport;

import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.junit.jupiter.api.BeforeAll;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * {@link ProtocolContractIT} against the node's WebSocket port on Netty (docs/transports.md, "The
 * WebSocket port"): the same tests, through the other edge. Its startNode hides the
 * parent's, so only this node starts.
 */
class ProtocolContractOnWebSocketPortIT extends ProtocolContractIT {

  @BeforeAll
  static void startNode() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("ProtocolContractOnWebSocketPortIT"), 0, 0, InJvmNode.withWebSocketPort(config()));
    // Were the port not applied, every test would pass against the client port instead.
    assertNotEquals(node.httpPort, node.ws().getPort(), "the suite runs through the WebSocket port");
  }
}
