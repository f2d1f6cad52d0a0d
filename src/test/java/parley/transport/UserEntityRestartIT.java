package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.chat.user.UserEntity;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * A WebSocket that stays open while its user's entity stops and starts again (here by
 * passivation; a failover or a rebalance starts it the same way, knowing no sessions), over
 * the wire against the real Cassandra. What the new incarnation was told before the
 * connection's next renewal reached it (a room joined over REST, a job's transitions) comes
 * to the connection with that renewal (docs/protocol.md, "Presence now"; docs/jobs.md, Push).
 */
@ExtendWith(LogCapturingExtension.class)
class UserEntityRestartIT {

  private static final String WORKER_KEY = "test-worker-key-restart";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration WAIT = Duration.ofSeconds(30);
  /** How often a session renews with its user's entity: long enough for a test's steps to fit. */
  private static final Duration RENEWAL = Duration.ofSeconds(20);

  private static InJvmNode node;

  @BeforeAll
  static void start() throws Exception {
    // An entity idle for a second is passivated; a session renews every 20 s, so a user's
    // entity is asleep for most of each renewal period and starts again on whatever reaches it
    // first, knowing none of the user's connections.
    node = InJvmNode.start(TestCassandra.keyspacesFor("UserEntityRestartIT"), 0, 0, ConfigFactory.parseString("""
        pekko.cluster.sharding.passivation.default-idle-strategy.idle-entity.timeout = 1s
        parley.chat.session-renew-interval = %ds
        parley.jobs.worker-key = "%s"
        parley.jobs.queues { restarts { partitions = 1 } }
        """.formatted(RENEWAL.toSeconds(), WORKER_KEY)));
  }

  @AfterAll
  static void stop() throws Exception {
    node.close();
  }

  @Test
  void aConnectionRenewingWithItsUsersNewEntityGetsTheRoomJoinedAndTheJobPushesItMissed() throws Exception {
    String user = "erin-" + System.nanoTime();
    String room = "after-" + System.nanoTime();
    String erin = node.token(user);
    String owner = node.token("owner-" + System.nanoTime());
    createRoom(owner, room);

    long openedAt = System.nanoTime();
    try (JdkWebSocket ws = JdkWebSocket.open(node.ws(), erin, "parley.v1");
        Reads reads = new Reads()) {
      ws.await("welcome");
      ws.send("{\"type\":\"resume\",\"id\":\"r\"}");
      assertEquals("ok", ws.awaitReply("r").path("type").asText());

      // The connection stays; its user's entity goes to sleep, forgetting the session.
      awaitAsleep(user);

      // From now until the connection's renewal, REST reads keep the user's next incarnation
      // awake (one passivated again would forget what it was told: the documented limit).
      reads.every300ms(() -> node.rest("GET", "/v1/rooms", erin, null, null));

      // Told while no incarnation knows the connection: a join over REST, and a job of the
      // user's submitted, leased and reported on.
      join(erin, room);
      String job = submit(erin);
      String lease = lease();
      report(job, lease);
      assertBeforeRenewal(openedAt, "the join and the job's progress");

      JsonNode joinEvent = null;
      JsonNode progress = null;
      long deadline = System.nanoTime() + WAIT.toNanos();
      while ((joinEvent == null || progress == null) && System.nanoTime() < deadline) {
        JsonNode frame;
        while ((frame = ws.frames.poll(300, TimeUnit.MILLISECONDS)) != null) {
          if ("event".equals(frame.path("type").asText()) && room.equals(frame.path("room").asText())
              && "joined".equals(frame.path("kind").asText()) && user.equals(frame.path("user").asText())) {
            joinEvent = frame;
          } else if ("job".equals(frame.path("type").asText()) && job.equals(frame.path("job").path("id").asText())
              && "active".equals(frame.path("job").path("state").asText())
              && frame.path("job").path("progress").path("pct").asInt() == 40) {
            progress = frame;
          }
        }
      }
      assertTrue(joinEvent != null, "the connection followed the room joined while its entity did not know it");
      assertTrue(progress != null, "the connection was sent the job's newest push from while its entity did not know it");

      // The room is followed from then on: its next message reaches the connection.
      HttpResponse<String> sent = node.rest("POST", "/v1/rooms/" + room + "/messages", owner, "{\"body\":\"welcome\"}", "m-1");
      assertEquals(2, sent.statusCode() / 100, sent.body());
      JsonNode message = ws.await("event");
      assertEquals("welcome", message.path("body").asText(), message.toString());
    }
  }

  @Test
  void aConnectionClosingWhileItsUsersEntitySleepsIsSeenOfflineInItsRooms() throws Exception {
    String leaver = "fay-" + System.nanoTime();
    String room = "farewell-" + System.nanoTime();
    String fay = node.token(leaver);
    String gus = node.token("gus-" + System.nanoTime());
    createRoom(gus, room);
    join(fay, room);

    // Reads keep the room awake, so only the leaver's entity sleeps. (Passivated after 1 s, a
    // followed room would sleep between its hub's renewals, which it never does at the default
    // 2 min, and a notice that itself starts a room is not pushed, as NodeHubIT shows.)
    try (JdkWebSocket watcher = JdkWebSocket.open(node.ws(), gus, "parley.v1");
        Reads reads = new Reads()) {
      reads.every300ms(() -> node.rest("GET", "/v1/rooms/" + room + "/messages", gus, null, null));
      watcher.await("welcome");
      watcher.send("{\"type\":\"resume\",\"id\":\"r\"}");
      watcher.awaitReply("r");

      long openedAt = System.nanoTime();
      try (JdkWebSocket leaving = JdkWebSocket.open(node.ws(), fay, "parley.v1")) {
        leaving.await("welcome");
        awaitPresence(watcher, leaver, "online");
        awaitAsleep(leaver);

        // The session ends before it renews: its user's new entity never knew it, and must
        // still tell the room the user went offline (nothing else ever would).
        leaving.close();
        assertBeforeRenewal(openedAt, "the close");
      }
      awaitPresence(watcher, leaver, "offline");
    }
  }

  /**
   * Fails unless {@code what} happened before the connection opened at {@code openedAt} first
   * renewed: after that its user's entity would know it, and the test would not test the path.
   */
  private static void assertBeforeRenewal(long openedAt, String what) {
    Duration took = Duration.ofNanos(System.nanoTime() - openedAt);
    assertTrue(took.compareTo(RENEWAL) < 0, what + " came " + took + " after the connection opened, past its renewal");
  }

  /** REST reads repeated in the background until closed; a failed read does not stop them. */
  private static final class Reads implements AutoCloseable {
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();

    void every300ms(Runnable read) {
      timer.scheduleWithFixedDelay(() -> {
        try {
          read.run();
        } catch (RuntimeException e) {
          // The next read tries again; the test's own assertions decide.
        }
      }, 0, 300, TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
      timer.shutdownNow();
    }
  }

  private static void awaitPresence(JdkWebSocket ws, String user, String status) throws Exception {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (System.nanoTime() < deadline) {
      JsonNode frame = ws.frames.poll(100, TimeUnit.MILLISECONDS);
      if (frame != null && "presence".equals(frame.path("type").asText())
          && user.equals(frame.path("user").asText()) && status.equals(frame.path("status").asText())) {
        return;
      }
    }
    throw new AssertionError("no presence " + status + " of " + user + " within " + WAIT);
  }

  private static void createRoom(String token, String room) {
    HttpResponse<String> created = node.rest("POST", "/v1/rooms", token, "{\"room\":\"" + room + "\"}", null);
    assertEquals(2, created.statusCode() / 100, created.body());
  }

  private static void join(String token, String room) {
    HttpResponse<String> joined = node.rest("POST", "/v1/rooms/" + room + "/join", token, null, null);
    assertEquals(200, joined.statusCode(), joined.body());
  }

  private static void awaitAsleep(String user) {
    TestProbe<ShardRegion.CurrentShardRegionState> states = TestProbe.create(node.system);
    states.awaitAssert(WAIT, () -> {
      ClusterSharding.get(node.system).shardState().tell(new GetShardRegionState(UserEntity.ENTITY_KEY, states.ref()));
      ShardRegion.CurrentShardRegionState state = states.expectMessageClass(ShardRegion.CurrentShardRegionState.class);
      assertFalse(state.getShards().stream().anyMatch(shard -> shard.getEntityIds().contains(user)), "the user's entity was passivated");
      return null;
    });
  }

  private static String submit(String token) throws Exception {
    HttpResponse<String> answer = node.rest("POST", "/v1/queues/restarts/jobs", token, "{\"data\":{\"n\":1}}", null);
    assertEquals(202, answer.statusCode(), answer.body());
    return JSON.readTree(answer.body()).path("id").asText();
  }

  private static String lease() throws Exception {
    HttpResponse<String> answer = node.rest("POST", "/v1/queues/restarts/lease?max=1&wait=5000", WORKER_KEY, null, null);
    assertEquals(200, answer.statusCode(), answer.body());
    JsonNode jobs = JSON.readTree(answer.body()).path("jobs");
    assertEquals(1, jobs.size(), answer.body());
    return jobs.get(0).path("leaseId").asText();
  }

  private static void report(String job, String lease) {
    HttpResponse<String> answer = node.rest("POST", "/v1/jobs/" + job + "/progress", WORKER_KEY, "{\"leaseId\":\"" + lease + "\",\"progress\":{\"pct\":40}}", null);
    assertEquals(200, answer.statusCode(), answer.body());
  }
}
