package parley.chat.room;

import java.util.function.Function;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.persistence.testkit.query.javadsl.PersistenceTestKitReadJournal;
import parley.chat.user.UserEntity;

/** A room's links for tests on the in-memory journal: no sharding, users stood in for. */
final class InMemoryLinks {

  private InMemoryLinks() {}

  static MembershipOutbox.Links of(ActorSystem<?> system, Function<String, RecipientRef<UserEntity.Command>> users) {
    return new MembershipOutbox.Links(
        users,
        () -> {},
        PersistenceQuery.get(system)
            .getReadJournalFor(PersistenceTestKitReadJournal.class, PersistenceTestKitReadJournal.Identifier()));
  }

  /** Users who take every change at once. */
  static MembershipOutbox.Links acking(ActorTestKit testKit) {
    ActorRef<UserEntity.Command> users = testKit.spawn(Behaviors.receiveMessage(command -> {
      if (command instanceof UserEntity.RoomJoined joined) {
        joined.replyTo().tell(new UserEntity.Ack(joined.room()));
      } else if (command instanceof UserEntity.RoomLeft left) {
        left.replyTo().tell(new UserEntity.Ack(left.room()));
      }
      return Behaviors.same();
    }));
    return of(testKit.system(), user -> users);
  }
}
