package parley.jobs.queue;

import com.fasterxml.jackson.annotation.JsonIgnore;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.DoubleSupplier;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.Effect;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;
import org.pcollections.HashTreePMap;
import org.pcollections.PMap;
import org.pcollections.TreePSet;
import parley.cluster.ConsistentHashingShardAllocationStrategy;
import parley.jobs.Job;
import parley.jobs.JobSettings;
import parley.jobs.JobView;
import parley.chat.user.UserEntity;
import org.apache.pekko.actor.typed.RecipientRef;
import parley.limits.TokenBucket;
import parley.persistence.GroupCommit;
import parley.serialization.CborSerializable;

/**
 * One partition of a job queue ({@code jobs|<queue>:<p>} in the journal): the single writer of
 * its jobs, so that whatever races for a job (workers fetching, a worker completing while the
 * user cancels, a lease expiring while its worker reports) is decided here, one command at a
 * time, and every transition is journaled before anyone hears of it.
 *
 * <p>Waiting jobs are leased highest priority first, then in order of submission, once their
 * {@code runAt} has come; at most the partition's share of the queue's concurrency are leased
 * at once, and at most its share of the queue's rate are started per second. A lease ends with
 * the worker's report (completed, or failed: retried after the job's backoff, or failed for
 * good when no attempt is left), with a cancel, or at its deadline, which spends the attempt.
 * A report naming a lease that is no longer the job's is refused ({@link #LEASE_LOST}), so each
 * attempt has exactly one recorded outcome.
 *
 * <p>Fetches that found nothing register as watchers (ephemeral, not journaled) and are told
 * {@link Available} once a job can be leased; a client following one job's status registers
 * likewise and is answered at its next change. Both are lost when the entity stops, and their
 * askers simply ask again.
 *
 * <p>Time: lease deadlines and delayed jobs need the entity awake at the right moment, so it
 * keeps one timer for the earliest of them, and sharding never passivates it (a leased job's
 * deadline must pass even if nobody writes to its queue); {@link QueueKeeper} starts every
 * partition after a node fails, so deadlines pass on the partition's new node too.
 */
public final class QueuePartition extends EventSourcedBehavior<QueuePartition.Command, QueuePartition.Event, QueuePartition.State> {

  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "jobs");

  /** Refusal codes (the wire's; see docs/jobs.md). */
  public static final String JOB_NOT_FOUND = "job_not_found";
  public static final String LEASE_LOST = "lease_lost";
  public static final String JOB_FINISHED = "job_finished";
  public static final String JOB_KEY_TAKEN = "job_key_taken";
  public static final String IDEMPOTENCY_CONFLICT = "idempotency_conflict";
  public static final String VERSION_MISMATCH = "version_mismatch";
  public static final String UNAVAILABLE = "unavailable";

  /** The error a job's attempt records when its lease ran out, or its timeout did. */
  public static final String LEASE_EXPIRED = "lease_expired";
  public static final String TIMED_OUT = "timeout";

  public static String entityId(String queue, int partition) {
    return queue + ":" + partition;
  }

  /** How a partition reaches a job's submitter: the user entity, or a test's stand-in. */
  @FunctionalInterface
  public interface Users {
    RecipientRef<UserEntity.Command> user(String userId);
  }

  public static void init(ActorSystem<?> system, JobSettings settings) {
    ClusterSharding sharding = ClusterSharding.get(system);
    Users users = userId -> sharding.entityRefFor(UserEntity.ENTITY_KEY, userId);
    sharding.init(
        Entity.of(ENTITY_KEY, entity -> create(entity.getEntityId(), settings, users))
            .withStopMessage(new Stop())
            // A partition keeps lease deadlines; it must stay up while nothing is written to it.
            .withSettings(ClusterShardingSettings.create(system).withNoPassivationStrategy())
            .withAllocationStrategy(ConsistentHashingShardAllocationStrategy.configured(system)));
  }

  /**
   * The partition: the group-commit front over its journal actor, so that the submissions,
   * leases and reports that arrive while one write is in flight share the next one.
   */
  public static Behavior<Command> create(String entityId, JobSettings settings, Users users) {
    return Behaviors.setup(context -> {
      ActorRef<Command> journal =
          context.spawn(journal(entityId, settings, users, context.getSelf(), Clock.systemUTC(), Math::random), "journal");
      context.watch(journal);
      return GroupCommit.front(journal, new GroupCommit.Spec<>(
          Command.class, Write.class, BatchDone.class, Stop.class, WriteBatch::new, write -> 1,
          write -> write.replyTo().tell(new Refused(UNAVAILABLE, "the partition could not write to storage; send the same request again", null)),
          settings.maxBatch(), Integer.MAX_VALUE));
    });
  }

  /**
   * The event-sourced part alone, on {@code clock} and {@code random}; {@code front} hears
   * {@link BatchDone} after each batch (tests talk to it directly, a batch at a time).
   */
  static Behavior<Command> journal(
      String entityId, JobSettings settings, Users users, ActorRef<Command> front, Clock clock, DoubleSupplier random) {
    return Behaviors.withTimers(timers -> Behaviors.setup(
        context -> new QueuePartition(entityId, settings, users, front, clock, random, timers, context)));
  }

  // ---------------------------------------------------------------------------------------
  // Commands and answers

  public sealed interface Command extends CborSerializable {}

  /** A command that changes the partition's jobs; the front batches these. */
  public sealed interface Write extends Command {
    ActorRef<Answer> replyTo();
  }

  /** Adds {@code job}, built and checked at the edge; its {@code seq} is set here. */
  public record Submit(Job job, ActorRef<Answer> replyTo) implements Write {}

  /** The job, for {@code requester} (null: a backend, which sees every job). */
  public record Get(String jobId, String requester, ActorRef<Answer> replyTo) implements Command {}

  /** Answered with the job once its version is past {@code afterVersion} (at once if it is). */
  public record Follow(String jobId, String requester, long afterVersion, long untilMillis, ActorRef<Answer> replyTo)
      implements Command {}

  /** Leases up to {@code max} jobs to {@code worker} for {@code leaseMs} each; maybe none. */
  public record Lease(String worker, int max, long leaseMs, ActorRef<Answer> replyTo) implements Write {}

  /** Answered {@link Available} once a job can be leased (at once if one can), or never. */
  public record Watch(long untilMillis, ActorRef<Answer> replyTo) implements Command {}

  public record Extend(String jobId, String leaseId, long leaseMs, ActorRef<Answer> replyTo) implements Write {}

  public record Progress(String jobId, String leaseId, String progress, ActorRef<Answer> replyTo) implements Write {}

  public record Complete(String jobId, String leaseId, String result, ActorRef<Answer> replyTo) implements Write {}

  /** The attempt failed with {@code error}; retried by the job's backoff unless none is left. */
  public record Fail(String jobId, String leaseId, String error, ActorRef<Answer> replyTo) implements Write {}

  /** Cancels a job that has not finished; {@code ifVersion} (or -1) must be its version. */
  public record Cancel(String jobId, String requester, long ifVersion, ActorRef<Answer> replyTo) implements Write {}

  /** Pauses (nothing is leased) or resumes the partition. */
  public record SetPaused(boolean paused, ActorRef<Answer> replyTo) implements Write {}

  public record GetCounts(ActorRef<Answer> replyTo) implements Command {}

  /** Deadlines may have passed; also the keeper's nudge that starts the partition. */
  public record Wake() implements Command {}

  record Stop() implements Command {}

  /** Front to journal: the writes gathered while the previous batch was in flight. */
  record WriteBatch(List<Write> writes) implements Command {}

  /** Journal to front: the batch is written (or refused) and its senders answered. */
  record BatchDone() implements Command {}

  public sealed interface Answer extends CborSerializable {}

  /** The job after the command; {@code repeated} when a submission was an exact repeat. */
  public record Done(Job job, boolean repeated) implements Answer {}

  public record Leased(List<Job> jobs) implements Answer {}

  public record Refused(String code, String message, String jobId) implements Answer {}

  public record Counts(int waiting, int delayed, int active, int completed, int failed, boolean paused) implements Answer {}

  public record Available() implements Answer {}

  // ---------------------------------------------------------------------------------------
  // Events

  public sealed interface Event extends CborSerializable {}

  /** An event about one job already in the partition. */
  public sealed interface JobEvent extends Event {
    String jobId();
  }

  public record Submitted(Job job) implements Event {}

  public record Grant(String jobId, String leaseId, long deadline) implements CborSerializable {}

  public record LeasedTo(String worker, List<Grant> grants, long at) implements Event {}

  public record Extended(String jobId, long deadline) implements JobEvent {}

  public record Progressed(String jobId, String progress) implements JobEvent {}

  public record Completed(String jobId, String result, long at) implements JobEvent {}

  /** An attempt ended without a result: waiting again from {@code retryAt}, or failed for good (-1). */
  public record AttemptFailed(String jobId, String error, long at, long retryAt) implements JobEvent {}

  public record Cancelled(String jobId, long at) implements JobEvent {}

  public record PausedSet(boolean paused) implements Event {}

  // ---------------------------------------------------------------------------------------
  // State

  /** A job's place in one of the state's orderings: by {@code rank}, then submission. */
  public record Slot(long rank, long seq, String id) implements Comparable<Slot> {
    @Override
    public int compareTo(Slot o) {
      int c = Long.compare(rank, o.rank);
      if (c == 0) {
        c = Long.compare(seq, o.seq);
      }
      return c != 0 ? c : id.compareTo(o.id);
    }
  }

  /**
   * The partition's jobs (live, and the finished ones retained) and, derived from them and
   * never stored, the orderings the commands need: waiting jobs by priority and by run time,
   * leases by deadline, finished jobs by age, live jobs by key. All persistent collections, so
   * a transition costs O(log n) and the state stays immutable for snapshots.
   */
  public record State(
      Map<String, Job> jobs,
      boolean paused,
      long nextSeq,
      @JsonIgnore TreePSet<Slot> waiting,
      @JsonIgnore TreePSet<Slot> scheduled,
      @JsonIgnore TreePSet<Slot> leases,
      @JsonIgnore TreePSet<Slot> completed,
      @JsonIgnore TreePSet<Slot> failed,
      @JsonIgnore PMap<String, String> keys)
      implements CborSerializable {

    public State {
      if (!(jobs instanceof PMap<String, Job>) || waiting == null) {
        State derived = empty(paused, nextSeq);
        for (Job job : jobs.values()) {
          derived = derived.put(null, job);
        }
        jobs = derived.jobs;
        waiting = derived.waiting;
        scheduled = derived.scheduled;
        leases = derived.leases;
        completed = derived.completed;
        failed = derived.failed;
        keys = derived.keys;
      }
    }

    private static State empty(boolean paused, long nextSeq) {
      TreePSet<Slot> none = TreePSet.empty();
      return new State(HashTreePMap.empty(), paused, nextSeq, none, none, none, none, none, HashTreePMap.empty());
    }

    static State empty() {
      return empty(false, 1);
    }

    public Job job(String id) {
      return jobs.get(id);
    }

    /** Replaces {@code before} (null: new) by {@code after} (null: removed) in every ordering. */
    State put(Job before, Job after) {
      PMap<String, Job> j = (PMap<String, Job>) jobs;
      TreePSet<Slot> w = waiting, s = scheduled, l = leases, c = completed, f = failed;
      PMap<String, String> k = keys;
      if (before != null) {
        j = j.minus(before.id());
        w = w.minus(new Slot(-before.priority(), before.seq(), before.id()));
        s = s.minus(new Slot(before.runAt(), before.seq(), before.id()));
        if (before.lease() != null) {
          l = l.minus(new Slot(before.lease().deadline(), before.seq(), before.id()));
        }
        c = c.minus(new Slot(before.finishedAt(), before.seq(), before.id()));
        f = f.minus(new Slot(before.finishedAt(), before.seq(), before.id()));
        if (before.key() != null) {
          k = k.minus(before.key());
        }
      }
      if (after != null) {
        j = j.plus(after.id(), after);
        switch (after.status()) {
          case WAITING -> {
            w = w.plus(new Slot(-after.priority(), after.seq(), after.id()));
            s = s.plus(new Slot(after.runAt(), after.seq(), after.id()));
          }
          case ACTIVE -> l = l.plus(new Slot(after.lease().deadline(), after.seq(), after.id()));
          case COMPLETED -> c = c.plus(new Slot(after.finishedAt(), after.seq(), after.id()));
          case FAILED, CANCELLED -> f = f.plus(new Slot(after.finishedAt(), after.seq(), after.id()));
        }
        if (after.key() != null && after.live()) {
          k = k.plus(after.key(), after.id());
        }
      }
      return new State(j, paused, nextSeq, w, s, l, c, f, k);
    }

    /** Removes the oldest finished jobs past what the queue keeps. */
    State trimmed(int keepCompleted, int keepFailed) {
      State state = this;
      while (state.completed.size() > keepCompleted) {
        state = state.put(state.job(state.completed.first().id()), null);
      }
      while (state.failed.size() > keepFailed) {
        state = state.put(state.job(state.failed.first().id()), null);
      }
      return state;
    }

    /** Removes the finished jobs that finished more than {@code keep...Ms} before {@code now} (0: none). */
    State aged(long now, long keepCompletedMs, long keepFailedMs) {
      State state = this;
      while (keepCompletedMs > 0 && !state.completed.isEmpty() && state.completed.first().rank() < now - keepCompletedMs) {
        state = state.put(state.job(state.completed.first().id()), null);
      }
      while (keepFailedMs > 0 && !state.failed.isEmpty() && state.failed.first().rank() < now - keepFailedMs) {
        state = state.put(state.job(state.failed.first().id()), null);
      }
      return state;
    }

    State withPaused(boolean paused) {
      return new State(jobs, paused, nextSeq, waiting, scheduled, leases, completed, failed, keys);
    }

    State withNextSeq(long nextSeq) {
      return new State(jobs, paused, nextSeq, waiting, scheduled, leases, completed, failed, keys);
    }

    /** Waiting jobs whose time has come, best first, at most {@code max}. */
    List<Job> leasable(long now, int max) {
      List<Job> found = new ArrayList<>();
      if (max <= 0 || scheduled.isEmpty() || scheduled.first().rank() > now) {
        return found;
      }
      for (Iterator<Slot> it = waiting.iterator(); it.hasNext() && found.size() < max; ) {
        Job job = job(it.next().id());
        if (job.runAt() <= now) {
          found.add(job);
        }
      }
      return found;
    }

    Counts counts(long now) {
      int due = scheduled.headSet(new Slot(now, Long.MAX_VALUE, "")).size();
      return new Counts(due, scheduled.size() - due, leases.size(), completed.size(), failed.size(), paused);
    }
  }

  // ---------------------------------------------------------------------------------------
  // The behavior

  private final JobSettings settings;
  private final Users users;
  private final JobSettings.Queue queue;
  private final int concurrency;
  private final TokenBucket startRate;
  /** Until when (System.nanoTime) the start rate allows no job: watchers wait for the timer. */
  private long rateBlockedUntil;
  private final Clock clock;
  private final DoubleSupplier random;
  private final TimerScheduler<Command> timers;
  private final ActorContext<Command> context;
  private final String entityId;
  private final ActorRef<Command> front;
  private final QueueMetrics nodeMetrics;
  private final QueueMetrics.Meters metrics;
  /** Fetches waiting for a job (ephemeral): told {@link Available} once one can be leased. */
  private final List<Watch> watchers = new ArrayList<>();
  /** Clients following a job's status (ephemeral), answered at its next change. */
  private final Map<String, List<Follow>> followers = new HashMap<>();

  private QueuePartition(
      String entityId,
      JobSettings settings,
      Users users,
      ActorRef<Command> front,
      Clock clock,
      DoubleSupplier random,
      TimerScheduler<Command> timers,
      ActorContext<Command> context) {
    super(PersistenceId.of(ENTITY_KEY.name(), entityId));
    int colon = entityId.lastIndexOf(':');
    String queueName = entityId.substring(0, colon);
    int partition = Integer.parseInt(entityId.substring(colon + 1));
    this.settings = settings;
    this.users = users;
    this.queue = settings.queue(queueName).orElseThrow(() -> new IllegalArgumentException("no queue " + queueName));
    this.concurrency = queue.concurrency() == 0 ? Integer.MAX_VALUE : queue.share(queue.concurrency(), partition);
    double rate = queue.ratePerSecond() / queue.partitions();
    this.startRate = rate > 0 ? new TokenBucket(rate, Math.max(1, rate), System.nanoTime()) : null;
    this.rateBlockedUntil = System.nanoTime();
    this.clock = clock;
    this.random = random;
    this.timers = timers;
    this.context = context;
    this.entityId = entityId;
    this.front = front;
    this.nodeMetrics = QueueMetrics.get(context.getSystem());
    this.metrics = nodeMetrics.of(queueName);
  }

  @Override
  public State emptyState() {
    return State.empty();
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return RetentionCriteria.snapshotEvery(settings.snapshotEvery(), 2);
  }

  @Override
  public SignalHandler<State> signalHandler() {
    return newSignalHandlerBuilder()
        .onSignal(RecoveryCompleted.instance(), state -> {
          nodeMetrics.hosting(entityId, queue.name(), state);
          arm(state);
        })
        .onSignal(PostStop.instance(), state -> nodeMetrics.left(entityId))
        .build();
  }

  @Override
  public CommandHandler<Command, Event, State> commandHandler() {
    return newCommandHandlerBuilder()
        .forAnyState()
        .onCommand(WriteBatch.class, this::onWriteBatch)
        .onCommand(Get.class, (state, c) -> {
          c.replyTo().tell(visible(state, c.jobId(), c.requester()) ? new Done(state.job(c.jobId()), false) : notFound(c.jobId()));
          return Effect().none();
        })
        .onCommand(Follow.class, this::onFollow)
        .onCommand(Watch.class, this::onWatch)
        .onCommand(GetCounts.class, (state, c) -> {
          c.replyTo().tell(state.counts(clock.millis()));
          return Effect().none();
        })
        .onCommand(Wake.class, this::onWake)
        .build();
  }

  /**
   * What one write does: the events it adds, the answer its sender gets (from the state just
   * after them, since later writes of the batch may trim a finished job away) and what the
   * node's metrics count once the events are journaled.
   */
  private record Decision(List<Event> events, Function<State, Answer> answer, Runnable journaled) {
    static Decision answer(Answer answer) {
      return new Decision(List.of(), s -> answer, () -> {});
    }
  }

  /**
   * Decides every write of the batch against the state as the earlier writes of the same
   * batch leave it, persists all their events as one atomic write, and only then answers, in
   * order, and tells whoever follows the changed jobs.
   */
  private Effect<Event, State> onWriteBatch(State state, WriteBatch batch) {
    long now = clock.millis();
    State running = state;
    List<Event> events = new ArrayList<>();
    List<Runnable> answers = new ArrayList<>(batch.writes().size());
    for (Write write : batch.writes()) {
      Decision decision = decide(running, write, now);
      for (Event event : decision.events()) {
        running = apply(running, event);
      }
      events.addAll(decision.events());
      Answer answer = decision.answer().apply(running);
      answers.add(() -> {
        decision.journaled().run();
        write.replyTo().tell(answer);
      });
    }
    if (events.isEmpty()) {
      answers.forEach(Runnable::run);
      front.tell(new BatchDone());
      return Effect().none();
    }
    long started = System.nanoTime();
    return Effect().persist(events).thenRun(s -> {
      nodeMetrics.journaled(System.nanoTime() - started);
      answers.forEach(Runnable::run);
      afterChange(s, changedJobs(events));
      front.tell(new BatchDone());
    });
  }

  private Decision decide(State state, Write write, long now) {
    if (write instanceof Submit c) {
      return submit(state, c);
    } else if (write instanceof Lease c) {
      return lease(state, c, now);
    } else if (write instanceof Extend c) {
      return leased(state, c.jobId(), c.leaseId(), job -> new Extended(job.id(), deadline(job, now, c.leaseMs())));
    } else if (write instanceof Progress c) {
      return leased(state, c.jobId(), c.leaseId(), job -> new Progressed(job.id(), c.progress()));
    } else if (write instanceof Complete c) {
      return leased(state, c.jobId(), c.leaseId(), job -> new Completed(job.id(), c.result(), now));
    } else if (write instanceof Fail c) {
      return leased(state, c.jobId(), c.leaseId(), job -> attemptFailed(job, c.error(), now, true));
    } else if (write instanceof Cancel c) {
      return cancel(state, c, now);
    }
    SetPaused c = (SetPaused) write;
    return new Decision(List.of(new PausedSet(c.paused())), s -> s.counts(now), () -> {});
  }

  private Decision submit(State state, Submit c) {
    Job job = c.job();
    Job existing = state.job(job.id());
    if (existing != null) {
      // The same Idempotency-Key: the same job, if it is the same request.
      return existing.digest().equals(job.digest())
          ? Decision.answer(new Done(existing, true))
          : Decision.answer(new Refused(IDEMPOTENCY_CONFLICT, "this Idempotency-Key was used for a different job", existing.id()));
    }
    if (job.key() != null && state.keys().containsKey(job.key())) {
      String holder = state.keys().get(job.key());
      return Decision.answer(new Refused(JOB_KEY_TAKEN, "a job with this key is waiting or running: " + holder, holder));
    }
    Job numbered = new Job(
        job.id(), job.queue(), job.submitter(), job.data(), job.priority(), job.runAt(), job.attempts(), 0,
        job.backoff(), job.timeoutMs(), job.key(), Job.Status.WAITING, null, null, null, null, 1,
        job.createdAt(), 0, 0, state.nextSeq(), job.digest());
    return new Decision(List.of(new Submitted(numbered)), s -> new Done(s.job(job.id()), false), metrics.submitted::increment);
  }

  private Effect<Event, State> onFollow(State state, Follow c) {
    if (!visible(state, c.jobId(), c.requester())) {
      c.replyTo().tell(notFound(c.jobId()));
    } else if (state.job(c.jobId()).version() > c.afterVersion()) {
      c.replyTo().tell(new Done(state.job(c.jobId()), false));
    } else {
      long now = clock.millis();
      List<Follow> following = followers.computeIfAbsent(c.jobId(), id -> new ArrayList<>());
      following.removeIf(f -> f.untilMillis() < now);
      following.add(c);
    }
    return Effect().none();
  }

  private Decision lease(State state, Lease c, long now) {
    int room = state.paused() ? 0 : Math.min(c.max(), concurrency - state.leases().size());
    List<Grant> grants = new ArrayList<>();
    List<Long> readyAt = new ArrayList<>();
    for (Job job : state.leasable(now, room)) {
      if (startRate != null && !startRate.take(System.nanoTime()).isZero()) {
        break;
      }
      grants.add(new Grant(job.id(), UUID.randomUUID().toString(), deadline(job, now, c.leaseMs())));
      readyAt.add(job.runAt());
    }
    if (grants.size() < room && startRate != null && state.leasable(now, grants.size() + 1).size() > grants.size()) {
      // Held back by the start rate: nobody is told "available" until the next start is due.
      Duration next = Duration.ofMillis((long) Math.ceil(1000 / (queue.ratePerSecond() / queue.partitions())));
      rateBlockedUntil = System.nanoTime() + next.toNanos();
      timers.startSingleTimer("rate", new Wake(), next);
    }
    if (grants.isEmpty()) {
      return Decision.answer(new Leased(List.of()));
    }
    List<String> ids = grants.stream().map(Grant::jobId).toList();
    return new Decision(
        List.of(new LeasedTo(c.worker(), grants, now)),
        s -> new Leased(ids.stream().map(s::job).toList()),
        () -> readyAt.forEach(ready -> metrics.pickedUp(ready, now)));
  }

  private Effect<Event, State> onWatch(State state, Watch c) {
    long now = clock.millis();
    if (canLease(state, now)) {
      c.replyTo().tell(new Available());
    } else {
      watchers.removeIf(w -> w.untilMillis() < now);
      watchers.add(c);
    }
    return Effect().none();
  }

  private Decision cancel(State state, Cancel c, long now) {
    if (!visible(state, c.jobId(), c.requester())) {
      return Decision.answer(notFound(c.jobId()));
    }
    Job job = state.job(c.jobId());
    if (c.ifVersion() >= 0 && c.ifVersion() != job.version()) {
      return Decision.answer(new Refused(VERSION_MISMATCH, "the job is at version " + job.version() + ", not " + c.ifVersion(), job.id()));
    }
    if (!job.live()) {
      return Decision.answer(new Refused(JOB_FINISHED, "the job has finished: " + job.state(now), job.id()));
    }
    return new Decision(List.of(new Cancelled(job.id(), now)), s -> new Done(s.job(job.id()), false), metrics.cancelled::increment);
  }

  /** Lease deadlines that have passed spend their attempt; delayed jobs that came due are announced. */
  private Effect<Event, State> onWake(State state, Wake c) {
    long now = clock.millis();
    List<Event> expired = new ArrayList<>();
    for (Slot slot : state.leases().headSet(new Slot(now, Long.MAX_VALUE, ""))) {
      Job job = state.job(slot.id());
      boolean timedOut = job.timeoutMs() > 0 && now >= job.startedAt() + job.timeoutMs();
      expired.add(attemptFailed(job, timedOut ? TIMED_OUT : LEASE_EXPIRED, now, false));
    }
    if (expired.isEmpty()) {
      afterChange(state, List.of());
      return Effect().none();
    }
    context.getLog().info("Queue partition {}: {} lease(s) expired", persistenceId().id(), expired.size());
    List<String> ids = expired.stream().map(e -> ((AttemptFailed) e).jobId()).toList();
    return Effect().persist(expired).thenRun(s -> {
      for (Event e : expired) {
        AttemptFailed failure = (AttemptFailed) e;
        (failure.error().equals(TIMED_OUT) ? metrics.timedOut : metrics.leaseExpired).increment();
        counted(failure);
      }
      afterChange(s, ids);
    });
  }

  /** Runs a worker's report against the job's lease: refused unless {@code leaseId} holds it. */
  private Decision leased(State state, String jobId, String leaseId, Function<Job, Event> event) {
    Job job = state.job(jobId);
    if (job == null) {
      return Decision.answer(notFound(jobId));
    }
    if (!job.leasedBy(leaseId)) {
      return Decision.answer(new Refused(LEASE_LOST,
          "this lease no longer holds the job (it expired, or the job was cancelled or finished): " + job.state(clock.millis()), jobId));
    }
    Event happened = event.apply(job);
    return new Decision(List.of(happened), s -> new Done(s.job(jobId), false), () -> counted(happened));
  }

  /** The jobs the events change, each once, in order of first change. */
  private static List<String> changedJobs(List<Event> events) {
    LinkedHashSet<String> ids = new LinkedHashSet<>();
    for (Event event : events) {
      if (event instanceof Submitted e) {
        ids.add(e.job().id());
      } else if (event instanceof LeasedTo e) {
        e.grants().forEach(g -> ids.add(g.jobId()));
      } else if (event instanceof JobEvent e) {
        ids.add(e.jobId());
      }
    }
    return List.copyOf(ids);
  }

  /** Counts a worker's outcome, or an expiry's, once it is journaled. */
  private void counted(Event event) {
    if (event instanceof Completed) {
      metrics.completed.increment();
    } else if (event instanceof AttemptFailed failure) {
      (failure.retryAt() < 0 ? metrics.failed : metrics.retried).increment();
    }
  }

  private AttemptFailed attemptFailed(Job job, String error, long now, boolean backoff) {
    if (!job.attemptsLeftAfterThis()) {
      return new AttemptFailed(job.id(), error, now, -1);
    }
    long delay = backoff ? job.backoff().delayAfter(job.attemptsMade() + 1, random.getAsDouble()) : 0;
    return new AttemptFailed(job.id(), error, now, now + delay);
  }

  /** The lease's end: {@code leaseMs} from now, but never past the job's own timeout. */
  private static long deadline(Job job, long now, long leaseMs) {
    long deadline = now + leaseMs;
    if (job.timeoutMs() > 0) {
      long started = job.status() == Job.Status.ACTIVE ? job.startedAt() : now;
      deadline = Math.min(deadline, started + job.timeoutMs());
    }
    return deadline;
  }

  private boolean canLease(State state, long now) {
    return !state.paused()
        && System.nanoTime() - rateBlockedUntil >= 0 && state.leases().size() < concurrency && !state.leasable(now, 1).isEmpty();
  }

  private static boolean visible(State state, String jobId, String requester) {
    Job job = state.job(jobId);
    return job != null && (requester == null || requester.equals(job.submitter()));
  }

  private static Refused notFound(String jobId) {
    return new Refused(JOB_NOT_FOUND, "no such job: " + jobId, jobId);
  }

  /**
   * After every change: show the state to the node's metrics, tell the changed jobs'
   * submitters, wake the watchers if a job can be leased, answer followers, re-arm the timer.
   * A submitter hears of each change in version order (one path: this entity to their user
   * entity to their sessions); a backend's jobs (no submitter) are followed by polling.
   */
  private void afterChange(State state, List<String> changed) {
    nodeMetrics.hosting(entityId, queue.name(), state);
    for (String id : changed) {
      Job job = state.job(id);
      if (job != null && job.submitter() != null) {
        users.user(job.submitter()).tell(new UserEntity.Relay(JobView.push(job, clock.millis()), job.id(), job.version()));
      }
    }
    long now = clock.millis();
    if (!watchers.isEmpty() && canLease(state, now)) {
      watchers.forEach(w -> w.replyTo().tell(new Available()));
      watchers.clear();
    }
    followers.entrySet().removeIf(e -> {
      Job job = state.job(e.getKey());
      List<Follow> waiting = e.getValue();
      waiting.removeIf(f -> {
        if (job == null || job.version() > f.afterVersion()) {
          f.replyTo().tell(job == null ? notFound(f.jobId()) : new Done(job, false));
          return true;
        }
        return f.untilMillis() < now;
      });
      return waiting.isEmpty();
    });
    arm(state);
  }

  /** One timer for the earliest moment something is due: a lease deadline or a delayed job. */
  private void arm(State state) {
    long now = clock.millis();
    long next = Long.MAX_VALUE;
    if (!state.leases().isEmpty()) {
      next = state.leases().first().rank();
    }
    TreePSet<Slot> later = state.scheduled().tailSet(new Slot(now + 1, Long.MIN_VALUE, ""));
    if (!later.isEmpty()) {
      next = Math.min(next, later.first().rank());
    }
    if (next == Long.MAX_VALUE) {
      timers.cancel("wake");
    } else {
      timers.startSingleTimer("wake", new Wake(), Duration.ofMillis(Math.max(1, next - now)));
    }
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder().forAnyState().onAnyEvent((State state, Event event) -> apply(state, event));
  }

  /**
   * The one way an event changes the state: in recovery, and while a batch is decided. Events
   * that carry their time also remove the finished jobs that have aged out by then.
   */
  private State apply(State state, Event event) {
    State after = applied(state, event);
    long at = event instanceof Submitted e ? e.job().createdAt()
        : event instanceof LeasedTo e ? e.at()
        : event instanceof Completed e ? e.at()
        : event instanceof AttemptFailed e ? e.at()
        : event instanceof Cancelled e ? e.at()
        : -1;
    return at < 0 ? after : after.aged(at, queue.keepCompletedMs(), queue.keepFailedMs());
  }

  private State applied(State state, Event event) {
    if (event instanceof Submitted e) {
      return state.put(null, e.job()).withNextSeq(e.job().seq() + 1);
    } else if (event instanceof LeasedTo e) {
      State s = state;
      for (Grant g : e.grants()) {
        Job job = s.job(g.jobId());
        s = s.put(job, job.leased(new Job.Lease(g.leaseId(), e.worker(), g.deadline()), e.at()));
      }
      return s;
    } else if (event instanceof Extended e) {
      return change(state, e.jobId(), job -> job.extended(e.deadline()));
    } else if (event instanceof Progressed e) {
      return change(state, e.jobId(), job -> job.progressed(e.progress()));
    } else if (event instanceof Completed e) {
      return change(state, e.jobId(), job -> job.completed(e.result(), e.at()));
    } else if (event instanceof AttemptFailed e) {
      return change(state, e.jobId(), job -> job.attemptFailed(e.error(), e.at(), e.retryAt()));
    } else if (event instanceof Cancelled e) {
      return change(state, e.jobId(), job -> job.cancelled(e.at()));
    }
    return state.withPaused(((PausedSet) event).paused());
  }

  private State change(State state, String jobId, java.util.function.UnaryOperator<Job> transition) {
    Job job = state.job(jobId);
    return state.put(job, transition.apply(job)).trimmed(queue.keepCompleted(), queue.keepFailed());
  }
}
