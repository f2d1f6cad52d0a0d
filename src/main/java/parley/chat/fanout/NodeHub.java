package parley.chat.fanout;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import parley.chat.ChatSettings;
import parley.chat.room.RoomEntity;
import parley.chat.room.RoomPush;

/**
 * This node's fan-out hub (design rule 7): sessions on this node follow rooms through it, and
 * it alone follows each room, so a room sends one message per node, not one per socket. Its
 * registration with a room is a lease it renews. A room that starts (it moved, or woke) says so
 * on a cluster-wide topic, and the hub registers with it again at once; the renewal finds a room
 * whose word was lost. Either way the room's newest seq it returns lets sessions heal any gap
 * from the journal.
 */
public final class NodeHub extends AbstractBehavior<NodeHub.Command> {

  public sealed interface Command {}

  /** {@code session} receives the room's pushes until it unfollows or stops. */
  public record Follow(String room, ActorRef<RoomPush> session) implements Command {}

  public record Unfollow(String room, ActorRef<RoomPush> session) implements Command {}

  private record FromRoom(RoomPush push) implements Command {}

  private record Renewed(RoomEntity.Subscribed subscribed) implements Command {}

  private record RoomStarted(RoomEntity.Started started) implements Command {}

  private record Renew() implements Command {}

  private record SessionStopped(ActorRef<RoomPush> session) implements Command {}

  /** {@code roomStarts}: this node's end of {@link RoomEntity#startsTopic()}. */
  public static Behavior<Command> create(ChatSettings settings, ActorRef<Topic.Command<RoomEntity.Started>> roomStarts) {
    return Behaviors.setup(
        context ->
            Behaviors.withTimers(
                timers -> {
                  timers.startTimerWithFixedDelay(new Renew(), settings.hubRenewInterval());
                  roomStarts.tell(Topic.subscribe(context.messageAdapter(RoomEntity.Started.class, RoomStarted::new)));
                  return new NodeHub(context, timers);
                }));
  }

  private final ClusterSharding sharding;
  private final ActorRef<RoomPush> pushes;
  private final ActorRef<RoomEntity.Subscribed> renewals;
  private final Map<String, Set<ActorRef<RoomPush>>> followers = new HashMap<>();
  private final Map<ActorRef<RoomPush>, Set<String>> followed = new HashMap<>();

  private NodeHub(ActorContext<Command> context, TimerScheduler<Command> timers) {
    super(context);
    this.sharding = ClusterSharding.get(context.getSystem());
    this.pushes = context.messageAdapter(RoomPush.class, FromRoom::new);
    this.renewals = context.messageAdapter(RoomEntity.Subscribed.class, Renewed::new);
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Follow.class, this::onFollow)
        .onMessage(Unfollow.class, u -> {
          unfollow(u.room(), u.session());
          return this;
        })
        .onMessage(FromRoom.class, this::onPush)
        .onMessage(Renewed.class, r -> {
          deliver(r.subscribed().room(), new RoomPush.Head(r.subscribed().room(), r.subscribed().lastSeq()));
          return this;
        })
        .onMessage(RoomStarted.class, r -> {
          if (followers.containsKey(r.started().room())) {
            subscribe(r.started().room());
          }
          return this;
        })
        .onMessage(Renew.class, r -> {
          followers.keySet().forEach(this::subscribe);
          return this;
        })
        .onMessage(SessionStopped.class, this::onSessionStopped)
        .build();
  }

  private Behavior<Command> onFollow(Follow follow) {
    Set<ActorRef<RoomPush>> sessions = followers.computeIfAbsent(follow.room(), r -> new HashSet<>());
    boolean firstForRoom = sessions.isEmpty();
    sessions.add(follow.session());
    if (!followed.containsKey(follow.session())) {
      getContext().watchWith(follow.session(), new SessionStopped(follow.session()));
    }
    followed.computeIfAbsent(follow.session(), s -> new HashSet<>()).add(follow.room());
    if (firstForRoom) {
      subscribe(follow.room());
    }
    return this;
  }

  private Behavior<Command> onPush(FromRoom message) {
    deliver(message.push().room(), message.push());
    return this;
  }

  private void deliver(String room, RoomPush push) {
    Set<ActorRef<RoomPush>> sessions = followers.get(room);
    if (sessions != null) {
      sessions.forEach(session -> session.tell(push));
    }
  }

  private Behavior<Command> onSessionStopped(SessionStopped stopped) {
    Set<String> rooms = followed.remove(stopped.session());
    if (rooms != null) {
      rooms.forEach(room -> removeFollower(room, stopped.session()));
    }
    return this;
  }

  private void unfollow(String room, ActorRef<RoomPush> session) {
    Set<String> rooms = followed.get(session);
    if (rooms != null) {
      rooms.remove(room);
    }
    removeFollower(room, session);
  }

  /** A room nobody here follows any more is not renewed; its lease runs out in the room. */
  private void removeFollower(String room, ActorRef<RoomPush> session) {
    Set<ActorRef<RoomPush>> sessions = followers.get(room);
    if (sessions != null && sessions.remove(session) && sessions.isEmpty()) {
      followers.remove(room);
    }
  }

  private void subscribe(String room) {
    sharding
        .entityRefFor(RoomEntity.ENTITY_KEY, room)
        .tell(new RoomEntity.Subscribe(pushes, renewals));
  }
}
