package parley.bench;

import java.util.List;

/**
 * One benchmark scenario of the load tool. It reads its options from {@link Args} (so they are
 * recorded), drives a running server through its public protocol, and returns what it
 * measured; {@link Bench} prints the result as a table and writes it as JSON.
 *
 * <p>Implementations have a public no-argument constructor and are listed in {@link Bench}.
 * Scenarios that several servers run (fanout, connections, docs) name the server in their
 * result's target and use the same first column (the step) and metric names for all of them,
 * so {@code bench compare} can set them side by side.
 */
public interface Scenario {

  /**
   * Runs the scenario. A scenario usually returns one result; one that measures a reference
   * beside the server (durable-writes runs the raw driver loop after Parley) returns both.
   */
  List<Result> run(Args args) throws Exception;
}
