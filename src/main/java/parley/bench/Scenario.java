package parley.bench;

import java.util.List;

/**
 * One benchmark scenario of the load tool. It reads its options from {@link Args} (so they are
 * recorded), drives a running server through its public protocol, and returns what it
 * measured; {@link Bench} prints the result as a table and writes it as JSON.
 *
 * <p>Implementations have a public no-argument constructor. Most are listed in {@link Bench};
 * {@code docs} is {@code parley.bench.DocumentBench}, which the collaborative-editing work
 * provides, and is looked up by name so the tool builds without it. bench/run calls it twice,
 * with {@code --target parley --url http://…:18280} and with {@code --target sharedb --url
 * http://…:18303} (bench/peers/sharedb-server.js, whose protocol its header describes), both
 * with {@code --server-pid} (and {@code --storage-pid} for Parley); {@link Usage#from} reads
 * those. For {@code bench compare} to set the two side by side, both results name their
 * scenario {@code docs}, their target {@code parley} or {@code sharedb}, and use the same
 * first column (the step) and metric names.
 */
public interface Scenario {

  /**
   * Runs the scenario. A scenario usually returns one result; one that measures a reference
   * beside the server (durable-writes runs the raw driver loop after Parley) returns both.
   */
  List<Result> run(Args args) throws Exception;
}
