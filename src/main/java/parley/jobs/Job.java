package parley.jobs;

import parley.serialization.CborSerializable;

/**
 * One job as its partition holds it: what was asked, where it stands, and its version (one
 * more with every journaled transition, the ETag of {@code GET /v1/jobs/{id}}).
 *
 * <p>{@code data}, {@code progress} and {@code result} are JSON texts, checked at the edge and
 * stored as they came. Times are epoch milliseconds; 0 means "not yet".
 *
 * @param seq the order of submission within the partition: among jobs of equal priority the
 *     earlier goes first
 * @param digest what the submission asked for, to tell an exact repeat of an Idempotency-Key
 *     from a different request that reuses it
 */
public record Job(
    String id,
    String queue,
    String submitter,
    String data,
    int priority,
    long runAt,
    int attempts,
    int attemptsMade,
    Backoff backoff,
    long timeoutMs,
    String key,
    Status status,
    String progress,
    String result,
    String error,
    Lease lease,
    long version,
    long createdAt,
    long startedAt,
    long finishedAt,
    long seq,
    String digest)
    implements CborSerializable {

  public enum Status {
    /** Waiting for a worker; "delayed" on the wire while {@code runAt} is in the future. */
    WAITING,
    /** Leased by a worker. */
    ACTIVE,
    COMPLETED,
    /** Failed for good: its last attempt failed and none is left (the dead-letter view). */
    FAILED,
    CANCELLED;

    public boolean finished() {
      return this == COMPLETED || this == FAILED || this == CANCELLED;
    }
  }

  /**
   * How long to wait before retrying a failed attempt: {@code delayMs} each time ({@code fixed})
   * or doubled after each failure ({@code exponential}), less a random part of up to
   * {@code jitter} of it so that many jobs failed together do not retry together.
   */
  public record Backoff(String type, long delayMs, double jitter) implements CborSerializable {
    public static final Backoff NONE = new Backoff("fixed", 0, 0);
    /** The longest wait a retry is given, whatever the backoff. */
    public static final long MAX_DELAY_MS = 24 * 3600_000L;

    /** The wait before the retry after {@code failures} failed attempts, {@code random} in [0, 1). */
    public long delayAfter(int failures, double random) {
      double delay = "exponential".equals(type) ? delayMs * Math.pow(2, Math.max(0, failures - 1)) : delayMs;
      delay = Math.min(delay, MAX_DELAY_MS);
      return (long) (delay - delay * jitter * random);
    }
  }

  /**
   * A worker's hold on the job until {@code deadline}. {@code id} names this attempt: a report
   * that names another lease is refused ({@code lease_lost}).
   */
  public record Lease(String id, String worker, long deadline) implements CborSerializable {}

  /** Whether {@code leaseId} is the job's current lease. */
  public boolean leasedBy(String leaseId) {
    return status == Status.ACTIVE && lease != null && lease.id().equals(leaseId);
  }

  /** The wire name of the job's state at {@code now}. */
  public String state(long now) {
    if (status == Status.WAITING && runAt > now) {
      return "delayed";
    }
    return status.name().toLowerCase(java.util.Locale.ROOT);
  }

  public boolean live() {
    return !status.finished();
  }

  Job next(Status status, String progress, String result, String error, Lease lease, long runAt, int attemptsMade, long startedAt, long finishedAt) {
    return new Job(
        id, queue, submitter, data, priority, runAt, attempts, attemptsMade, backoff, timeoutMs, key,
        status, progress, result, error, lease, version + 1, createdAt, startedAt, finishedAt, seq, digest);
  }

  /** Leased to a worker until {@code deadline}. */
  public Job leased(Lease lease, long at) {
    return next(Status.ACTIVE, progress, result, null, lease, runAt, attemptsMade, at, 0);
  }

  public Job extended(long deadline) {
    return next(status, progress, result, error, new Lease(lease.id(), lease.worker(), deadline), runAt, attemptsMade, startedAt, finishedAt);
  }

  public Job progressed(String progress) {
    return next(status, progress, result, error, lease, runAt, attemptsMade, startedAt, finishedAt);
  }

  public Job completed(String result, long at) {
    return next(Status.COMPLETED, progress, result, null, null, runAt, attemptsMade + 1, startedAt, at);
  }

  /**
   * The attempt ended without a result ({@code error}): back to waiting until {@code retryAt},
   * or failed for good when {@code retryAt} is negative.
   */
  public Job attemptFailed(String error, long at, long retryAt) {
    return retryAt < 0
        ? next(Status.FAILED, progress, null, error, null, runAt, attemptsMade + 1, startedAt, at)
        : next(Status.WAITING, progress, null, error, null, retryAt, attemptsMade + 1, startedAt, 0);
  }

  public Job cancelled(long at) {
    return next(Status.CANCELLED, progress, null, error, null, runAt, attemptsMade, startedAt, at);
  }

  /** Whether a failed attempt now would leave another to try. */
  public boolean attemptsLeftAfterThis() {
    return attemptsMade + 1 < attempts;
  }
}
