package parley.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** The machine a run happened on, recorded beside its numbers. */
final class Machine {

  private Machine() {}

  static Map<String, Object> describe() {
    Map<String, Object> machine = new LinkedHashMap<>();
    machine.put("cpus", Runtime.getRuntime().availableProcessors());
    machine.put("cpu_model", firstValue("/proc/cpuinfo", "model name"));
    machine.put("memory", firstValue("/proc/meminfo", "MemTotal"));
    machine.put("kernel", read("/proc/sys/kernel/osrelease"));
    machine.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"));
    machine.put("loadavg_before", loadAverage());
    // bench/run passes the commit measured, so a result file says what code it describes.
    machine.put("commit", System.getProperty("parley.bench.commit", "unknown"));
    return machine;
  }

  /** The 1-minute load average: above the core count, something else competed for the CPU. */
  static String loadAverage() {
    String load = read("/proc/loadavg");
    return load.isEmpty() ? "" : load.split(" ")[0];
  }

  private static String firstValue(String file, String key) {
    for (String line : read(file).split("\n")) {
      if (line.startsWith(key)) {
        return line.substring(line.indexOf(':') + 1).strip();
      }
    }
    return "";
  }

  private static String read(String file) {
    try {
      return Files.readString(Path.of(file)).strip();
    } catch (IOException e) {
      return "";
    }
  }
}
