package parley.chat.room;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import com.typesafe.config.Config;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.LogCapturingExtension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import parley.chat.ChatSettings;
import parley.chat.user.UserEntity;
import parley.testing.TestNodes;

/**
 * Rooms and users sharded on a real node against the real Cassandra: a membership change the
 * room wrote just before its node died, before its outbox heard of it, still reaches the user
 * entity, read back from the room's journal in Cassandra by the room's next incarnation.
 */
@ExtendWith(LogCapturingExtension.class)
class MembershipOutboxIT {

  private static final Duration WAIT = Duration.ofSeconds(20);

  @Test
  void aJoinWrittenJustBeforeACrashReachesTheUsersRoomListAndSoDoesALaterRemoval() throws Exception {
    Config config = TestNodes.config("MembershipOutboxIT");
    ActorTestKit node = ActorTestKit.create("MembershipOutboxIT", config);
    try {
      TestNodes.joinItself(node);
      ChatSettings settings = ChatSettings.from(config);
      UserEntity.init(node.system());
      RoomEntity.init(node.system(), settings, node.system().ignoreRef());

      // The room's journal actor alone, its outbox a probe that drops everything: the node
      // "dies" after the room's write and before any user entity could be told.
      TestProbe<RoomEntity.Command> front = node.createTestProbe();
      TestProbe<MembershipOutbox.Command> lostOutbox = node.createTestProbe();
      ActorRef<RoomEntity.Command> alone =
          node.spawn(RoomEntity.journal("hall", settings, front.ref(), lostOutbox.ref(), node.system().ignoreRef(), Clock.systemUTC()));
      TestProbe<RoomEntity.WriteReply> replies = node.createTestProbe();
      alone.tell(new RoomEntity.WriteBatch(List.of(
          new RoomEntity.Create("alice", RoomEntity.PRIVATE, null, replies.ref()),
          new RoomEntity.Invite("alice", "bob", replies.ref()),
          new RoomEntity.Join("bob", replies.ref()))));
      for (RoomEntity.WriteReply reply : replies.receiveSeveralMessages(3, WAIT)) {
        assertInstanceOf(RoomEntity.Written.class, reply);
      }
      node.stop(alone, WAIT);

      // The sharded room starts on the same journal: its outbox finds itself behind.
      EntityRef<RoomEntity.Command> hall = ClusterSharding.get(node.system()).entityRefFor(RoomEntity.ENTITY_KEY, "hall");
      assertInstanceOf(RoomEntity.Info.class, ask(hall, (ActorRef<RoomEntity.InfoReply> to) -> new RoomEntity.GetInfo("alice", to)));
      awaitRooms(node, "alice", Map.of("hall", 1L));
      awaitRooms(node, "bob", Map.of("hall", 3L));

      // Straight to the room, as no handler would: the room alone tells bob he is out.
      assertInstanceOf(RoomEntity.Written.class,
          ask(hall, (ActorRef<RoomEntity.WriteReply> to) -> new RoomEntity.RemoveMember("alice", "bob", to)));
      awaitRooms(node, "bob", Map.of());
      awaitRooms(node, "alice", Map.of("hall", 1L));
    } finally {
      node.shutdownTestKit();
    }
  }

  /** Waits until {@code user}'s room list is {@code rooms} (room to the seq of the join). */
  private static void awaitRooms(ActorTestKit node, String user, Map<String, Long> rooms) {
    EntityRef<UserEntity.Command> entity = ClusterSharding.get(node.system()).entityRefFor(UserEntity.ENTITY_KEY, user);
    node.createTestProbe().awaitAssert(WAIT, Duration.ofMillis(200), () -> {
      UserEntity.Rooms listed = ask(entity, UserEntity.GetRooms::new);
      assertEquals(rooms, listed.rooms().stream().collect(Collectors.toMap(UserEntity.RoomMarker::room, UserEntity.RoomMarker::joinedSeq)), user);
      return null;
    });
  }

  private static <Q, R> R ask(EntityRef<Q> ref, Function<ActorRef<R>, Q> command) {
    try {
      return ref.ask(command::apply, Duration.ofSeconds(10)).toCompletableFuture().get(15, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }
}
