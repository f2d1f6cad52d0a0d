package parley.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The load tool's command line: {@code bench <scenario> [--option value]...} drives a running
 * server through its public protocol, prints what it measured as a table and, with {@code
 * --out}, writes it as JSON; {@code bench compare <file>...} sets Parley's results beside the
 * peers' (docs/benchmarks.md). bench/run runs the whole comparison.
 */
public final class Bench {

  static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** What a result file holds: the run's context, then its results. */
  record Recorded(
      String scenario,
      String startedAt,
      Map<String, Object> environment,
      Map<String, Object> options,
      List<Result> results) {}

  private Bench() {}

  public static void main(String[] argv) throws Exception {
    if (argv.length == 0 || argv[0].equals("--help")) {
      usage();
      return;
    }
    if (argv[0].equals("compare")) {
      Compare.print(List.of(argv).subList(1, argv.length));
      return;
    }
    Args args = Args.parse(argv, 1);
    if (List.of(argv).contains("--ws-port")) {
      Target.websocketPort(args.integer("ws-port", 0));
    }
    String out = args.string("out", "");
    Map<String, Object> before = Machine.describe();
    Instant started = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    List<Result> results = scenario(argv[0]).run(args);
    Map<String, Object> environment = new LinkedHashMap<>(before);
    environment.put("loadavg_after", Machine.loadAverage());
    Map<String, Object> options = args.used();
    options.remove("out");
    for (Result result : results) {
      System.out.println(table(result));
    }
    if (!out.isEmpty()) {
      Path file = Path.of(out);
      if (file.getParent() != null) {
        Files.createDirectories(file.getParent());
      }
      JSON.writeValue(
          file.toFile(), new Recorded(argv[0], started.toString(), environment, options, results));
      System.err.println("bench: wrote " + file);
    }
    // The JDK's HTTP client keeps non-daemon threads; the run is over.
    System.exit(0);
  }

  private static Scenario scenario(String name) {
    return switch (name) {
      case "fanout" -> new Fanout();
      case "connections" -> new Connections();
      case "storm" -> new Storm();
      case "durable-writes" -> new DurableWrites();
      case "catchup" -> new Catchup();
      case "docs" -> new DocumentsScenario();
      case "jobs" -> new Jobs();
      case "recoveries" -> new Recoveries();
      default -> {
        usage();
        throw new IllegalArgumentException("unknown scenario '" + name + "'");
      }
    };
  }

  /** A plain-text table: one line per row, one column per key any row has. */
  static String table(Result result) {
    Set<String> columns = new LinkedHashSet<>();
    result.rows().forEach(row -> columns.addAll(row.keySet()));
    List<List<String>> cells = new ArrayList<>();
    cells.add(new ArrayList<>(columns));
    for (Map<String, Object> row : result.rows()) {
      List<String> line = new ArrayList<>();
      columns.forEach(c -> line.add(String.valueOf(row.getOrDefault(c, ""))));
      cells.add(line);
    }
    int[] widths = new int[columns.size()];
    for (List<String> line : cells) {
      for (int i = 0; i < line.size(); i++) {
        widths[i] = Math.max(widths[i], line.get(i).length());
      }
    }
    StringBuilder text = new StringBuilder();
    text.append("== ").append(result.scenario()).append(" / ").append(result.target()).append('\n');
    for (List<String> line : cells) {
      for (int i = 0; i < line.size(); i++) {
        text.append(i == 0 ? "" : "  ").append(" ".repeat(widths[i] - line.get(i).length())).append(line.get(i));
      }
      text.append('\n');
    }
    result.notes().forEach(note -> text.append("note: ").append(note).append('\n'));
    return text.toString();
  }

  private static void usage() {
    System.err.println(
        """
        usage: bench <scenario> [--option value]... [--out result.json]
               bench compare <result.json>...

        scenarios (options with their defaults; see docs/benchmarks.md):
          fanout          --target parley|parley-netty|socketio|ws --url http://127.0.0.1:18280 --rooms 1
                          --members 100 --publishers <members> --rates 1000[,2000,...] --size 100
                          --warmup 5 --duration 20 --tail 5 --server-pid --storage-pid
          connections     --target parley|parley-netty|socketio|ws|pekko-echo --url --connections 5000
                          --settle 55 --server-pid --ws-port (parley-netty: the node's WebSocket port)
                          --returning none|awake|asleep --tokens fresh|kept --connect-concurrency 32
                          --warmup-connections 500 --cassandra (reads and writes per open)
          storm           --urls http://127.0.0.2:8080,http://127.0.0.3:8080,http://127.0.0.4:8080
                          --victim-pid <pid of the first url's node> --connections 10000 --rooms 100
                          --backoff 500ms --max-backoff 8s --deadline 300s --server-pid
                          --ws-port (0: /v1/ws on each node's client port; else its WebSocket port)
                          --residents 0 (clients of each survivor's own) --resident-rounds 3
                          --resident-sleep 0s (away after joining; past passivation: recoveries)
          durable-writes  --target parley|parley-netty --url --rooms 100 --in-flight 4 --size 100
                          --warmup 5 --duration 20 --cassandra 127.0.0.1:39142 --server-pid
                          --storage-pid --ws-port (parley-netty: the node's WebSocket port)
          catchup         --url --missed 10000 --repeats 5 --size 100
          docs            --target parley|sharedb --url http://127.0.0.1:18280 (sharedb: 18303)
                          --docs 1 --editors 20 --rates 5,10,20,40,80 (edits/s per editor)
                          --warmup 3 --seconds 15 --tail 5 --server-pid --storage-pid
          jobs            --url --queue bench --server-key --worker-key --workers 4 --concurrency 16
                          --in-flight 64 --backlog 1000 --rates 0[,<jobs/s>...] (0: as fast as
                          it goes) --warmup 5 --duration 20 --drain 120 --server-pid --storage-pid
                          (BullMQ: node bench/peers/bullmq-jobs.js, same options)
          recoveries      --count 5000 --concurrency 32 --warmup 5000 --cassandra 127.0.0.1:39142
                          --storage-pid (Cassandra alone: the journal plugin's recovery queries)
        """);
  }

  static Map<String, Object> recordedOf(Path file) throws IOException {
    @SuppressWarnings("unchecked")
    Map<String, Object> recorded = JSON.readValue(file.toFile(), Map.class);
    return recorded;
  }
}
