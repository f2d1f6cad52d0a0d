package parley.jobs.export;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.pattern.Patterns;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import parley.chat.handler.ChatHandler;
import parley.chat.handler.ChatPushes;
import parley.chat.room.RoomEntity;
import parley.chat.room.TimelineEvent;
import parley.jobs.Job;
import parley.jobs.JobService;
import parley.jobs.queue.QueuePartition;
import parley.protocol.Codec;

/**
 * The node's own export workers: each fetches one export job at a time from the export queue
 * through {@link JobService}, the same fetch, lease, extend, progress, complete and fail calls
 * (and so the same concurrency and rate limits) as any external worker, and runs it: reads the
 * room's timeline page by page through the room's catch-up read path (as the requester, so a
 * member who left can no longer export), writes it as JSON lines in chunks to the
 * {@code exports} table, reports progress, and completes with a result naming the export.
 *
 * <p>Memory per export is one page of events and one chunk, whatever the room's size.
 * Execution is at least once: an attempt that loses its lease stops and removes its rows; the
 * next attempt writes an export of its own (a new export id).
 */
public final class ExportWorker {

  private static final Logger log = LoggerFactory.getLogger(ExportWorker.class);

  /** How long one fetch waits for an export to come before asking again. */
  private static final Duration FETCH_WAIT = Duration.ofSeconds(25);
  /** The pause after a fetch failed (a partition moving), so a worker never spins. */
  private static final Duration RETRY_PAUSE = Duration.ofSeconds(1);

  private final ActorSystem<?> system;
  private final JobService jobs;
  private final ExportSettings settings;
  private final ExportStore store;
  private final ClusterSharding sharding;
  private final Duration askTimeout;
  private final Executor executor;
  private final AtomicBoolean stopped = new AtomicBoolean();

  private ExportWorker(ActorSystem<?> system, JobService jobs, ExportSettings settings, ExportStore store, Duration askTimeout) {
    this.system = system;
    this.jobs = jobs;
    this.settings = settings;
    this.store = store;
    this.sharding = ClusterSharding.get(system);
    this.askTimeout = askTimeout;
    this.executor = system.executionContext();
  }

  /** Starts {@code settings.workers()} workers; they stop fetching when the node shuts down. */
  public static void start(ActorSystem<?> system, JobService jobs, ExportSettings settings, ExportStore store, Duration askTimeout) {
    ExportWorker worker = new ExportWorker(system, jobs, settings, store, askTimeout);
    CoordinatedShutdown.get(system).addTask(CoordinatedShutdown.PhaseBeforeServiceUnbind(), "stop-export-workers", () -> {
      worker.stopped.set(true);
      return CompletableFuture.completedFuture(Done.getInstance());
    });
    for (int i = 0; i < settings.workers(); i++) {
      worker.fetchNext("export@" + system.address().hostPort() + "#" + i);
    }
  }

  private void fetchNext(String name) {
    if (stopped.get()) {
      return;
    }
    jobs.fetch(settings.queue(), name, 1, settings.lease().toMillis(), FETCH_WAIT).whenCompleteAsync((leased, failure) -> {
      if (stopped.get()) {
        return;
      }
      if (failure != null) {
        later(() -> fetchNext(name));
      } else if (leased.isEmpty()) {
        fetchNext(name);
      } else {
        new Attempt(leased.get(0)).run().whenCompleteAsync((done, broken) -> {
          if (broken != null) {
            log.warn("Export {} broke: {}", leased.get(0).id(), broken.toString());
          }
          fetchNext(name);
        }, executor);
      }
    }, executor);
  }

  private void later(Runnable what) {
    Patterns.after(RETRY_PAUSE, system.classicSystem().scheduler(), system.executionContext(), () -> {
      what.run();
      return CompletableFuture.completedFuture(Done.getInstance());
    });
  }

  /** Thrown to end an attempt: {@code error} is what the job records (null: the lease is lost, report nothing). */
  private static final class Stop extends RuntimeException {
    final String error;

    Stop(String error) {
      super(error == null ? "lease lost" : error, null, false, false);
      this.error = error;
    }
  }

  /** One attempt at one export job, under the lease it was fetched with. */
  private final class Attempt {
    private final Job job;
    private final String leaseId;
    private final String room;
    private final String user;
    private final String exportId = UUID.randomUUID().toString();
    /** The last timeline position exported: the room's head when the export started. */
    private long upTo = -1;
    private long next = 1;
    private long lines;
    private long bytes;
    private int chunks;
    private final ArrayDeque<Chunk> full = new ArrayDeque<>();
    private StringBuilder buffer = new StringBuilder();
    private int bufferLines;
    private int bufferBytes;
    private long lastReport = System.nanoTime();
    private long lastExtend = System.nanoTime();

    Attempt(Job job) {
      this.job = job;
      this.leaseId = job.lease().id();
      this.user = job.submitter();
      this.room = roomOf(job);
    }

    CompletionStage<Void> run() {
      if (room == null || user == null) {
        return finish(new Stop("bad_field: an export job needs data {\"room\":…} and a submitter"));
      }
      return page().handle((ok, failure) -> failure).thenCompose(failure -> failure == null ? done() : finish(failure));
    }

    /** Reads the next page after what was exported, writes what filled up, reports, and goes on. */
    private CompletionStage<Void> page() {
      long to = upTo < 0 ? Long.MAX_VALUE : upTo;
      return ChatHandler.plain(
              sharding.entityRefFor(RoomEntity.ENTITY_KEY, room).<RoomEntity.EventsReply>ask(
                  replyTo -> new RoomEntity.GetEvents(user, next, to, settings.pageSize(), replyTo), askTimeout),
              executor)
          .thenComposeAsync(reply -> {
            if (reply instanceof RoomEntity.Rejected rejected) {
              throw new Stop(rejected.code() + ": " + rejected.message());
            }
            RoomEntity.Events events = (RoomEntity.Events) reply;
            if (upTo < 0) {
              upTo = events.lastSeq();
            }
            for (TimelineEvent event : events.events()) {
              add(event);
            }
            boolean last = events.events().isEmpty() || next > upTo;
            if (last) {
              seal();
            }
            return writeFull().thenCompose(written -> last ? CompletableFuture.completedFuture(null) : report().thenCompose(reported -> page()));
          }, executor);
    }

    private void add(TimelineEvent event) {
      String line = line(event);
      int size = line.getBytes(StandardCharsets.UTF_8).length;
      buffer.append(line);
      bufferLines++;
      bufferBytes += size;
      lines++;
      bytes += size;
      next = event.seq() + 1;
      if (bufferBytes >= settings.chunkBytes()) {
        seal();
      }
    }

    /** The buffered lines become the next chunk to write. */
    private void seal() {
      if (bufferLines > 0) {
        full.add(new Chunk(chunks++, bufferLines, buffer.toString()));
        buffer = new StringBuilder();
        bufferLines = 0;
        bufferBytes = 0;
      }
    }

    private CompletionStage<Void> writeFull() {
      Chunk chunk = full.poll();
      if (chunk == null) {
        return CompletableFuture.completedFuture(null);
      }
      return store.write(exportId, chunk.index(), chunk.lines(), chunk.data()).thenCompose(written -> writeFull());
    }

    /** Progress at most every progress-interval, and the lease extended well before it ends. */
    private CompletionStage<Void> report() {
      long now = System.nanoTime();
      CompletionStage<Void> extended = CompletableFuture.completedFuture(null);
      if (now - lastExtend >= settings.lease().toNanos() / 3) {
        lastExtend = now;
        extended = checked(jobs.extend(job.id(), leaseId, settings.lease().toMillis()));
      }
      if (now - lastReport < settings.progressInterval().toNanos()) {
        return extended;
      }
      lastReport = now;
      ObjectNode progress = Codec.JSON.createObjectNode()
          .put("lines", lines).put("total", upTo).put("pct", upTo <= 0 ? 100 : (int) (lines * 100 / upTo));
      return extended.thenCompose(ok -> checked(jobs.progress(job.id(), leaseId, progress.toString())));
    }

    private CompletionStage<Void> done() {
      ObjectNode result = Codec.JSON.createObjectNode()
          .put("export", exportId).put("room", room).put("lines", lines).put("bytes", bytes).put("chunks", chunks).put("lastSeq", upTo)
          .put("contentType", "application/x-ndjson").put("url", "/v1/jobs/" + job.id() + "/result");
      return jobs.complete(job.id(), leaseId, result.toString()).thenCompose(answer -> {
        if (answer instanceof QueuePartition.Done) {
          log.info("Export {} of room {} for {}: {} lines, {} bytes in {} chunks", job.id(), room, user, lines, bytes, chunks);
          return CompletableFuture.completedFuture(null);
        }
        if (answer instanceof QueuePartition.Refused refused && QueuePartition.LEASE_LOST.equals(refused.code())) {
          // Another attempt holds the job now (or it was cancelled): these rows are nobody's.
          return store.delete(exportId, chunks).thenApply(deleted -> (Void) null);
        }
        // No answer in time: the completion may still have been journaled, so the rows stay
        // (the retention removes them if it was not).
        return CompletableFuture.completedFuture(null);
      });
    }

    /** Ends the attempt: the job records the error (unless the lease is gone) and the rows go. */
    private CompletionStage<Void> finish(Throwable failure) {
      Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
      String error = cause instanceof Stop stop ? stop.error : "unavailable: " + cause;
      CompletionStage<?> reported = error == null
          ? CompletableFuture.completedFuture(null)
          : jobs.fail(job.id(), leaseId, error.length() > 1000 ? error.substring(0, 1000) : error);
      return reported.thenCompose(r -> store.delete(exportId, chunks)).handle((ok, broken) -> (Void) null);
    }

    /** A report's answer: going on if it was taken; a lost lease (or a job gone) ends the attempt. */
    private CompletionStage<Void> checked(CompletionStage<QueuePartition.Answer> answer) {
      return answer.thenApply(a -> {
        if (a instanceof QueuePartition.Refused refused && !QueuePartition.UNAVAILABLE.equals(refused.code())) {
          throw new Stop(null);
        }
        return null;
      });
    }
  }

  private record Chunk(int index, int lines, String data) {}

  /** One line of the export: the event as {@code history} returns it, then a newline. */
  private static String line(TimelineEvent event) {
    try {
      return Codec.JSON.writeValueAsString(ChatPushes.event(event)) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String roomOf(Job job) {
    try {
      JsonNode data = job.data() == null ? null : Codec.JSON.readTree(job.data());
      return data != null && data.path("room").isTextual() ? data.get("room").asText() : null;
    } catch (JsonProcessingException e) {
      return null;
    }
  }
}
