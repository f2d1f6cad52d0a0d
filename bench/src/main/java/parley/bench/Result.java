package parley.bench;

import java.util.List;
import java.util.Map;

/**
 * What one run of a scenario measured against one server.
 *
 * @param scenario the scenario's name, such as {@code fanout}
 * @param target the server kind driven: {@code parley}, {@code socketio}, {@code ws}, {@code
 *     sharedb}, or {@code cassandra} for the raw driver loop
 * @param rows one row per step (a rate of a sweep, a repeat): column name to a number or a
 *     text, in column order; {@code compare} pairs rows of two results by their first column
 * @param notes anything a reader of the numbers must know (losses, errors, a step cut short)
 */
public record Result(
    String scenario, String target, List<Map<String, Object>> rows, List<String> notes) {

  public Result {
    rows = List.copyOf(rows);
    notes = List.copyOf(notes);
  }
}
