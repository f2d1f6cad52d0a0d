package parley.cluster;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.ActorRefProvider;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.UniqueAddress;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.apache.pekko.remote.RemoteActorRefProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Option;

/**
 * Downs a member whose process has exited, seconds before missed heartbeats and the
 * split-brain resolver would.
 *
 * <p>Missed heartbeats cannot tell a dead process from a slow or cut-off one, so the resolver
 * must wait out the failure detector's pause and then {@code stable-after} before it downs
 * anyone. A refused TCP connection to a member's remoting port is a different kind of answer:
 * the member's host itself says that nothing listens there, which happens only when the
 * process is gone (killed, crashed, or exited). A frozen or overloaded process still has its
 * listening socket and the kernel still accepts connections for it; a cut-off host answers
 * nothing and the connect times out. Neither is ever downed here; they stay the resolver's.
 *
 * <p>Each node watches the next {@code watched} members after itself in address order, so
 * every member is watched by that many peers whatever the cluster's size, and probes each
 * every {@code interval}. A member refused {@code refusals} times in a row is downed.
 * Downing is idempotent, so two watchers downing the same member do no harm.
 */
public final class ExitedPeerDowning {

  private static final Logger log = LoggerFactory.getLogger(ExitedPeerDowning.class);

  /** {@code parley.cluster.exited-peer-downing}. */
  public record Settings(boolean enabled, Duration interval, Duration connectTimeout, int watched, int refusals) {}

  /** What one probe of a member's remoting port found. */
  enum Probe {
    LISTENING,
    REFUSED,
    NO_ANSWER
  }

  private final ActorSystem<?> system;
  private final Cluster cluster;
  private final Settings settings;
  private final ScheduledExecutorService timer;
  private final Map<Address, Integer> refusedInARow = new HashMap<>();

  private ExitedPeerDowning(ActorSystem<?> system, Settings settings) {
    this.system = system;
    this.cluster = Cluster.get(system);
    this.settings = settings;
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            runnable -> {
              Thread thread = new Thread(runnable, "parley-exited-peer-downing");
              thread.setDaemon(true);
              return thread;
            });
  }

  /** Starts watching, unless disabled; stops with the actor system. */
  public static void start(ActorSystem<?> system, Settings settings) {
    if (!settings.enabled()) {
      return;
    }
    ExitedPeerDowning downing = new ExitedPeerDowning(system, settings);
    long every = settings.interval().toMillis();
    downing.timer.scheduleWithFixedDelay(downing::probeWatched, every, every, TimeUnit.MILLISECONDS);
    system.getWhenTerminated().thenRun(downing.timer::shutdownNow);
  }

  private void probeWatched() {
    try {
      Member self = cluster.selfMember();
      if (self.status() != MemberStatus.up() && self.status() != MemberStatus.weaklyUp()) {
        return; // a node joining or leaving has no say over others
      }
      Map<Address, Member> members = new HashMap<>();
      // Leaving and exiting members close their port on the way out, as planned; down ones
      // are decided already.
      cluster.state().getMembers().forEach(m -> {
        MemberStatus status = m.status();
        if (status == MemberStatus.up() || status == MemberStatus.weaklyUp() || status == MemberStatus.joining()) {
          members.put(m.address(), m);
        }
      });
      List<Address> watched = watchedBy(self.address(), List.copyOf(members.keySet()), settings.watched());
      refusedInARow.keySet().retainAll(watched);
      for (Address address : watched) {
        int refused = probe(address, settings.connectTimeout()) == Probe.REFUSED ? refusedInARow.getOrDefault(address, 0) + 1 : 0;
        refusedInARow.put(address, refused);
        if (refused == settings.refusals()) {
          down(members.get(address).uniqueAddress());
        }
      }
    } catch (RuntimeException e) {
      // A failed round must not end the schedule; the next one tries again.
      log.debug("Probe round failed", e);
    }
  }

  /**
   * Downs the member and quarantines its incarnation. The quarantine is what makes the down
   * take effect at once: the leader removes a down member only once it is unreachable, which
   * the failure detector would say seconds later, while a quarantined incarnation is marked
   * terminated right away. Quarantine is Pekko's internal remoting API (the one the cluster
   * itself uses on removal), hence the cast; a process that exited cannot be harmed by it.
   */
  private void down(UniqueAddress member) {
    log.warn("Member {} refuses connections on its remoting port: its process has exited. Downing it.", member.address());
    cluster.manager().tell(new Down(member.address()));
    ActorRefProvider provider = ((ExtendedActorSystem) Adapter.toClassic(system)).provider();
    if (provider instanceof RemoteActorRefProvider remote) {
      remote.quarantine(member.address(), Option.apply((Object) member.longUid()), "its process has exited");
    }
  }

  /**
   * The {@code count} members after {@code self} in address order, wrapping around: each
   * member is watched by {@code count} others, and the work per node does not grow with the
   * cluster.
   */
  static List<Address> watchedBy(Address self, List<Address> members, int count) {
    List<Address> ring = new ArrayList<>(members);
    ring.remove(self);
    ring.add(self);
    ring.sort(Comparator.comparing(Address::toString));
    int at = ring.indexOf(self);
    List<Address> watched = new ArrayList<>();
    for (int i = 1; i <= Math.min(count, ring.size() - 1); i++) {
      watched.add(ring.get((at + i) % ring.size()));
    }
    return watched;
  }

  /** Opens and at once closes a TCP connection to the member's remoting port. */
  static Probe probe(Address member, Duration timeout) {
    if (member.host().isEmpty() || member.port().isEmpty()) {
      return Probe.NO_ANSWER;
    }
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress(member.host().get(), (Integer) member.port().get()), (int) timeout.toMillis());
      return Probe.LISTENING;
    } catch (ConnectException e) {
      // "Connection refused" is the host's answer; a timeout says nothing about the process.
      return e.getMessage() != null && e.getMessage().contains("refused") ? Probe.REFUSED : Probe.NO_ANSWER;
    } catch (IOException e) {
      return Probe.NO_ANSWER;
    }
  }
}
