package parley.bench;

import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A scenario's options: {@code --name value} pairs after the scenario name. Every value a
 * scenario reads, given or defaulted, is remembered, so the result file records exactly what
 * was run; a given option that no scenario read is an error (a typo must not silently run the
 * defaults).
 */
public final class Args {

  private final Map<String, String> given = new LinkedHashMap<>();
  private final Map<String, Object> used = new LinkedHashMap<>();

  private Args() {}

  public static Args parse(String[] argv, int from) {
    Args args = new Args();
    for (int i = from; i < argv.length; i++) {
      String name = argv[i];
      if (!name.startsWith("--") || name.length() < 3) {
        throw new IllegalArgumentException("expected --option, got '" + name + "'");
      }
      if (i + 1 >= argv.length) {
        throw new IllegalArgumentException(name + " needs a value");
      }
      args.given.put(name.substring(2), argv[++i]);
    }
    return args;
  }

  public String string(String name, String fallback) {
    String value = given.getOrDefault(name, fallback);
    used.put(name, value);
    return value;
  }

  public int integer(String name, int fallback) {
    int value = given.containsKey(name) ? Integer.parseInt(given.get(name)) : fallback;
    used.put(name, value);
    return value;
  }

  /** A process id, or 0 when none was given (the measurement is then left out). */
  public long pid(String name) {
    long value = given.containsKey(name) ? Long.parseLong(given.get(name)) : 0;
    used.put(name, value);
    return value;
  }

  /** Seconds, written as a plain number ({@code 20}) or with a unit ({@code 500ms}, {@code 2m}). */
  public Duration duration(String name, Duration fallback) {
    Duration value = given.containsKey(name) ? parseDuration(given.get(name)) : fallback;
    used.put(name, value.toMillis() / 1000.0);
    return value;
  }

  /** A comma-separated list of integers, such as a sweep of rates: {@code 500,1000,2000}. */
  public List<Integer> integers(String name, List<Integer> fallback) {
    List<Integer> value = fallback;
    if (given.containsKey(name)) {
      value = new ArrayList<>();
      for (String part : given.get(name).split(",")) {
        value.add(Integer.parseInt(part.strip()));
      }
    }
    used.put(name, value);
    return value;
  }

  /**
   * {@code --run-id}: names the users and rooms a run creates, so runs against the same
   * (persistent) server never meet each other's; by default derived from the clock.
   */
  public String runId() {
    return string("run-id", Long.toString(System.currentTimeMillis() % 100_000_000, 36));
  }

  public URI uri(String name, String fallback) {
    return URI.create(string(name, fallback));
  }

  /** The options the scenario read, with the values it used, in reading order. */
  public Map<String, Object> used() {
    return new LinkedHashMap<>(used);
  }

  /** Fails on an option that was given but never read. */
  public void requireAllUsed() {
    List<String> unknown = new ArrayList<>(given.keySet());
    unknown.removeAll(used.keySet());
    if (!unknown.isEmpty()) {
      throw new IllegalArgumentException(
          "unknown option(s) for this scenario: --" + String.join(", --", unknown));
    }
  }

  private static Duration parseDuration(String text) {
    String t = text.strip();
    if (t.endsWith("ms")) {
      return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
    }
    if (t.endsWith("m")) {
      return Duration.ofMillis(Math.round(Double.parseDouble(t.substring(0, t.length() - 1)) * 60_000));
    }
    if (t.endsWith("s")) {
      t = t.substring(0, t.length() - 1);
    }
    return Duration.ofMillis(Math.round(Double.parseDouble(t) * 1000));
  }
}
