package parley.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import parley.client.ParleyClient;
import parley.protocol.Codec;

/**
 * Scenario: the node hosting a user's entity is killed with -9, and the user reconnects to a
 * survivor and resumes. Their room on a healthy node must not be held hostage by the dead
 * user entity: its events arrive at once, the resume answers ({@code pending} while the
 * user's room list cannot be read), and {@code resume_complete} follows once the user's
 * entity is back.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ResumeDuringFailoverIT {

  @Test
  void aHealthyRoomReachesAReconnectingClientWhileItsUserEntityFailsOver() throws Exception {
    TestCluster cluster = TestCluster.shared();
    cluster.ensureHealthy(3);
    ClusterNode survivor = cluster.running().get(0);
    // A user whose entity another node hosts (the victim), and a room the victim does not host.
    String user = Shards.firstNamed("resume-hostage-user-", "user", survivor, survivor.address(), false);

    try (ParleyClient member = connect(survivor, user);
        ParleyClient writer = connect(survivor, "resume-hostage-writer")) {
      member.resume(null).get(20, TimeUnit.SECONDS);
      writer.resume(null).get(20, TimeUnit.SECONDS);
      ClusterNode victim = cluster.byAddress(TestCluster.hostOf(survivor, "user", user).orElseThrow());
      assertTrue(victim != survivor, "the user's entity lives on another node than its connection");
      String room = Shards.firstNamed("resume-hostage-room-", "room", survivor, victim.address(), false);
      member.createRoom(room, "public", null).get(20, TimeUnit.SECONDS);
      writer.join(room).get(20, TimeUnit.SECONDS);
      assertTrue(!TestCluster.hostOf(survivor, "room", room).orElseThrow().equals(victim.address()), "the room lives off the victim");
      long seen = writer.send(room, "before", "before the kill").get(20, TimeUnit.SECONDS).seq();
      member.awaitPush(p -> room.equals(p.path("room").asText()) && p.path("seq").asLong() == seen, Duration.ofSeconds(20));

      victim.signal("KILL");
      victim.awaitExit(Duration.ofSeconds(10));

      try (ParleyClient again = connect(survivor, user)) {
        ObjectNode resume = Codec.JSON.createObjectNode().put("type", "resume");
        resume.putObject("rooms").put(room, seen);
        long resumedAt = System.nanoTime();
        CompletableFuture<JsonNode> answer = again.request(resume, Duration.ofSeconds(30));
        long sent = writer.send(room, "during", "while the user's entity fails over").get(30, TimeUnit.SECONDS).seq();
        again.awaitPush(p -> room.equals(p.path("room").asText()) && p.path("seq").asLong() == sent, Duration.ofSeconds(5));
        Duration delivered = Measured.since(resumedAt);
        Measured.print("resume-failover", "healthy room's new event delivered after resume was sent", delivered);
        assertTrue(delivered.compareTo(Duration.ofSeconds(5)) < 0, "the healthy room is not held back: " + delivered);

        JsonNode resumed = answer.get(30, TimeUnit.SECONDS);
        Measured.print("resume-failover", "resume answered after", Measured.since(resumedAt) + " (pending: " + resumed.path("pending").asBoolean() + ")");
        assertEquals(seen, resumed.path("rooms").path(room).asLong(), resumed.toString());
        if (resumed.path("pending").asBoolean()) {
          JsonNode complete = again.awaitPush(p -> "resume_complete".equals(p.path("type").asText()), Duration.ofSeconds(90));
          Measured.print("resume-failover", "resume_complete after", Measured.since(resumedAt));
          assertTrue(complete.path("rooms").has(room), complete.toString());
        }
      }
    }
    cluster.ensureHealthy(3);
  }

  private static ParleyClient connect(ClusterNode node, String user) throws Exception {
    return ParleyClient.connect(node.ws(), ParleyClient.devToken(node.http(), user)).get(20, TimeUnit.SECONDS);
  }
}
