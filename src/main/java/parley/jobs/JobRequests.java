package parley.jobs;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.Set;
import java.util.UUID;
import parley.protocol.Codec;
import parley.protocol.ErrorCode;
import parley.protocol.Fields;
import parley.protocol.ProtocolException;
import parley.serialization.Text;

/**
 * Reads and checks what clients and workers send about jobs, at the edge: a partition only ever
 * receives a job it can journal (design rule: no input can make an entity fail a write).
 */
public final class JobRequests {

  private static final Set<String> SUBMIT_FIELDS = Set.of("data", "priority", "delay", "runAt", "attempts", "backoff", "timeout", "key");
  private static final Set<String> BACKOFF_FIELDS = Set.of("type", "delay", "jitter");
  /** The longest delay, timeout and backoff a job may ask for: 30 days. */
  static final long MAX_MILLIS = 30L * 24 * 3600_000;

  private final JobSettings settings;
  private final Codec.Limits limits = new Codec.Limits(Integer.MAX_VALUE, Integer.MAX_VALUE);

  public JobRequests(JobSettings settings) {
    this.settings = settings;
  }

  /** Where a job lives, read from its id ({@code <queue>:<partition>:<32 hex>}). */
  public record Place(JobSettings.Queue queue, int partition) {
    public String entityId() {
      return queue.name() + ":" + partition;
    }
  }

  /** The queue and partition of {@code jobId}; {@code job_not_found} for an id no queue can hold. */
  public Place place(String jobId) {
    String[] parts = jobId.split(":", -1);
    if (parts.length == 3 && parts[2].matches("[0-9a-f]{32}") && parts[1].matches("[0-9]{1,4}")) {
      JobSettings.Queue queue = settings.queue(parts[0]).orElse(null);
      int partition = Integer.parseInt(parts[1]);
      if (queue != null && partition < queue.partitions()) {
        return new Place(queue, partition);
      }
    }
    throw new ProtocolException(ErrorCode.JOB_NOT_FOUND, "no such job: " + jobId);
  }

  public JobSettings.Queue queue(String name) {
    return settings.queue(name).orElseThrow(() -> new ProtocolException(ErrorCode.QUEUE_NOT_FOUND, "no queue named '" + name + "'"));
  }

  /**
   * A new job from a submission's body. With an {@code idempotencyKey} its id is derived from
   * the submitter and the key, so a repeat lands on the same job; with a {@code key}, the job
   * lives in that key's partition, where "one live job per key" is decided.
   */
  public Job submission(JobSettings.Queue queue, String submitter, String idempotencyKey, ObjectNode body, long now) {
    strict(body, SUBMIT_FIELDS, "a job");
    Fields fields = new Fields(body, limits);
    String data = json("data", body.get("data"), settings.maxDataBytes());
    int priority = fields.limit("priority", 0, 1000, 0);
    if (fields.has("delay") && fields.has("runAt")) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "give delay or runAt, not both");
    }
    long runAt = now;
    if (fields.has("delay")) {
      runAt = now + millis(fields, "delay", 0);
    } else if (fields.has("runAt")) {
      runAt = fields.number("runAt");
      if (runAt < 0 || runAt > now + MAX_MILLIS) {
        throw new ProtocolException(ErrorCode.BAD_FIELD, "runAt must be epoch milliseconds within 30 days");
      }
    }
    int attempts = fields.limit("attempts", 1, 100, queue.attempts());
    Job.Backoff backoff = fields.has("backoff") ? backoff(body.get("backoff")) : queue.backoff();
    long timeout = fields.has("timeout") ? millis(fields, "timeout", 1) : 0;
    String key = fields.optionalText("key");
    if (key != null && (key.isEmpty() || Text.utf8Length(key) > 256 || !Text.isWellFormed(key))) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "key must be 1-256 bytes of Unicode text");
    }
    if (idempotencyKey != null && (idempotencyKey.isEmpty() || idempotencyKey.length() > 256 || !Text.isWellFormed(idempotencyKey))) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "Idempotency-Key must be 1-256 characters");
    }
    String digest = sha256(queue.name() + "\n" + body);
    String hex = idempotencyKey == null
        ? UUID.randomUUID().toString().replace("-", "")
        : sha256(submitter + "\n" + idempotencyKey).substring(0, 32);
    int partition = Math.floorMod((key != null ? key : hex).hashCode(), queue.partitions());
    return new Job(
        queue.name() + ":" + partition + ":" + hex, queue.name(), submitter, data, priority, runAt, attempts, 0,
        backoff, timeout, key, Job.Status.WAITING, null, null, null, null, 1, now, 0, 0, 0, digest);
  }

  /** A progress report: any JSON value within {@code max-progress-size}; null for none. */
  public String progress(JsonNode value) {
    return json("progress", value, settings.maxProgressBytes());
  }

  /** A result: any JSON value within {@code max-result-size}; null for none. */
  public String result(JsonNode value) {
    return json("result", value, settings.maxResultBytes());
  }

  /** The error a worker reports for a failed attempt: text of up to 4 KiB. */
  public String error(String error) {
    if (error == null || error.isEmpty()) {
      throw new ProtocolException(ErrorCode.MISSING_FIELD, "missing field 'error' (what went wrong)");
    }
    if (!Text.isWellFormed(error) || Text.utf8Length(error) > 4096) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "error must be at most 4 KiB of Unicode text");
    }
    return error;
  }

  /** Seconds until a user refused {@code rate_limited} may submit again: one submission's refill. */
  public long submitRetryAfterSeconds() {
    return Math.max(1, (long) Math.ceil(1 / settings.submitRatePerSecond()));
  }

  /** A lease duration in milliseconds: the default when absent, at most the configured maximum. */
  public long leaseMillis(Long asked) {
    if (asked == null) {
      return settings.defaultLease().toMillis();
    }
    if (asked < 1000 || asked > settings.maxLease().toMillis()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "lease must be 1000-" + settings.maxLease().toMillis() + " ms");
    }
    return asked;
  }

  public int fetchMax(Long asked) {
    if (asked == null) {
      return 1;
    }
    if (asked < 1 || asked > settings.maxFetch()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "max must be 1-" + settings.maxFetch());
    }
    return asked.intValue();
  }

  public long fetchWaitMillis(Long asked) {
    long most = settings.maxFetchWait().toMillis();
    if (asked == null) {
      return 0;
    }
    if (asked < 0 || asked > most) {
      throw new ProtocolException(ErrorCode.BAD_TIMEOUT, "wait must be 0-" + most + " ms");
    }
    return asked;
  }

  private Job.Backoff backoff(JsonNode node) {
    if (!node.isObject()) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "backoff must be an object: {\"type\":\"fixed\"|\"exponential\",\"delay\":ms,\"jitter\":0-1}");
    }
    ObjectNode object = (ObjectNode) node;
    strict(object, BACKOFF_FIELDS, "backoff");
    Fields fields = new Fields(object, limits);
    String type = fields.text("type");
    if (!type.equals("fixed") && !type.equals("exponential")) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, "backoff type must be fixed or exponential");
    }
    long delay = millis(fields, "delay", 0);
    double jitter = 0;
    JsonNode j = object.get("jitter");
    if (j != null && !j.isNull()) {
      if (!j.isNumber() || j.asDouble() < 0 || j.asDouble() > 1) {
        throw new ProtocolException(ErrorCode.BAD_FIELD, "backoff jitter must be a number 0-1");
      }
      jitter = j.asDouble();
    }
    return new Job.Backoff(type, delay, jitter);
  }

  private static long millis(Fields fields, String field, long min) {
    long value = fields.number(field);
    if (value < min || value > MAX_MILLIS) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, field + " must be " + min + "-" + MAX_MILLIS + " ms (30 days)");
    }
    return value;
  }

  private static void strict(ObjectNode body, Set<String> allowed, String what) {
    for (Iterator<String> names = body.fieldNames(); names.hasNext(); ) {
      String name = names.next();
      if (!allowed.contains(name)) {
        throw new ProtocolException(ErrorCode.BAD_FIELD, what + " has no field '" + name + "' (fields: " + String.join(", ", allowed.stream().sorted().toList()) + ")");
      }
    }
  }

  /** A JSON value as text: null for absent or null, refused past {@code maxBytes} or with lone surrogates. */
  private static String json(String field, JsonNode value, int maxBytes) {
    if (value == null || value.isNull()) {
      return null;
    }
    String text;
    try {
      text = Codec.JSON.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new ProtocolException(ErrorCode.BAD_FIELD, field + " is not JSON");
    }
    if (!Text.isWellFormed(text)) {
      throw new ProtocolException(ErrorCode.BAD_TEXT, "field '" + field + "' holds a lone surrogate (not a Unicode string)");
    }
    if (Text.utf8Length(text) > maxBytes) {
      throw new ProtocolException(ErrorCode.BODY_TOO_LARGE, field + " is limited to " + maxBytes + " bytes of JSON");
    }
    return text;
  }

  private static String sha256(String text) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("Every Java platform has SHA-256", e);
    }
  }
}
