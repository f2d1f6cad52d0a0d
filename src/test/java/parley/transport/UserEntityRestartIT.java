package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
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

  @Test
  void aConnectionRenewingWithItsUsersNewEntityGetsTheRoomJoinedAndTheJobPushesItMissed() throws Exception {
    // An entity idle for a second is passivated; a session renews every 8 s, so the entity is
    // asleep for most of each renewal period and starts again on whatever reaches it first.
    Config config = ConfigFactory.parseString("""
        pekko.cluster.sharding.passivation.default-idle-strategy.idle-entity.timeout = 1s
        parley.chat.session-renew-interval = 8s
        parley.jobs.worker-key = "%s"
        parley.jobs.queues { restarts { partitions = 1 } }
        """.formatted(WORKER_KEY));
    try (InJvmNode node = InJvmNode.start(TestCassandra.keyspacesFor("UserEntityRestartIT"), 0, 0, config)) {
      String user = "erin-" + System.nanoTime();
      String room = "after-" + System.nanoTime();
      String erin = node.token(user);
      String owner = node.token("owner-" + System.nanoTime());
      HttpResponse<String> created = node.rest("POST", "/v1/rooms", owner, "{\"room\":\"" + room + "\"}", null);
      assertEquals(2, created.statusCode() / 100, created.body());

      try (JdkWebSocket ws = JdkWebSocket.open(node.ws(), erin, "parley.v1")) {
        ws.await("welcome");
        ws.send("{\"type\":\"resume\",\"id\":\"r\"}");
        assertEquals("ok", ws.awaitReply("r").path("type").asText());

        // The connection stays; its user's entity goes to sleep, forgetting the session.
        awaitAsleep(node, user);

        // Told while no incarnation knows the connection: a join over REST, and a job of the
        // user's submitted, leased and reported on.
        HttpResponse<String> joined = node.rest("POST", "/v1/rooms/" + room + "/join", erin, null, null);
        assertEquals(200, joined.statusCode(), joined.body());
        String job = submit(node, erin);
        String lease = lease(node);
        report(node, job, lease);

        // Until the connection's renewal comes, REST reads keep the new incarnation awake (an
        // entity passivated again would forget what it was told, which is the documented limit).
        JsonNode joinEvent = null;
        JsonNode progress = null;
        long deadline = System.nanoTime() + WAIT.toNanos();
        while ((joinEvent == null || progress == null) && System.nanoTime() < deadline) {
          assertEquals(200, node.rest("GET", "/v1/rooms", erin, null, null).statusCode());
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

        // From then on the connection is known again: what comes next reaches it at once.
        HttpResponse<String> sent = node.rest("POST", "/v1/rooms/" + room + "/messages", owner, "{\"body\":\"welcome\"}", "m-1");
        assertEquals(2, sent.statusCode() / 100, sent.body());
        JsonNode message = ws.await("event");
        assertEquals("welcome", message.path("body").asText(), message.toString());
      }
    }
  }

  private static void awaitAsleep(InJvmNode node, String user) {
    TestProbe<ShardRegion.CurrentShardRegionState> states = TestProbe.create(node.system);
    states.awaitAssert(WAIT, () -> {
      ClusterSharding.get(node.system).shardState().tell(new GetShardRegionState(UserEntity.ENTITY_KEY, states.ref()));
      ShardRegion.CurrentShardRegionState state = states.expectMessageClass(ShardRegion.CurrentShardRegionState.class);
      assertFalse(state.getShards().stream().anyMatch(shard -> shard.getEntityIds().contains(user)), "the user's entity was passivated");
      return null;
    });
  }

  private static String submit(InJvmNode node, String token) throws Exception {
    HttpResponse<String> answer = node.rest("POST", "/v1/queues/restarts/jobs", token, "{\"data\":{\"n\":1}}", null);
    assertEquals(202, answer.statusCode(), answer.body());
    return JSON.readTree(answer.body()).path("id").asText();
  }

  private static String lease(InJvmNode node) throws Exception {
    HttpResponse<String> answer = node.rest("POST", "/v1/queues/restarts/lease?max=1&wait=5000", WORKER_KEY, null, null);
    assertEquals(200, answer.statusCode(), answer.body());
    JsonNode jobs = JSON.readTree(answer.body()).path("jobs");
    assertEquals(1, jobs.size(), answer.body());
    return jobs.get(0).path("leaseId").asText();
  }

  private static void report(InJvmNode node, String job, String lease) {
    HttpResponse<String> answer = node.rest("POST", "/v1/jobs/" + job + "/progress", WORKER_KEY, "{\"leaseId\":\"" + lease + "\",\"progress\":{\"pct\":40}}", null);
    assertEquals(200, answer.statusCode(), answer.body());
  }
}
