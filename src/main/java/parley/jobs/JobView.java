package parley.jobs;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import parley.protocol.Codec;
import parley.protocol.Push;

/** A job as it travels: the body of {@code GET /v1/jobs/{id}}, and the {@code job} push. */
public final class JobView {

  private JobView() {}

  /**
   * A job as clients see it; a worker also sees its lease. Times are epoch milliseconds;
   * {@code data}, {@code progress} and {@code result} are the JSON values given.
   */
  public static ObjectNode render(Job job, boolean forWorker, long now) {
    ObjectNode node = Codec.JSON.createObjectNode();
    node.put("id", job.id()).put("queue", job.queue()).put("state", job.state(now)).put("version", job.version());
    node.set("data", value(job.data()));
    node.put("priority", job.priority()).put("attempts", job.attempts()).put("attemptsMade", job.attemptsMade());
    if (job.key() != null) {
      node.put("key", job.key());
    }
    node.set("progress", value(job.progress()));
    node.set("result", value(job.result()));
    if (job.error() == null) {
      node.putNull("error");
    } else {
      node.put("error", job.error());
    }
    node.put("createdAt", job.createdAt()).put("runAt", job.runAt());
    node.put("startedAt", job.startedAt() == 0 ? null : job.startedAt());
    node.put("finishedAt", job.finishedAt() == 0 ? null : job.finishedAt());
    if (forWorker && job.lease() != null) {
      node.put("leaseId", job.lease().id()).put("leaseUntil", job.lease().deadline());
    }
    return node;
  }

  private static com.fasterxml.jackson.databind.JsonNode value(String json) {
    try {
      return json == null ? Codec.JSON.nullNode() : Codec.JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a stored JSON value no longer parses", e);
    }
  }

  /** The push that tells the job's submitter of a change: {@code {"type":"job","job":{…}}}. */
  public static String push(Job job, long now) {
    return Codec.push(new Push.JobChanged(render(job, false, now)));
  }
}
