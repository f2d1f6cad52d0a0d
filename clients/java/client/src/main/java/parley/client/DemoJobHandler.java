package parley.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The handler {@code ./parley worker} runs unless told another: a stand-in for real work that
 * shows every part of a job's life. It takes {@code data.ms} milliseconds (default 100, at most
 * a minute), reporting progress in five steps, and completes with {@code {"echo": data}}; a job
 * whose data says {@code "fail": true} fails instead, to show retries.
 */
public final class DemoJobHandler implements JobWorker.Handler {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int STEPS = 5;

  @Override
  public JsonNode handle(JobWorker.Job job) throws Exception {
    long ms = Math.min(60_000, Math.max(0, job.data().path("ms").asLong(100)));
    for (int step = 1; step <= STEPS && !job.leaseLost(); step++) {
      Thread.sleep(ms / STEPS);
      job.progress(JSON.createObjectNode().put("pct", 100 * step / STEPS));
    }
    if (job.data().path("fail").asBoolean(false)) {
      throw new IllegalStateException("the job asked to fail (data.fail)");
    }
    ObjectNode result = JSON.createObjectNode();
    result.set("echo", job.data());
    return result;
  }
}
