package parley.jobs;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import parley.jobs.queue.QueuePartition;

/**
 * Every configured queue's counts for operators ({@code GET /queues} on the management port):
 * asked of each partition wherever it runs, so any node answers for the whole cluster. A
 * partition that does not answer in time (its node is failing over) is listed under
 * {@code unanswered} and left out of the sums, rather than failing the whole answer.
 *
 * <pre>
 * {"queues":{"exports":{"partitions":2,"waiting":12,"delayed":3,"active":2,"completed":840,
 *   "failed":5,"paused":false,"unanswered":[],
 *   "byPartition":[{"partition":0,"waiting":7,…},{"partition":1,…}]}}}
 * </pre>
 */
public final class QueueOverview {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String[] COUNTS = {"waiting", "delayed", "active", "completed", "failed"};

  private final JobService jobs;
  private final JobSettings settings;

  public QueueOverview(JobService jobs, JobSettings settings) {
    this.jobs = jobs;
    this.settings = settings;
  }

  /** Every queue's counts, as JSON. */
  public CompletionStage<String> all() {
    List<JobSettings.Queue> queues = new ArrayList<>(settings.queues().values());
    queues.sort((a, b) -> a.name().compareTo(b.name()));
    List<CompletableFuture<ObjectNode>> described = new ArrayList<>();
    for (JobSettings.Queue queue : queues) {
      described.add(jobs.eachPartition(queue, QueuePartition.GetCounts::new)
          .thenApply(answers -> describe(queue, answers)).toCompletableFuture());
    }
    return CompletableFuture.allOf(described.toArray(CompletableFuture[]::new)).thenApply(done -> {
      ObjectNode root = JSON.createObjectNode();
      ObjectNode byName = root.putObject("queues");
      for (int i = 0; i < queues.size(); i++) {
        byName.set(queues.get(i).name(), described.get(i).join());
      }
      return root.toString();
    });
  }

  private static ObjectNode describe(JobSettings.Queue queue, List<QueuePartition.Answer> answers) {
    ObjectNode node = JSON.createObjectNode().put("partitions", queue.partitions());
    long[] sums = new long[COUNTS.length];
    boolean paused = false;
    ArrayNode unanswered = JSON.createArrayNode();
    ArrayNode byPartition = JSON.createArrayNode();
    for (int p = 0; p < answers.size(); p++) {
      if (!(answers.get(p) instanceof QueuePartition.Counts c)) {
        unanswered.add(p);
        continue;
      }
      int[] counts = {c.waiting(), c.delayed(), c.active(), c.completed(), c.failed()};
      ObjectNode partition = byPartition.addObject().put("partition", p);
      for (int i = 0; i < COUNTS.length; i++) {
        partition.put(COUNTS[i], counts[i]);
        sums[i] += counts[i];
      }
      partition.put("paused", c.paused());
      paused |= c.paused();
    }
    for (int i = 0; i < COUNTS.length; i++) {
      node.put(COUNTS[i], sums[i]);
    }
    node.put("paused", paused);
    node.set("unanswered", unanswered);
    node.set("byPartition", byPartition);
    return node;
  }
}
