package parley.chat.fanout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.chat.ChatSettings;
import parley.chat.room.RoomEntity;
import parley.chat.room.RoomPush;
import parley.chat.user.UserEntity;
import parley.testing.TestNodes;

/**
 * A node's hub and a sharded room against the real Cassandra: when the room starts again (here
 * after passivation; a move by failover or rebalance starts it the same way), the hub follows
 * it again at once, long before its lease renewal, so the new incarnation's pushes reach the
 * node's sessions, ephemeral ones included.
 */
@ExtendWith(LogCapturingExtension.class)
class NodeHubIT {

  private static final Duration WAIT = Duration.ofSeconds(20);

  @Test
  void aRoomThatStartsAgainIsFollowedAgainAtOnceNotAtTheNextRenewal() {
    // The renewal is far beyond the test, so only the room's word that it started can explain
    // the hub following it again; a room idle for a second is passivated.
    Config config = ConfigFactory.parseString(
            """
            parley.chat.hub-renew-interval = 10m
            parley.chat.hub-lease = 20m
            pekko.cluster.sharding.passivation.default-idle-strategy.idle-entity.timeout = 1s
            """)
        .withFallback(TestNodes.config("NodeHubIT"));
    ActorTestKit node = ActorTestKit.create("NodeHubIT", config);
    try {
      TestNodes.joinItself(node);
      ChatSettings settings = ChatSettings.from(config);
      ActorRef<Topic.Command<RoomEntity.Started>> starts = node.spawn(RoomEntity.startsTopic(), "room-starts");
      // A room's outbox tells user entities of membership changes: a node runs both.
      UserEntity.init(node.system());
      RoomEntity.init(node.system(), settings, starts);
      ActorRef<NodeHub.Command> hub = node.spawn(NodeHub.create(settings, starts), "hub");

      String room = "hall-" + System.nanoTime();
      EntityRef<RoomEntity.Command> roomRef = ClusterSharding.get(node.system()).entityRefFor(RoomEntity.ENTITY_KEY, room);
      TestProbe<RoomEntity.WriteReply> replies = node.createTestProbe();
      roomRef.tell(new RoomEntity.Create("alice", RoomEntity.PUBLIC, null, replies.ref()));
      replies.expectMessageClass(RoomEntity.Written.class, WAIT);

      TestProbe<RoomPush> session = node.createTestProbe();
      hub.tell(new NodeHub.Follow(room, session.ref()));
      assertEquals(new RoomPush.Head(room, 1), session.expectMessageClass(RoomPush.Head.class, WAIT), "the hub's first subscription");

      // Idle, the room is passivated; the hub still follows it.
      TestProbe<ShardRegion.CurrentShardRegionState> states = node.createTestProbe();
      states.awaitAssert(WAIT, () -> {
        ClusterSharding.get(node.system()).shardState().tell(new GetShardRegionState(RoomEntity.ENTITY_KEY, states.ref()));
        ShardRegion.CurrentShardRegionState state = states.expectMessageClass(ShardRegion.CurrentShardRegionState.class);
        assertFalse(state.getShards().stream().anyMatch(shard -> shard.getEntityIds().contains(room)), "the room was passivated");
        return null;
      });

      // Anything sent to it starts it again; what comes with the start is lost to the hub, but
      // the hub hears the room started and subscribes again, which brings the room's head.
      TestProbe<RoomEntity.InfoReply> info = node.createTestProbe();
      roomRef.tell(new RoomEntity.GetInfo("alice", info.ref()));
      info.expectMessageClass(RoomEntity.InfoReply.class, WAIT);
      assertEquals(new RoomPush.Head(room, 1), session.expectMessageClass(RoomPush.Head.class, WAIT), "the hub subscribed to the new incarnation");

      RoomPush.Ephemeral offline = new RoomPush.Ephemeral(room, "presence", "alice", 0, "offline", 1L);
      roomRef.tell(new RoomEntity.Relay(offline));
      assertEquals(offline, session.expectMessageClass(RoomPush.Ephemeral.class, WAIT));
    } finally {
      node.shutdownTestKit();
    }
  }
}
