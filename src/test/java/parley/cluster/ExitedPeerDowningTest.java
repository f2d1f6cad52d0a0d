package parley.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.Test;

class ExitedPeerDowningTest {

  private static Address member(String host, int port) {
    return new Address("pekko", "Parley", host, port);
  }

  @Test
  void aListeningPortIsListeningAndTheSamePortClosedIsRefused() throws Exception {
    int port;
    try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      port = server.getLocalPort();
      assertEquals(ExitedPeerDowning.Probe.LISTENING, ExitedPeerDowning.probe(member("127.0.0.1", port), Duration.ofSeconds(1)));
    }
    assertEquals(ExitedPeerDowning.Probe.REFUSED, ExitedPeerDowning.probe(member("127.0.0.1", port), Duration.ofSeconds(1)));
  }

  @Test
  void anAddressWithoutHostOrPortIsNeverCountedAsRefused() {
    assertEquals(ExitedPeerDowning.Probe.NO_ANSWER, ExitedPeerDowning.probe(new Address("pekko", "Parley"), Duration.ofMillis(100)));
  }

  @Test
  void eachMemberWatchesTheNextOnesInAddressOrderWrappingAround() {
    Address a = member("127.0.0.1", 25520);
    Address b = member("127.0.0.2", 25520);
    Address c = member("127.0.0.3", 25520);
    Address d = member("127.0.0.4", 25520);
    List<Address> all = List.of(c, a, d, b);
    assertEquals(List.of(b, c), ExitedPeerDowning.watchedBy(a, all, 2));
    assertEquals(List.of(a, b), ExitedPeerDowning.watchedBy(d, all, 2));
    assertEquals(List.of(d, a), ExitedPeerDowning.watchedBy(c, all, 2));
    assertEquals(List.of(b), ExitedPeerDowning.watchedBy(a, List.of(a, b), 2), "never itself, never twice");
    assertEquals(List.of(), ExitedPeerDowning.watchedBy(a, List.of(a), 2));
  }
}
