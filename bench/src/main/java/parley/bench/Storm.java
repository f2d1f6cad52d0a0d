package parley.bench;

import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import java.util.function.Predicate;
import parley.client.ParleyClient;
import parley.client.Sent;

/**
 * The reconnect storm (issue 15): N clients connected to one node of a running cluster, each
 * following a room, lose that node to SIGKILL and reconnect to the others with jittered
 * backoff, resuming from the last seq they saw. A writer on a surviving node keeps sending
 * into every room throughout. Reported: how long until every client is connected again, has
 * resumed, and has every message sent before and during the storm, and how many seqs were
 * missed or delivered twice (both must be 0).
 *
 * <p>With {@code --residents N}, each survivor serves N clients of its own first, as the nodes
 * of a cluster in service do: they join the rooms, close and come back {@code
 * --resident-rounds} times, and stay connected through the storm. Without them the survivors
 * meet the storm having served no client at all, their code paths not yet compiled.
 *
 * <p>Needs a cluster whose first {@code --urls} node is the victim ({@code --victim-pid}); the
 * rest must survive. {@code bench/run storm} starts one with {@code deploy/local-cluster.sh}.
 */
final class Storm implements Scenario {

  @Override
  public List<Result> run(Args args) throws Exception {
    List<URI> nodes = new ArrayList<>();
    for (String url : args.string("urls", "http://127.0.0.2:8080,http://127.0.0.3:8080,http://127.0.0.4:8080").split(",")) {
      nodes.add(URI.create(url.trim()));
    }
    long victimPid = args.pid("victim-pid");
    int count = args.integer("connections", 10000);
    int roomCount = args.integer("rooms", 100);
    int concurrency = args.integer("connect-concurrency", 32);
    int residents = args.integer("residents", 0);
    int residentRounds = args.integer("resident-rounds", 3);
    Duration residentSleep = args.duration("resident-sleep", Duration.ZERO);
    Duration firstDelay = args.duration("backoff", Duration.ofMillis(500));
    Duration maxDelay = args.duration("max-backoff", Duration.ofSeconds(8));
    Duration deadline = args.duration("deadline", Duration.ofSeconds(300));
    String run = args.runId();
    Usage usage = Usage.from(args);
    args.requireAllUsed();
    if (victimPid <= 0 || nodes.size() < 2) {
      throw new IllegalArgumentException("storm needs --victim-pid (the first of --urls) and at least one more node");
    }
    URI victim = nodes.get(0);
    List<URI> survivors = nodes.subList(1, nodes.size());

    ParleyClient.Options options = ParleyClient.Options.defaults().withPushBuffer(0).withRequestTimeout(Duration.ofSeconds(10));
    URI writerWs = Target.webSocketOf(survivors.get(0));
    List<String> rooms = new ArrayList<>();
    for (int r = 0; r < roomCount; r++) {
      rooms.add("storm-" + run + "-" + r);
    }
    try (ParleyClient writer = ParleyClient.connect(writerWs, ParleyClient.devToken(survivors.get(0), "storm-" + run + "-writer"), options)
        .get(30, TimeUnit.SECONDS)) {
      for (String room : rooms) {
        writer.createRoom(room, "public", "storm").get(30, TimeUnit.SECONDS);
      }

      List<StormClient> residing = serveResidents(survivors, rooms, residents, residentRounds, residentSleep, concurrency, run);

      System.err.printf("storm: connecting %d clients to %s, %d per room%n", count, victim, count / roomCount);
      List<StormClient> clients = new ArrayList<>(count);
      long opening = System.nanoTime();
      inTurn(count, concurrency, i -> {
        String user = "storm-" + run + "-" + i;
        StormClient client = new StormClient(user, ParleyClient.devToken(victim, user), rooms.get(i % roomCount));
        clients.add(client);
        return client.start(victim);
      });
      double openSeconds = (System.nanoTime() - opening) / 1e9;
      System.err.printf("storm: %d clients joined in %.1f s%n", count, openSeconds);

      Map<String, Long> lastSent = new ConcurrentHashMap<>();
      for (String room : rooms) {
        lastSent.put(room, writer.send(room, "pre-" + room, "before").get(30, TimeUnit.SECONDS).seq());
      }
      await(clients, c -> c.lastSeq() >= lastSent.get(c.room()), Duration.ofSeconds(60), "every client saw the message before the kill");
      StormClient.Reconnect plan = new StormClient.Reconnect(survivors, firstDelay.toMillis(), maxDelay.toMillis());
      for (StormClient client : clients) {
        client.resetCounts();
        client.reconnectTo(plan);
      }

      Usage.Window window = usage.start();
      long killedAt = System.nanoTime();
      ProcessHandle.of(victimPid).orElseThrow(() -> new IllegalStateException("no process " + victimPid)).destroyForcibly();
      System.err.printf("storm: killed %d (%s)%n", victimPid, victim);

      // The writer goes on while the storm lasts: one message a second into every room, each
      // retried with its clientMsgId until acknowledged (a room on the dead node waits).
      Thread writing = new Thread(() -> writeUntilInterrupted(writer, rooms, lastSent), "storm-writer");
      writing.start();
      await(clients, c -> c.resumedAt() > killedAt, deadline, "every client resumed on a surviving node");
      long allResumed = System.nanoTime();
      writing.interrupt();
      writing.join();
      sendToEvery(writer, rooms, "post", "after", lastSent);
      await(clients, c -> c.lastSeq() >= lastSent.get(c.room()), Duration.ofSeconds(120), "every client has every message");
      long allCaughtUp = System.nanoTime();
      Map<String, Object> cpu = window.stop();

      List<Long> welcomed = new ArrayList<>();
      List<Long> resumed = new ArrayList<>();
      List<Long> waits = new ArrayList<>();
      long pendingResumes = 0;
      long gaps = 0;
      long duplicates = 0;
      long reconnectAttempts = 0;
      for (StormClient client : clients) {
        welcomed.add(client.welcomedAt() - killedAt);
        resumed.add(client.resumedAt() - killedAt);
        waits.add(client.resumedAt() - client.welcomedAt());
        pendingResumes += client.pending() ? 1 : 0;
        gaps += client.gaps();
        duplicates += client.duplicates();
        reconnectAttempts += client.reconnects();
      }
      welcomed.sort(null);
      resumed.sort(null);
      waits.sort(null);
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("connections", count);
      row.put("rooms", roomCount);
      row.put("first_open_per_s", Numbers.round(count / openSeconds, 0));
      row.put("reconnected_p50_s", seconds(welcomed.get(count / 2)));
      row.put("reconnected_all_s", seconds(welcomed.get(count - 1)));
      row.put("resumed_p50_s", seconds(resumed.get(count / 2)));
      row.put("resumed_p90_s", seconds(resumed.get(count * 9 / 10)));
      row.put("resumed_all_s", seconds(allResumed - killedAt));
      // From the welcome of the connection that resumed to its resume: what the node took.
      row.put("resume_wait_p50_s", seconds(waits.get(count / 2)));
      row.put("resume_wait_p90_s", seconds(waits.get(count * 9 / 10)));
      row.put("resume_wait_max_s", seconds(waits.get(count - 1)));
      row.put("pending_resumes", pendingResumes);
      row.put("caught_up_all_s", seconds(allCaughtUp - killedAt));
      row.put("reopen_per_s", Numbers.round(count / ((allResumed - killedAt) / 1e9), 0));
      row.put("connect_attempts", reconnectAttempts);
      row.put("missed_seqs", gaps);
      row.put("duplicate_seqs", duplicates);
      row.putAll(cpu);
      List<String> notes = new ArrayList<>();
      notes.add("clients resumed per second after the kill: " + perSecond(resumed));
      if (gaps > 0 || duplicates > 0) {
        notes.add("clients missed " + gaps + " seqs and got " + duplicates + " twice: a resume guarantee failed");
      }
      clients.addAll(residing);
      CompletableFuture.allOf(clients.stream().map(StormClient::close).toArray(CompletableFuture[]::new)).join();
      return List.of(new Result("storm", "parley", List.of(row), notes));
    }
  }

  /**
   * {@code perNode} clients on each survivor join the rooms, then close and resume {@code
   * rounds} times; they are left connected. With a {@code sleep} longer than the nodes'
   * passivation, the first resume comes after their user entities were passivated, so the
   * survivors recover entities from the journal, as nodes in service do all day.
   */
  private static List<StormClient> serveResidents(List<URI> survivors, List<String> rooms, int perNode, int rounds, Duration sleep, int concurrency, String run)
      throws InterruptedException {
    List<StormClient> residents = new ArrayList<>();
    if (perNode == 0) {
      return residents;
    }
    long started = System.nanoTime();
    int count = perNode * survivors.size();
    IntFunction<URI> home = i -> survivors.get(i % survivors.size());
    inTurn(count, concurrency, i -> {
      String user = "storm-" + run + "-resident-" + i;
      StormClient client = new StormClient(user, ParleyClient.devToken(home.apply(i), user), rooms.get(i % rooms.size()));
      residents.add(client);
      return client.start(home.apply(i));
    });
    for (int round = 0; round < rounds; round++) {
      CompletableFuture.allOf(residents.stream().map(StormClient::close).toArray(CompletableFuture[]::new)).join();
      if (round == 0 && !sleep.isZero()) {
        System.err.printf("storm: residents away for %d s, so their entities are passivated%n", sleep.toSeconds());
        Thread.sleep(sleep.toMillis());
      }
      inTurn(count, concurrency, i -> residents.get(i).resume(home.apply(i)));
    }
    System.err.printf("storm: %d residents on %d survivors joined and came back %d times in %.1f s%n",
        residents.size(), survivors.size(), rounds, (System.nanoTime() - started) / 1e9);
    return residents;
  }

  private static void writeUntilInterrupted(ParleyClient writer, List<String> rooms, Map<String, Long> lastSent) {
    try {
      for (int round = 1; !Thread.currentThread().isInterrupted(); round++) {
        sendToEvery(writer, rooms, "during-" + round, "during", lastSent);
        Thread.sleep(1000);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** One message into every room at once, each retried until acknowledged; waits for all. */
  private static void sendToEvery(ParleyClient writer, List<String> rooms, String prefix, String body, Map<String, Long> lastSent) {
    CompletableFuture.allOf(rooms.stream()
            .map(room -> sendUntilAcked(writer, room, prefix + "-" + room, body, 60)
                .thenAccept(seq -> lastSent.merge(room, seq, Math::max)))
            .toArray(CompletableFuture[]::new))
        .join();
  }

  /**
   * Sends until acknowledged (a room on the dead node times out or is unavailable until its
   * shard has moved); the same clientMsgId makes a retry land once.
   */
  private static CompletableFuture<Long> sendUntilAcked(ParleyClient writer, String room, String clientMsgId, String body, int attempts) {
    return writer.send(room, clientMsgId, body)
        .thenApply(Sent::seq)
        .exceptionallyCompose(failure -> attempts > 1
            ? sendUntilAcked(writer, room, clientMsgId, body, attempts - 1)
            : CompletableFuture.failedFuture(failure));
  }

  private static void await(List<StormClient> clients, Predicate<StormClient> done, Duration timeout, String what)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long missing = clients.stream().filter(done.negate()).count();
      if (missing == 0) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(what + ": not within " + timeout + "; " + missing + " clients still waiting");
      }
      Thread.sleep(100);
    }
  }

  /**
   * Runs {@code step} for 0 to {@code count - 1}, at most {@code concurrency} unfinished at once
   * and each within 60 s, and waits for all of them.
   */
  private static void inTurn(int count, int concurrency, IntFunction<CompletableFuture<Void>> step) throws InterruptedException {
    Semaphore slots = new Semaphore(concurrency);
    List<CompletableFuture<Void>> steps = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      slots.acquire();
      steps.add(step.apply(i).orTimeout(60, TimeUnit.SECONDS).whenComplete((ok, failure) -> slots.release()));
    }
    CompletableFuture.allOf(steps.toArray(CompletableFuture[]::new)).join();
  }

  /** How many of the sorted times fall in each whole second: the storm's shape. */
  private static String perSecond(List<Long> sorted) {
    int last = (int) (sorted.get(sorted.size() - 1) / 1_000_000_000L);
    int[] counts = new int[last + 1];
    sorted.forEach(t -> counts[(int) Math.max(0, t / 1_000_000_000L)]++);
    return Arrays.toString(counts);
  }

  private static Number seconds(long nanos) {
    return Numbers.round(nanos / 1e9, 2);
  }
}
