package parley.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code bench compare <file>...}: Parley's numbers divided by each peer's, for every metric
 * both measured, as a Markdown table (docs/benchmarks.md). Rows of the same scenario, server
 * and step from several files (repeated runs), and the repeats inside one file, are reduced to
 * their median first, so one lucky or unlucky run on a shared machine does not decide.
 */
final class Compare {

  /**
   * The p99 a step may have and still count towards capacity: a fan-out step's send-to-receive
   * p99, a docs step's submit-to-ack p99 ({@link DocumentsScenario#capacity}).
   */
  static final double CAPACITY_P99_MS = 50;

  private Compare() {}

  static void print(List<String> files) throws Exception {
    // scenario → target → step → column → values from every run
    Map<String, Map<String, Map<String, Map<String, List<Double>>>>> all = new TreeMap<>();
    for (String file : files) {
      Map<String, Object> recorded = Bench.recordedOf(Path.of(file));
      for (Object r : (List<?>) recorded.get("results")) {
        Map<?, ?> result = (Map<?, ?>) r;
        Map<String, Map<String, List<Double>>> steps =
            all.computeIfAbsent((String) result.get("scenario"), s -> new TreeMap<>())
                .computeIfAbsent((String) result.get("target"), t -> new LinkedHashMap<>());
        for (Object row : (List<?>) result.get("rows")) {
          add(steps, (Map<?, ?>) row);
        }
        if ("fanout".equals(result.get("scenario"))) {
          List<?> rows = (List<?>) result.get("rows");
          Map<String, Object> capacity = new LinkedHashMap<>();
          capacity.put("step", "capacity");
          capacity.put("delivered_per_s_at_p99_50ms", capacity(rows, CAPACITY_P99_MS));
          capacity.put("delivered_per_s_lossless", capacity(rows, Double.MAX_VALUE));
          add(steps, capacity);
        }
      }
    }
    StringBuilder out = new StringBuilder();
    out.append("| scenario | step | metric | parley | peer | peer value | parley ÷ peer |\n");
    out.append("|---|---|---|---:|---|---:|---:|\n");
    all.forEach((scenario, targets) -> {
      Map<String, Map<String, List<Double>>> parley = targets.get("parley");
      if (parley == null) {
        return;
      }
      if (targets.size() == 1) {
        // Nothing to compare with (catch-up): Parley's medians alone.
        parley.forEach((step, columns) -> columns.forEach((column, values) -> {
          if (!column.endsWith("_count")) {
            out.append("| ").append(scenario).append(" | ").append(step).append(" | ").append(column)
                .append(" | ").append(format(median(values))).append(" | – | – | – |\n");
          }
        }));
        return;
      }
      targets.forEach((target, steps) -> {
        if (target.equals("parley")) {
          return;
        }
        steps.forEach((step, columns) -> {
          Map<String, List<Double>> ours = parley.get(step);
          if (ours == null) {
            return;
          }
          columns.forEach((column, values) -> {
            if (!ours.containsKey(column) || column.endsWith("_count")) {
              return;
            }
            double mine = median(ours.get(column));
            double theirs = median(values);
            out.append("| ").append(scenario).append(" | ").append(step).append(" | ").append(column)
                .append(" | ").append(format(mine)).append(" | ").append(target)
                .append(" | ").append(format(theirs)).append(" | ")
                .append(theirs == 0 ? "–" : format(mine / theirs)).append(" |\n");
          });
        });
      });
    });
    System.out.print(out);
  }

  /**
   * Files a row under its step, named by its first column ({@code rate=2000}); the rows of
   * repeats all go under {@code median}.
   */
  private static void add(Map<String, Map<String, List<Double>>> steps, Map<?, ?> row) {
    Map.Entry<?, ?> first = row.entrySet().iterator().next();
    String key =
        switch (String.valueOf(first.getKey())) {
          case "repeat" -> "median";
          case "step" -> String.valueOf(first.getValue());
          default -> first.getKey() + "=" + first.getValue();
        };
    Map<String, List<Double>> columns = steps.computeIfAbsent(key, k -> new LinkedHashMap<>());
    row.forEach((column, value) -> {
      if (column != first.getKey() && value instanceof Number number) {
        columns.computeIfAbsent((String) column, c -> new ArrayList<>()).add(number.doubleValue());
      }
    });
  }

  /**
   * The most messages a fan-out run delivered per second in a step whose p99 stayed within
   * {@code p99Ms}, with every message delivered and no error; 0 if none did.
   */
  static double capacity(List<?> rows, double p99Ms) {
    double best = 0;
    for (Object r : rows) {
      Map<?, ?> row = (Map<?, ?>) r;
      double p99 = number(row.get("e2e_p99_ms"), Double.MAX_VALUE);
      double delivered = number(row.get("delivered_pct"), 0);
      double errors = number(row.get("errors"), 1);
      if (p99 <= p99Ms && delivered >= 99.99 && errors == 0) {
        best = Math.max(best, number(row.get("delivered_per_s"), 0));
      }
    }
    return best;
  }

  static double number(Object value, double fallback) {
    return value instanceof Number n ? n.doubleValue() : fallback;
  }

  private static double median(List<Double> values) {
    List<Double> sorted = new ArrayList<>(values);
    Collections.sort(sorted);
    int n = sorted.size();
    return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
  }

  private static String format(double value) {
    if (value == Math.rint(value) && Math.abs(value) < 1e15) {
      return Long.toString((long) value);
    }
    return String.format("%.2f", value);
  }
}
