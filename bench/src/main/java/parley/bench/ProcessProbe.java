package parley.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads what a process costs from outside it: CPU time and resident memory from {@code
 * /proc/<pid>} (Linux), and, for a JVM, its heap through {@code jcmd}. Nothing in the measured
 * server needs to cooperate, so Parley and the Node.js peers are measured the same way.
 */
final class ProcessProbe {

  /** Kernel clock ticks per second, the unit of utime and stime in /proc/<pid>/stat. */
  private static final long TICKS_PER_SECOND = clockTicks();

  private static final Pattern HEAP_USED = Pattern.compile("total (\\d+)K, used (\\d+)K");

  private final long pid;

  ProcessProbe(long pid) {
    this.pid = pid;
  }

  static ProcessProbe self() {
    return new ProcessProbe(ProcessHandle.current().pid());
  }

  long pid() {
    return pid;
  }

  boolean alive() {
    return Files.isDirectory(Path.of("/proc", Long.toString(pid)));
  }

  /** User plus system CPU time the process has used so far, all its threads together. */
  long cpuNanos() {
    String stat = read("stat");
    // The command name in parentheses may contain spaces; the fields after it are fixed.
    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    long ticks = Long.parseLong(fields[11]) + Long.parseLong(fields[12]);
    return ticks * TimeUnit.SECONDS.toNanos(1) / TICKS_PER_SECOND;
  }

  /** Resident set size now (VmRSS). */
  long rssBytes() {
    return statusKb("VmRSS") * 1024;
  }

  /**
   * Runs a full garbage collection in the process, so memory read next is live data rather
   * than garbage waiting for the next cycle: through {@code jcmd GC.run} for a JVM, else by
   * sending {@code signal} (the Node.js peers collect on SIGUSR2) and giving it a second. False
   * when neither applies: a process that does not expect the signal could die of it.
   */
  boolean collectGarbage(String signal) {
    if (isJvm()) {
      return jcmd("GC.run") != null;
    }
    if (signal.isEmpty()) {
      return false;
    }
    try {
      if (new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).start().waitFor() != 0) {
        return false;
      }
      TimeUnit.SECONDS.sleep(1);
      return true;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** A JVM's heap in use ({@code jcmd GC.heap_info}); empty for any other process. */
  OptionalLong heapUsedBytes() {
    String info = isJvm() ? jcmd("GC.heap_info") : null;
    if (info == null) {
      return OptionalLong.empty();
    }
    Matcher used = HEAP_USED.matcher(info);
    return used.find() ? OptionalLong.of(Long.parseLong(used.group(2)) * 1024) : OptionalLong.empty();
  }

  /** jcmd attaches by sending SIGQUIT, which ends a process that is not a JVM: check first. */
  private boolean isJvm() {
    return read("maps").contains("/libjvm.so");
  }

  private long statusKb(String field) {
    for (String line : read("status").split("\n")) {
      if (line.startsWith(field + ":")) {
        return Long.parseLong(line.substring(field.length() + 1).replace("kB", "").strip());
      }
    }
    throw new IllegalStateException("no " + field + " in /proc/" + pid + "/status");
  }

  private String read(String file) {
    try {
      return Files.readString(Path.of("/proc", Long.toString(pid), file));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read /proc/" + pid + "/" + file, e);
    }
  }

  private String jcmd(String command) {
    try {
      Process process =
          new ProcessBuilder("jcmd", Long.toString(pid), command).redirectErrorStream(true).start();
      String output = new String(process.getInputStream().readAllBytes());
      return process.waitFor() == 0 ? output : null;
    } catch (IOException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  private static long clockTicks() {
    try {
      Process process = new ProcessBuilder("getconf", "CLK_TCK").start();
      String out = new String(process.getInputStream().readAllBytes()).strip();
      return process.waitFor() == 0 ? Long.parseLong(out) : 100;
    } catch (IOException | NumberFormatException e) {
      return 100;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return 100;
    }
  }
}
