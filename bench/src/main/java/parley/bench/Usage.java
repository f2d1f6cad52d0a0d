package parley.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * CPU and memory of the processes involved, over one measurement window: the server ({@code
 * --server-pid}), its storage if it has one ({@code --storage-pid}: the Cassandra a Parley
 * node journals to), and this load tool itself, which shares the machine's cores with them.
 * CPU is given in percent of one core (200 = both cores of a 2-core machine busy).
 */
final class Usage {

  private record Watched(String name, ProcessProbe probe) {}

  private static final ScheduledExecutorService SAMPLER =
      Executors.newSingleThreadScheduledExecutor(
          task -> {
            Thread thread = new Thread(task, "bench-rss-sampler");
            thread.setDaemon(true);
            return thread;
          });

  private final List<Watched> watched;

  private Usage(List<Watched> watched) {
    this.watched = watched;
  }

  /** Reads {@code --server-pid} and {@code --storage-pid}; an absent one is left out. */
  static Usage from(Args args) {
    long server = args.pid("server-pid");
    long storage = args.pid("storage-pid");
    List<Watched> list = new ArrayList<>();
    if (server > 0) {
      list.add(new Watched("server", new ProcessProbe(server)));
    }
    if (storage > 0) {
      list.add(new Watched("storage", new ProcessProbe(storage)));
    }
    list.add(new Watched("client", ProcessProbe.self()));
    return new Usage(List.copyOf(list));
  }

  /** The server's probe, if a server pid was given. */
  ProcessProbe server() {
    return watched.get(0).name().equals("server") ? watched.get(0).probe() : null;
  }

  /**
   * Waits until the server and its storage each use less than {@code cores} of a core over a
   * second (what a phase before left behind, such as journal writes, is done), or {@code atMost}.
   */
  void awaitQuiet(double cores, Duration atMost) throws InterruptedException {
    long deadline = System.nanoTime() + atMost.toNanos();
    List<ProcessProbe> probes = watched.stream().filter(w -> !w.name().equals("client")).map(Watched::probe).toList();
    while (System.nanoTime() < deadline) {
      long[] before = probes.stream().mapToLong(ProcessProbe::cpuNanos).toArray();
      Thread.sleep(1000);
      boolean quiet = true;
      for (int i = 0; i < probes.size(); i++) {
        quiet &= probes.get(i).cpuNanos() - before[i] < cores * 1e9;
      }
      if (quiet) {
        return;
      }
    }
  }

  /** Starts a window; its RSS is sampled every 500 ms for the peak. */
  Window start() {
    return new Window();
  }

  /** One measurement window; {@link #stop} gives its columns. */
  final class Window {
    private final long startNanos = System.nanoTime();
    private final long[] cpuAtStart = new long[watched.size()];
    private final long[] peakRss = new long[watched.size()];
    private final ScheduledFuture<?> sampling;

    private Window() {
      for (int i = 0; i < watched.size(); i++) {
        cpuAtStart[i] = watched.get(i).probe().cpuNanos();
      }
      sampling = SAMPLER.scheduleAtFixedRate(this::sample, 0, 500, TimeUnit.MILLISECONDS);
    }

    private synchronized void sample() {
      for (int i = 0; i < watched.size(); i++) {
        ProcessProbe probe = watched.get(i).probe();
        if (probe.alive()) {
          peakRss[i] = Math.max(peakRss[i], probe.rssBytes());
        }
      }
    }

    /** {@code <name>_cpu_pct} and {@code <name>_rss_mb} (peak) for every watched process. */
    Map<String, Object> stop() {
      sampling.cancel(false);
      sample();
      double seconds = (System.nanoTime() - startNanos) / 1e9;
      Map<String, Object> columns = new LinkedHashMap<>();
      synchronized (this) {
        for (int i = 0; i < watched.size(); i++) {
          Watched w = watched.get(i);
          double cpu = (w.probe().cpuNanos() - cpuAtStart[i]) / 1e9 / seconds * 100;
          columns.put(w.name() + "_cpu_pct", Numbers.round(cpu, 0));
          columns.put(w.name() + "_rss_mb", Numbers.round(peakRss[i] / 1048576.0, 0));
        }
      }
      return columns;
    }
  }
}
