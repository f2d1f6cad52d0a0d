package parley.bench;

import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Collaborative editing, side by side: {@code --docs} documents with {@code --editors} editors
 * each, against a Parley node ({@code --target parley}) or bench/peers/sharedb-server.js
 * ({@code --target sharedb}). Every editor types at the same rate, stepped through {@code
 * --rates} (edits per second per editor) over the same connections; an edit is one character
 * typed at a random place, or deleted once the text passes 2,000 characters.
 *
 * <p>Each editor is a real OT client ({@link DocEditor}): one operation in flight, edits made
 * meanwhile composed into the buffer that goes next. So under load fewer operations than edits
 * reach the server: {@code edits_per_s} is what the editors typed, {@code ops_per_s} what the
 * server acknowledged. {@code ack} runs from an operation going on the wire to its
 * acknowledgement, {@code others} from the same moment to its arrival at each other editor.
 * The typing follows a fixed schedule (open loop); the one-in-flight rule, not the schedule,
 * is what holds the operations back, as it does for a person typing.
 *
 * <p>The step label carries the shape ({@code 1x20 rate=5}), so runs of several shapes compare
 * step by step. After the sweep a {@code capacity} row gives the most operations per second
 * acknowledged in a step with ack p99 within 50 ms ({@link Compare#CAPACITY_P99_MS}) and no error;
 * then the typing stops and every document's editors must hold the same text.
 */
final class DocumentsScenario implements Scenario {

  @Override
  public List<Result> run(Args args) throws Exception {
    String target = args.string("target", "parley");
    if (!target.equals("parley") && !target.equals("sharedb")) {
      throw new IllegalArgumentException("--target must be parley or sharedb, not " + target);
    }
    URI url = args.uri("url", target.equals("parley") ? "http://127.0.0.1:18280" : "http://127.0.0.1:18303");
    int docs = args.integer("docs", 1);
    int editors = args.integer("editors", 20);
    List<Integer> rates = args.integers("rates", List.of(5, 10, 20, 40, 80));
    Duration warmup = args.duration("warmup", Duration.ofSeconds(3));
    Duration seconds = args.duration("seconds", Duration.ofSeconds(15));
    Duration tail = args.duration("tail", Duration.ofSeconds(5));
    String run = args.runId();
    Usage usage = Usage.from(args);
    args.requireAllUsed();
    if (docs < 1 || editors < 2) {
      throw new IllegalArgumentException("--docs must be at least 1 and --editors at least 2");
    }

    String shape = docs + "x" + editors;
    EditMeter meter = new EditMeter();
    System.err.printf("docs: opening %d documents x %d editors on %s (%s)%n", docs, editors, url, target);
    List<List<DocEditor>> documents = new ArrayList<>();
    for (int d = 0; d < docs; d++) {
      String doc = "docs-" + run + "-" + d;
      documents.add(
          target.equals("parley")
              ? openParley(url, doc, editors, meter)
              : openShareDb(url, doc, editors, meter));
    }
    // Interleaved, so consecutive edits go to different documents and editors.
    List<DocEditor> typists = new ArrayList<>();
    for (int e = 0; e < editors; e++) {
      for (List<DocEditor> document : documents) {
        typists.add(document.get(e));
      }
    }

    List<Map<String, Object>> rows = new ArrayList<>();
    List<String> notes = new ArrayList<>();
    Schedule schedule =
        new Schedule(
            typists.size(),
            (due, i) -> {
              if (typists.get(i).edit(text -> DocumentBench.oneCharacter(text, ThreadLocalRandom.current()))) {
                meter.edited();
              }
            });
    Thread typing = new Thread(schedule, "bench-docs-typist");
    typing.start();
    try {
      for (int rate : rates) {
        String step = shape + " rate=" + rate;
        System.err.printf("docs: %s edits/s per editor (%d s warm-up, %d s measured)%n", rate, warmup.toSeconds(), seconds.toSeconds());
        schedule.rate(rate * typists.size());
        Thread.sleep(warmup.toMillis());
        meter.open();
        Usage.Window window = usage.start();
        Thread.sleep(seconds.toMillis());
        Map<String, Object> used = window.stop();
        meter.close();
        // The window's last operations are acknowledged a little later; typing goes on meanwhile.
        long deadline = System.nanoTime() + tail.toNanos();
        while (!meter.settled() && System.nanoTime() < deadline) {
          Thread.sleep(20);
        }
        EditMeter.Counts counts = meter.take();
        rows.add(row(step, seconds, counts, used));
        notes.addAll(notesOf(step, counts, schedule.worstLagMillis()));
      }
    } finally {
      schedule.stop();
      typing.join();
    }
    rows.add(capacity(shape + " capacity", rows));
    try {
      notes.addAll(convergence(documents, tail));
    } finally {
      documents.forEach(document -> document.forEach(DocEditor::close));
    }
    return List.of(new Result("docs", target, rows, notes));
  }

  private static List<DocEditor> openParley(URI url, String doc, int editors, EditMeter meter) throws Exception {
    List<String> users = new ArrayList<>();
    for (int e = 0; e < editors; e++) {
      users.add(doc + "-e" + e);
    }
    ParleyEditor.create(url, doc + "-owner", doc, users);
    List<CompletableFuture<DocEditor>> opening = new ArrayList<>();
    users.forEach(user -> opening.add(ParleyEditor.open(url, user, doc, meter)));
    return joined(opening);
  }

  private static List<DocEditor> openShareDb(URI url, String doc, int editors, EditMeter meter) throws Exception {
    // The first editor creates the document; the others subscribe to it once it exists.
    DocEditor first = ShareDbEditor.open(url, doc, true, meter).get(60, TimeUnit.SECONDS);
    List<CompletableFuture<DocEditor>> opening = new ArrayList<>();
    opening.add(CompletableFuture.completedFuture(first));
    for (int e = 1; e < editors; e++) {
      opening.add(ShareDbEditor.open(url, doc, false, meter));
    }
    return joined(opening);
  }

  private static List<DocEditor> joined(List<CompletableFuture<DocEditor>> opening) throws Exception {
    List<DocEditor> editors = new ArrayList<>();
    for (CompletableFuture<DocEditor> editor : opening) {
      editors.add(editor.get(60, TimeUnit.SECONDS));
    }
    return editors;
  }

  private static Map<String, Object> row(String step, Duration window, EditMeter.Counts counts, Map<String, Object> used) {
    double seconds = window.toMillis() / 1000.0;
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("step", step);
    row.put("edits_per_s", Numbers.round(counts.edits() / seconds, 0));
    row.put("ops_per_s", Numbers.round(counts.acknowledged() / seconds, 0));
    row.put("errors", counts.unacknowledged() + counts.resyncs() + counts.lost());
    row.put("resyncs", counts.resyncs());
    row.put("connections_lost", counts.lost());
    Numbers.latencies(row, "ack", counts.ackMicros());
    Numbers.latencies(row, "others", counts.othersMicros());
    row.putAll(used);
    // Operations per second of CPU spent by the server and its storage, as in fanout.
    double cpu = Compare.number(used.get("server_cpu_pct"), 0) + Compare.number(used.get("storage_cpu_pct"), 0);
    if (cpu > 0) {
      row.put("ops_per_cpu_s", Numbers.round(counts.acknowledged() / seconds / (cpu / 100), 0));
    }
    return row;
  }

  /**
   * The capacity row: the most operations per second acknowledged in a step whose ack p99
   * stayed within {@link Compare#CAPACITY_P99_MS} with no error; 0 if none did.
   */
  static Map<String, Object> capacity(String step, List<Map<String, Object>> rows) {
    double best = 0;
    for (Map<String, Object> row : rows) {
      double p99 = Compare.number(row.get("ack_p99_ms"), Double.MAX_VALUE);
      double errors = Compare.number(row.get("errors"), 1);
      if (p99 <= Compare.CAPACITY_P99_MS && errors == 0) {
        best = Math.max(best, Compare.number(row.get("ops_per_s"), 0));
      }
    }
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("step", step);
    row.put("ops_per_s_at_p99_50ms", Numbers.round(best, 0));
    return row;
  }

  private static List<String> notesOf(String step, EditMeter.Counts counts, long lagMillis) {
    List<String> notes = new ArrayList<>();
    if (counts.unacknowledged() > 0) {
      notes.add(step + ": " + counts.unacknowledged() + " of " + counts.submitted()
          + " operations were not acknowledged within the tail");
    }
    if (counts.resyncs() > 0) {
      notes.add(step + ": editors took the server's text again " + counts.resyncs() + " times, dropping their edits");
    }
    if (counts.lost() > 0) {
      notes.add(step + ": " + counts.lost() + " connections were lost"
          + " (Parley's editors reconnect; ShareDB's stop typing)");
    }
    if (lagMillis > 100) {
      notes.add(step + ": the typist fell up to " + lagMillis + " ms behind its schedule");
    }
    return notes;
  }

  /**
   * With the typing stopped, waits for every editor's edits to be acknowledged and its
   * document's editors to agree; a note for each document where they do not.
   */
  private static List<String> convergence(List<List<DocEditor>> documents, Duration patience)
      throws InterruptedException {
    long deadline = System.nanoTime() + patience.toNanos();
    List<String> notes = new ArrayList<>();
    for (int d = 0; d < documents.size(); d++) {
      List<DocEditor> editors = documents.get(d);
      while (!agree(editors) && System.nanoTime() < deadline) {
        Thread.sleep(50);
      }
      long pending = editors.stream().filter(DocEditor::pending).count();
      if (pending > 0) {
        notes.add("document " + d + ": " + pending + " editors still awaited acknowledgements after the"
            + " typing stopped; whether the editors converge was not checked");
      } else if (!agree(editors)) {
        notes.add("document " + d + " DIVERGED: its editors hold different texts");
      }
    }
    return notes;
  }

  private static boolean agree(List<DocEditor> editors) {
    Set<String> texts = new HashSet<>();
    for (DocEditor editor : editors) {
      if (editor.pending()) {
        return false;
      }
      texts.add(editor.text());
    }
    return texts.size() == 1;
  }
}
