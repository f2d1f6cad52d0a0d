package parley.bench;

import java.util.List;

/**
 * One benchmark scenario of the load tool. It reads its options from {@link Args} (so they are
 * recorded), drives a running server through its public protocol, and returns what it
 * measured; {@link Bench} prints the result as a table and writes it as JSON.
 *
 * <p>Implementations have a public no-argument constructor. Most are listed in {@link Bench};
 * {@code docs} is {@code parley.bench.DocumentBench}, which the collaborative-editing work
 * provides, and is looked up by name so the tool builds without it.
 */
public interface Scenario {

  /**
   * Runs the scenario. A scenario usually returns one result; one that measures a reference
   * beside the server (durable-writes runs the raw driver loop after Parley) returns both.
   */
  List<Result> run(Args args) throws Exception;
}
