package parley.jobs.export;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import parley.chat.handler.ChatHandler;
import parley.chat.room.RoomEntity;
import parley.jobs.Job;
import parley.jobs.JobService;
import parley.jobs.JobSettings;
import parley.jobs.JobView;
import parley.jobs.queue.QueuePartition;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.Reply;

/**
 * A member's request to export a room's history ({@code export_room}, {@code POST
 * /v1/rooms/{room}/export}): checked at the edge (the room says whether the user is a member,
 * as for every room request), then submitted as a job of the export queue with the member as
 * its submitter, so their connections get its {@code job} pushes. The job's {@code key} allows
 * one live export per member and room: asking again while one is waiting or running answers
 * that one.
 */
public final class RoomExports {

  private final JobService jobs;
  private final JobSettings.Queue queue;
  private final ClusterSharding sharding;
  private final Duration askTimeout;
  private final ActorSystem<?> system;

  public RoomExports(ActorSystem<?> system, JobService jobs, ExportSettings settings, Duration askTimeout) {
    this.jobs = jobs;
    this.queue = settings.queue();
    this.sharding = ClusterSharding.get(system);
    this.askTimeout = askTimeout;
    this.system = system;
  }

  /** The node's export requests, from its configuration (what the chat handler calls). */
  public static RoomExports create(ActorSystem<?> system, Duration askTimeout) {
    JobSettings settings = JobSettings.from(system.settings().config());
    return new RoomExports(
        system, new JobService(system, settings, askTimeout), ExportSettings.from(system.settings().config(), settings), askTimeout);
  }

  /** Exports {@code room} for {@code user}: the job, or the refusal. */
  public CompletionStage<Reply> request(String user, String room) {
    CompletionStage<RoomEntity.MembershipReply> membership = ChatHandler.plain(
        sharding.entityRefFor(RoomEntity.ENTITY_KEY, room)
            .<RoomEntity.MembershipReply>ask(replyTo -> new RoomEntity.IsMember(user, replyTo), askTimeout),
        system.executionContext());
    return membership.thenCompose(reply -> {
      if (reply instanceof RoomEntity.Rejected rejected) {
        return done(Reply.Failure.of(ErrorCode.ofEntity(rejected.code()), rejected.message()));
      }
      if (!((RoomEntity.Membership) reply).member()) {
        return done(Reply.Failure.of(ErrorCode.NOT_A_MEMBER, user + " is not a member of room " + room));
      }
      return submit(user, room);
    }).exceptionally(ChatHandler::failed);
  }

  private CompletionStage<Reply> submit(String user, String room) {
    ObjectNode body = Codec.JSON.createObjectNode();
    body.putObject("data").put("room", room);
    body.put("key", "export/" + room + "/" + user);
    Job job = jobs.requests().submission(queue, user, null, body, System.currentTimeMillis());
    return jobs.submit(job).thenCompose(answer -> {
      if (answer instanceof QueuePartition.Refused refused
          && QueuePartition.JOB_KEY_TAKEN.equals(refused.code()) && refused.jobId() != null) {
        // An export of this room for this member is already waiting or running: that one.
        return jobs.get(refused.jobId(), user).thenApply(again -> started(room, again));
      }
      return CompletableFuture.completedFuture(started(room, answer));
    });
  }

  private static Reply started(String room, QueuePartition.Answer answer) {
    if (answer instanceof QueuePartition.Done done) {
      return new Reply.ExportStarted(room, done.job().id(), JobView.render(done.job(), false, System.currentTimeMillis()));
    }
    QueuePartition.Refused refused = (QueuePartition.Refused) answer;
    return Reply.Failure.of(ErrorCode.ofEntity(refused.code()), refused.message());
  }

  private static CompletionStage<Reply> done(Reply reply) {
    return CompletableFuture.completedFuture(reply);
  }
}
