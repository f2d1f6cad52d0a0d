package parley.multijvm;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import parley.testing.TestCassandra;

/**
 * A cluster of forked nodes, one per loopback address, against one Cassandra. Slot {@code i}
 * is the node on {@code hosts.get(i)}; the first three hosts are the seed nodes.
 *
 * <p>The scenarios against the shared test Cassandra share one cluster ({@link #shared()}):
 * started on first use, brought back to three healthy nodes by each scenario's {@link
 * #ensureHealthy}, stopped when the test JVM exits. Run alone, a scenario starts it itself.
 */
final class TestCluster implements AutoCloseable {

  static final Duration READY_TIMEOUT = Duration.ofSeconds(90);
  static final Duration CONVERGE_TIMEOUT = Duration.ofSeconds(60);

  /** The backends' server key and the job workers' key of the shared cluster. */
  static final String SERVER_KEY = "multi-jvm-server-key-0123456789abcdef";
  static final String WORKER_KEY = "multi-jvm-worker-key-0123456789abcdef";

  private static TestCluster shared;

  private final String name;
  private final List<String> hosts;
  private final Map<String, String> env;
  private final ClusterNode[] nodes;
  private final List<String> jvmOptions;
  private int incarnations;

  TestCluster(String name, List<String> hosts, Map<String, String> env) {
    this(name, hosts, env, List.of());
  }

  /** {@code jvmOptions}: each node's, after (and over) ClusterNode's test-only timings. */
  TestCluster(String name, List<String> hosts, Map<String, String> env, List<String> jvmOptions) {
    this.name = name;
    this.hosts = List.copyOf(hosts);
    this.jvmOptions = List.copyOf(jvmOptions);
    this.env = new HashMap<>(env);
    this.env.put(
        "PARLEY_SEED_NODES",
        hosts.stream().limit(3).map(ClusterNode::address).collect(Collectors.joining(",")));
    this.nodes = new ClusterNode[hosts.size()];
  }

  /**
   * The cluster on 127.0.0.2–.5 against the shared test Cassandra, in keyspaces of its own.
   * The split-brain resolver decides after 4 s of stable membership (5 s by default): tight,
   * yet well above the pauses a loaded two-core machine shows.
   */
  static synchronized TestCluster shared() {
    if (shared == null) {
      shared = onTestCassandra("cluster", "MultiJvmCluster", List.of("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"), List.of());
      Runtime.getRuntime().addShutdownHook(new Thread(shared::close, "multi-jvm-cluster-stop"));
    }
    return shared;
  }

  /** A cluster against the shared test Cassandra in keyspaces of {@code owner}'s, as {@link #shared()}'s. */
  static TestCluster onTestCassandra(String name, String owner, List<String> hosts, List<String> jvmOptions) {
    Config keyspaces = TestCassandra.keyspacesFor(owner);
    return new TestCluster(
        name,
        hosts,
        Map.of(
            "PARLEY_CASSANDRA_CONTACT_POINTS", TestCassandra.contactPointString(),
            "PARLEY_JOURNAL_KEYSPACE", keyspaces.getString("parley.cassandra.journal-keyspace"),
            "PARLEY_SNAPSHOT_KEYSPACE", keyspaces.getString("parley.cassandra.snapshot-keyspace"),
            "PARLEY_SBR_STABLE_AFTER", "4s",
            "PARLEY_SERVER_KEY", SERVER_KEY,
            "PARLEY_WORKER_KEY", WORKER_KEY),
        jvmOptions);
  }

  /** Starts the node of {@code slot}; it must not be running. Does not wait for it. */
  synchronized ClusterNode start(int slot) throws Exception {
    if (nodes[slot] != null && nodes[slot].isAlive()) {
      throw new IllegalStateException(nodes[slot] + " is still running");
    }
    String host = hosts.get(slot);
    nodes[slot] = ClusterNode.start(name + "-" + host + "-" + (++incarnations), host, env, jvmOptions);
    return nodes[slot];
  }

  ClusterNode node(int slot) {
    return nodes[slot];
  }

  /** The nodes whose process runs (a frozen one included). */
  synchronized List<ClusterNode> running() {
    List<ClusterNode> running = new ArrayList<>();
    for (ClusterNode node : nodes) {
      if (node != null && node.isAlive()) {
        running.add(node);
      }
    }
    return running;
  }

  /** A supplier of the running nodes except {@code excluded}, for clients to connect to. */
  Supplier<List<ClusterNode>> runningExcept(Set<ClusterNode> excluded) {
    return () -> running().stream().filter(n -> !excluded.contains(n)).toList();
  }

  ClusterNode byAddress(String address) {
    for (ClusterNode node : running()) {
      if (node.address().equals(address)) {
        return node;
      }
    }
    throw new AssertionError("no running node has address " + address);
  }

  /**
   * Makes the first {@code count} slots run and form the whole cluster (every one Up, nothing
   * unreachable, as each of them sees it), stopping any other running node gracefully.
   */
  void ensureHealthy(int count) throws Exception {
    for (int slot = count; slot < nodes.length; slot++) {
      ClusterNode extra = nodes[slot];
      if (extra != null && extra.isAlive()) {
        extra.signal("TERM");
        extra.awaitExit(Duration.ofSeconds(60));
      }
    }
    List<ClusterNode> members = new ArrayList<>();
    for (int slot = 0; slot < count; slot++) {
      if (nodes[slot] == null || !nodes[slot].isAlive()) {
        start(slot);
      }
      members.add(nodes[slot]);
    }
    for (ClusterNode member : members) {
      member.awaitReady(READY_TIMEOUT);
    }
    awaitMembers(members, CONVERGE_TIMEOUT);
  }

  /** Waits until each of {@code members} sees exactly them Up and nobody unreachable. */
  Duration awaitMembers(List<ClusterNode> members, Duration timeout) throws InterruptedException {
    Set<String> expected = members.stream().map(ClusterNode::address).collect(Collectors.toCollection(TreeSet::new));
    long start = System.nanoTime();
    long deadline = start + timeout.toNanos();
    String last = "";
    while (System.nanoTime() < deadline) {
      boolean converged = true;
      for (ClusterNode member : members) {
        Optional<JsonNode> view = member.getJson("/cluster/members");
        last = member + ": " + view.map(JsonNode::toString).orElse("no answer");
        if (view.isEmpty() || !upMembers(view.get()).equals(expected) || view.get().path("unreachable").size() > 0) {
          converged = false;
          break;
        }
      }
      if (converged) {
        return Duration.ofNanos(System.nanoTime() - start);
      }
      Thread.sleep(250);
    }
    throw new AssertionError("cluster did not converge on " + expected + " within " + timeout + "; last view " + last);
  }

  /** The addresses a /cluster/members answer lists, if all of them are Up; else a marker. */
  static Set<String> upMembers(JsonNode view) {
    Set<String> up = new TreeSet<>();
    for (JsonNode member : view.path("members")) {
      up.add("Up".equals(member.path("status").asText()) ? member.path("node").asText() : "not-up:" + member.path("node").asText());
    }
    return up;
  }

  /** The whole cluster's shard distribution, asked of {@code via}. */
  static JsonNode distribution(ClusterNode via) {
    return via.getJson("/shard-distribution").orElseThrow(() -> new AssertionError(via + " did not answer /shard-distribution"));
  }

  /** The address of the node hosting the entity's shard now, asked of {@code via}; empty if none. */
  static Optional<String> hostOf(ClusterNode via, String type, String entity) {
    return via.getJson("/shard-distribution/" + type + "/" + entity)
        .map(answer -> answer.path("node"))
        .filter(JsonNode::isTextual)
        .map(JsonNode::asText);
  }

  @Override
  public synchronized void close() {
    for (ClusterNode node : nodes) {
      if (node != null) {
        node.close();
      }
    }
  }
}
