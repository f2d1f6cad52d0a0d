package parley.jobs;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import parley.jobs.queue.QueuePartition;
import parley.jobs.queue.QueuePartition.Answer;

/**
 * What the node's routes do with jobs: each call goes to the partition that holds the job (or,
 * for a fetch, to the queue's partitions in turn), so every decision about a job is its
 * partition's. Answers come back as the partition gave them; a partition that does not answer
 * in time is {@code unavailable}.
 */
public final class JobService {

  private final ClusterSharding sharding;
  private final Duration askTimeout;
  private final Executor executor;
  private final JobRequests requests;

  public JobService(ActorSystem<?> system, JobSettings settings, Duration askTimeout) {
    this.sharding = ClusterSharding.get(system);
    this.askTimeout = askTimeout;
    this.executor = system.executionContext();
    this.requests = new JobRequests(settings);
  }

  public JobRequests requests() {
    return requests;
  }

  public CompletionStage<Answer> submit(Job job) {
    return ask(requests.place(job.id()).entityId(), replyTo -> new QueuePartition.Submit(job, replyTo), askTimeout);
  }

  public CompletionStage<Answer> get(String jobId, String requester) {
    return ask(requests.place(jobId).entityId(), replyTo -> new QueuePartition.Get(jobId, requester, replyTo), askTimeout);
  }

  /** The job once its version passes {@code afterVersion}, or as it is after {@code wait}. */
  public CompletionStage<Answer> follow(String jobId, String requester, long afterVersion, Duration wait) {
    String entity = requests.place(jobId).entityId();
    long until = System.currentTimeMillis() + wait.toMillis();
    return rawAsk(entity, replyTo -> new QueuePartition.Follow(jobId, requester, afterVersion, until, replyTo), wait.plusMillis(50))
        .exceptionallyCompose(unchanged -> get(jobId, requester));
  }

  public CompletionStage<Answer> cancel(String jobId, String requester, long ifVersion) {
    return ask(requests.place(jobId).entityId(), replyTo -> new QueuePartition.Cancel(jobId, requester, ifVersion, replyTo), askTimeout);
  }

  public CompletionStage<Answer> extend(String jobId, String leaseId, long leaseMs) {
    return ask(requests.place(jobId).entityId(), replyTo -> new QueuePartition.Extend(jobId, leaseId, leaseMs, replyTo), askTimeout);
  }

  public CompletionStage<Answer> progress(String jobId, String leaseId, String progress) {
    return ask(requests.place(jobId).entityId(), replyTo -> new QueuePartition.Progress(jobId, leaseId, progress, replyTo), askTimeout);
  }

  public CompletionStage<Answer> complete(String jobId, String leaseId, String result) {
    return ask(requests.place(jobId).entityId(), replyTo -> new QueuePartition.Complete(jobId, leaseId, result, replyTo), askTimeout);
  }

  public CompletionStage<Answer> fail(String jobId, String leaseId, String error) {
    return ask(requests.place(jobId).entityId(), replyTo -> new QueuePartition.Fail(jobId, leaseId, error, replyTo), askTimeout);
  }

  public CompletionStage<List<Answer>> eachPartition(JobSettings.Queue queue, Function<ActorRef<Answer>, QueuePartition.Command> command) {
    List<CompletableFuture<Answer>> answers = new ArrayList<>();
    for (int p = 0; p < queue.partitions(); p++) {
      answers.add(ask(QueuePartition.entityId(queue.name(), p), command, askTimeout).toCompletableFuture());
    }
    return CompletableFuture.allOf(answers.toArray(CompletableFuture[]::new))
        .thenApply(done -> answers.stream().map(CompletableFuture::join).toList());
  }

  /**
   * Leases up to {@code max} jobs of {@code queue} to {@code worker}: asks the partitions in
   * turn from a random one (so workers spread over them), and when none had a job, waits up
   * to {@code wait} for any partition to say one can be leased, then asks again.
   */
  public CompletionStage<List<Job>> fetch(JobSettings.Queue queue, String worker, int max, long leaseMs, Duration wait) {
    long deadline = System.nanoTime() + wait.toNanos();
    return fetchRound(queue, worker, max, leaseMs, deadline);
  }

  private CompletionStage<List<Job>> fetchRound(JobSettings.Queue queue, String worker, int max, long leaseMs, long deadline) {
    int start = ThreadLocalRandom.current().nextInt(queue.partitions());
    return leaseFrom(queue, start, 0, worker, max, leaseMs, new ArrayList<>())
        .thenComposeAsync(jobs -> {
          long left = deadline - System.nanoTime();
          if (!jobs.isEmpty() || left <= 0) {
            return CompletableFuture.completedFuture(jobs);
          }
          return awaitAvailable(queue, Duration.ofNanos(left))
              .thenComposeAsync(available -> available
                  ? fetchRound(queue, worker, max, leaseMs, deadline)
                  : CompletableFuture.completedFuture(List.of()), executor);
        }, executor);
  }

  private CompletionStage<List<Job>> leaseFrom(
      JobSettings.Queue queue, int start, int asked, String worker, int max, long leaseMs, List<Job> got) {
    if (got.size() >= max || asked == queue.partitions()) {
      return CompletableFuture.completedFuture(got);
    }
    String entity = QueuePartition.entityId(queue.name(), (start + asked) % queue.partitions());
    return rawAsk(entity, replyTo -> new QueuePartition.Lease(worker, max - got.size(), leaseMs, replyTo), askTimeout)
        .handle((answer, failure) -> {
          // A partition that does not answer is skipped: the others' jobs still go out.
          if (answer instanceof QueuePartition.Leased leased) {
            got.addAll(leased.jobs());
          }
          return got;
        })
        .thenComposeAsync(sofar -> leaseFrom(queue, start, asked + 1, worker, max, leaseMs, sofar), executor);
  }

  /** True once any partition says a job can be leased; false if none does within {@code wait}. */
  private CompletionStage<Boolean> awaitAvailable(JobSettings.Queue queue, Duration wait) {
    CompletableFuture<Boolean> any = new CompletableFuture<>();
    long until = System.currentTimeMillis() + wait.toMillis();
    List<CompletableFuture<Answer>> watches = new ArrayList<>();
    for (int p = 0; p < queue.partitions(); p++) {
      CompletableFuture<Answer> watch =
          rawAsk(QueuePartition.entityId(queue.name(), p), replyTo -> new QueuePartition.Watch(until, replyTo), wait).toCompletableFuture();
      watch.thenAccept(answer -> any.complete(true));
      watches.add(watch);
    }
    // When the last watch ends this runs before that watch's own thenAccept above (a future
    // runs its dependents last-registered first), so it asks the watches themselves: with one
    // partition, "false" here would otherwise answer a job's arrival with an empty fetch.
    CompletableFuture.allOf(watches.toArray(CompletableFuture[]::new)).whenComplete((done, failure) ->
        any.complete(watches.stream().anyMatch(watch -> watch.isDone() && !watch.isCompletedExceptionally())));
    return any;
  }

  /** Asks a partition; no answer in time is the retryable {@code unavailable}. */
  private CompletionStage<Answer> ask(
      String entityId, Function<ActorRef<Answer>, QueuePartition.Command> command, Duration timeout) {
    return rawAsk(entityId, command, timeout).exceptionally(failure -> new QueuePartition.Refused(
        QueuePartition.UNAVAILABLE, "the queue's partition did not answer in time; send the same request again", null));
  }

  private CompletionStage<Answer> rawAsk(
      String entityId, Function<ActorRef<Answer>, QueuePartition.Command> command, Duration timeout) {
    EntityRef<QueuePartition.Command> partition = sharding.entityRefFor(QueuePartition.ENTITY_KEY, entityId);
    return partition.ask(command::apply, timeout);
  }
}
