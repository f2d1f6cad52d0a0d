package parley.multijvm;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import parley.client.ParleyClient;
import parley.client.ParleyException;

/** Reading the shard distribution endpoint, and waking rooms so their shards get a home. */
final class Shards {

  private Shards() {}

  /** Shard id → the address of the node hosting it, for one entity type. */
  static Map<String, String> placement(JsonNode distribution, String type) {
    Map<String, String> placement = new TreeMap<>();
    distribution
        .path("types")
        .path(type)
        .path("nodes")
        .properties()
        .forEach(
            node ->
                node.getValue()
                    .path("shardEntities")
                    .fieldNames()
                    .forEachRemaining(shard -> placement.put(shard, node.getKey())));
    return placement;
  }

  static int misplaced(JsonNode distribution, String type) {
    return distribution.path("types").path(type).path("misplaced").asInt(-1);
  }

  /**
   * Waits until every node answered, no shard of {@code type} is misplaced (no rebalance is left
   * to move one of its entities) and {@code holders} nodes host shards of it.
   */
  static void awaitSettled(ClusterNode via, String type, int holders, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      JsonNode distribution = TestCluster.distribution(via);
      JsonNode ofType = distribution.path("types").path(type);
      if (misplaced(distribution, type) == 0 && ofType.path("unanswered").isEmpty() && ofType.path("nodes").size() == holders) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError(type + " shards did not settle within " + timeout + ": " + distribution);
      }
      Thread.sleep(500);
    }
  }

  /**
   * Asks for the members of {@code count} rooms named {@code prefix-0…} through the given
   * nodes. Whether a room exists or not, the ask starts its entity, so its shard is allocated.
   */
  static void touchRooms(List<ClusterNode> via, String prefix, int count) throws Exception {
    List<ParleyClient> clients = new ArrayList<>();
    try {
      for (ClusterNode node : via) {
        String user = prefix + "-toucher";
        clients.add(ParleyClient.connect(node.ws(), ParleyClient.devToken(node.http(), user)).get(15, TimeUnit.SECONDS));
      }
      // A connection may send 40 requests at once (the rate limiter's burst), so spread them.
      List<CompletableFuture<?>> asks = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        ParleyClient client = clients.get(i % clients.size());
        asks.add(client.listMembers(prefix + "-" + i).handle((ok, failure) -> expectedAnswer(failure)));
        if (asks.size() % (30 * clients.size()) == 0) {
          CompletableFuture.allOf(asks.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
          Thread.sleep(Duration.ofSeconds(2).toMillis());
        }
      }
      CompletableFuture.allOf(asks.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
    } finally {
      clients.forEach(ParleyClient::close);
    }
  }

  /** room_not_found is the expected answer for a room nobody created. */
  private static Void expectedAnswer(Throwable failure) {
    Throwable cause = failure != null && failure.getCause() != null ? failure.getCause() : failure;
    if (cause != null && !(cause instanceof ParleyException p && p.code().equals("room_not_found"))) {
      throw new AssertionError("touching a room failed: " + cause, cause);
    }
    return null;
  }

  /** The first name {@code prefix-i} whose entity the ring places on {@code address} (or, with false, off it). */
  static String firstNamed(String prefix, String type, ClusterNode via, String address, boolean on) {
    for (int i = 0; i < 500; i++) {
      String name = prefix + i;
      String host = TestCluster.hostOf(via, type, name).orElseThrow();
      if (host.equals(address) == on) {
        return name;
      }
    }
    throw new AssertionError("no " + type + " name placed as needed");
  }
}
