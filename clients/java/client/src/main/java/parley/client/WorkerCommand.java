package parley.client;

import java.net.InetAddress;
import java.net.URI;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code ./parley worker}: a {@link JobWorker} in a process of its own (docs/jobs.md, "Running
 * workers as a process"). Options come from the command line or the environment; the worker
 * key only from the environment ({@code PARLEY_WORKER_KEY}), since a command line is visible to
 * every user of the machine. SIGTERM stops it gracefully (running jobs finish and report
 * first). A lost connection is opened again with backoff ({@link JobWorker#connect}); a first
 * connection that cannot be made, or a fetch refused for good, exits 1, for a supervisor to
 * start it again.
 */
public final class WorkerCommand {

  private static final Map<String, String> VARIABLES = Map.of(
      "url", "PARLEY_WORKER_URL",
      "queue", "PARLEY_WORKER_QUEUE",
      "concurrency", "PARLEY_WORKER_CONCURRENCY",
      "lease", "PARLEY_WORKER_LEASE",
      "handler", "PARLEY_WORKER_HANDLER",
      "name", "PARLEY_WORKER_NAME");

  private WorkerCommand() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> options;
    JobWorker.Handler handler;
    JobWorker.Options worker;
    String key = System.getenv("PARLEY_WORKER_KEY");
    try {
      options = options(args);
      if (key == null || key.isEmpty()) {
        throw new IllegalArgumentException("set PARLEY_WORKER_KEY to the nodes' worker key (parley.jobs.worker-key)");
      }
      handler = handler(options.get("handler"));
      worker = JobWorker.Options.of(options.getOrDefault("queue", "default"), number(options, "concurrency", 4))
          .withLease(Duration.ofMillis(number(options, "lease", 30_000)))
          .withName(options.getOrDefault("name", "parley-worker@" + InetAddress.getLocalHost().getHostName()));
    } catch (IllegalArgumentException e) {
      System.err.println("parley worker: " + e.getMessage());
      System.err.println("usage: parley worker [--url ws://host:8080/v1/ws] [--queue default] [--concurrency 4] [--lease 30000] [--handler class] [--name name]");
      System.exit(2);
      return;
    }
    URI url = URI.create(options.getOrDefault("url", "ws://127.0.0.1:8080/v1/ws"));

    JobWorker running;
    try {
      running = JobWorker.connect(url, key, worker, handler).get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      System.err.println("parley worker: cannot connect to " + url + ": " + (e.getCause() != null ? e.getCause().getMessage() : e));
      System.exit(1);
      return;
    }
    System.out.printf("parley worker: working on queue %s at %s, %d at a time%n", worker.queue(), url, worker.concurrency());
    AtomicBoolean asked = new AtomicBoolean();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      asked.set(true);
      running.stop().join();
      System.out.printf("parley worker: stopped; %d completed, %d failed, %d released%n", running.completed(), running.failed(), running.released());
    }, "parley-worker-stop"));
    running.stopped().join();
    if (!asked.get()) {
      // The worker stopped by itself (its fetch was refused for good), not because it was told to.
      System.err.println("parley worker: stopped by " + running.failure().map(ParleyException::getMessage).orElse("an unknown cause")
          + "; " + running.completed() + " completed, " + running.failed() + " failed");
      System.exit(1);
    }
  }

  private static Map<String, String> options(String[] args) {
    Map<String, String> options = new HashMap<>();
    VARIABLES.forEach((name, variable) -> {
      String value = System.getenv(variable);
      if (value != null && !value.isEmpty()) {
        options.put(name, value);
      }
    });
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (!arg.startsWith("--") || !VARIABLES.containsKey(arg.substring(2)) || i + 1 == args.length) {
        throw new IllegalArgumentException("unknown or incomplete option " + arg);
      }
      options.put(arg.substring(2), args[++i]);
    }
    return options;
  }

  private static int number(Map<String, String> options, String name, int fallback) {
    String value = options.get(name);
    try {
      return value == null ? fallback : Integer.parseInt(value);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--" + name + " must be a number, not " + value);
    }
  }

  private static JobWorker.Handler handler(String className) {
    if (className == null) {
      return new DemoJobHandler();
    }
    try {
      Object handler = Class.forName(className).getConstructor().newInstance();
      if (!(handler instanceof JobWorker.Handler h)) {
        throw new IllegalArgumentException(className + " is not a parley.client.JobWorker.Handler");
      }
      return h;
    } catch (ReflectiveOperationException e) {
      throw new IllegalArgumentException("cannot create handler " + className + " (a public class with a public no-argument constructor, on the class path): " + e);
    }
  }
}
