package parley.transport;

import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.apache.pekko.http.javadsl.server.Route;
import parley.chat.ChatSettings;
import parley.limits.RateByKey;

/**
 * What one user may use of this node, however many connections and REST calls they spread it
 * over (like Synapse's per-user rate limits and Centrifugo's connection limit): one request
 * rate for all of them together, and a bounded number of open WebSocket and SSE connections
 * and held polls.
 * Per node: behind a balancer, a user's connections and calls spread over N nodes get N times
 * as much.
 */
public final class UserLimits {

  private final RateByKey requests;
  private final int maxConnections;
  private final ConcurrentHashMap<String, Integer> connections = new ConcurrentHashMap<>();

  public UserLimits(ChatSettings settings, LongSupplier nanoTime) {
    this.requests = new RateByKey(settings.userRatePerSecond(), settings.userRateBurst(), nanoTime);
    this.maxConnections = settings.maxConnectionsPerUser();
  }

  /** One request of {@code user}: zero if admitted, else how long until one would be. */
  public Duration admitRequest(String user) {
    return requests.admit(user);
  }

  /**
   * An HTTP call of {@code user}, one request of their rate: {@code inner}, or 429 {@code
   * rate_limited} with {@code Retry-After} when the rate is spent.
   */
  public Route admitCall(String user, Supplier<Route> inner) {
    Duration wait = admitRequest(user);
    return wait.isZero() ? inner.get() : HttpAnswers.rateLimited(wait, "too many requests");
  }

  /** Counts a new connection of {@code user}; false (and nothing counted) if at the limit. */
  public boolean openConnection(String user) {
    boolean[] admitted = {false};
    connections.compute(user, (u, open) -> {
      int now = open == null ? 0 : open;
      admitted[0] = now < maxConnections;
      return admitted[0] ? now + 1 : open;
    });
    return admitted[0];
  }

  public void closeConnection(String user) {
    connections.computeIfPresent(user, (u, open) -> open <= 1 ? null : open - 1);
  }
}
