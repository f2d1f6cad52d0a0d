package parley.persistence;

import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityContext;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import parley.serialization.CborSerializable;

/** A minimal sharded, event-sourced entity that proves the journal and snapshot path. */
final class Tally extends EventSourcedBehavior<Tally.Command, Tally.Added, Tally.State> {

  static final EntityTypeKey<Command> KEY = EntityTypeKey.create(Command.class, "Tally");

  sealed interface Command extends CborSerializable {}

  record Add(int amount, ActorRef<Total> replyTo) implements Command {}

  record Get(ActorRef<Total> replyTo) implements Command {}

  record Passivate() implements Command {}

  record Stop() implements Command {}

  /** {@code incarnation} names the actor instance, so a test can tell a recovered one apart. */
  record Total(long total, long seq, String incarnation) implements CborSerializable {}

  record Added(int amount) implements CborSerializable {}

  record State(long total) implements CborSerializable {
    State add(int amount) {
      return new State(total + amount);
    }
  }

  static Behavior<Command> create(EntityContext<Command> entity, boolean snapshots) {
    return Behaviors.setup(
        context ->
            new Tally(
                PersistenceId.of(entity.getEntityTypeKey().name(), entity.getEntityId()),
                context,
                entity.getShard(),
                snapshots));
  }

  private final ActorContext<Command> context;
  private final ActorRef<Command> self;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final boolean snapshots;

  private Tally(
      PersistenceId id,
      ActorContext<Command> context,
      ActorRef<ClusterSharding.ShardCommand> shard,
      boolean snapshots) {
    super(id);
    this.context = context;
    this.self = context.getSelf();
    this.shard = shard;
    this.snapshots = snapshots;
  }

  @Override
  public State emptyState() {
    return new State(0);
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return snapshots
        ? RetentionCriteria.snapshotEvery(5, 1)
        : RetentionCriteria.disabled();
  }

  @Override
  public CommandHandler<Command, Added, State> commandHandler() {
    return newCommandHandlerBuilder()
        .forAnyState()
        .onCommand(
            Add.class,
            (state, add) ->
                Effect()
                    .persist(new Added(add.amount()))
                    .thenReply(add.replyTo(), s -> total(s)))
        .onCommand(Get.class, (state, get) -> Effect().reply(get.replyTo(), total(state)))
        .onCommand(
            Passivate.class,
            (state, p) -> {
              shard.tell(new ClusterSharding.Passivate<>(self));
              return Effect().none();
            })
        .onCommand(Stop.class, (state, stop) -> Effect().stop())
        .build();
  }

  private Total total(State state) {
    return new Total(state.total(), lastSequenceNumber(context), self.toString());
  }

  @Override
  public EventHandler<State, Added> eventHandler() {
    return newEventHandlerBuilder().forAnyState().onEvent(Added.class, (s, e) -> s.add(e.amount())).build();
  }
}
