package parley.ops;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.stream.javadsl.Flow;
import org.apache.pekko.stream.javadsl.Source;

/**
 * This node's Prometheus metrics, one registry per actor system. Features report into it
 * through the few methods below (each a counter increment or a timer record, cheap enough
 * for the per-message path); {@link OpsRoutes} serves it at {@code /metrics}.
 *
 * <ul>
 *   <li>{@code parley_connections{transport}}: client connections open now (WebSocket, SSE,
 *       long-poll requests waiting)
 *   <li>{@code parley_messages_sent_total}: chat messages written to the journal and acknowledged
 *   <li>{@code parley_messages_delivered_total}: timeline events delivered to client connections
 *   <li>{@code parley_persist_seconds{entity}}: journal write latency per batch (histogram)
 *   <li>{@code parley_outbound_overflows_total}: connections closed because the client read
 *       too slowly (its outbound buffer filled up)
 *   <li>{@code parley_heartbeat_timeouts_total}: WebSocket connections closed because the
 *       client answered no heartbeat in time (it vanished without closing)
 *   <li>{@code parley_session_starts_refused_total}: WebSocket upgrades and SSE streams
 *       answered 503 because the node was already starting as many sessions as it may
 *       ({@code parley.chat.max-starting-sessions})
 *   <li>{@code parley_entities{type}}, {@code parley_shards{type}}: active entities and shards
 *       on this node (refreshed every {@code parley.ops.poll-interval})
 *   <li>{@code parley_shards_handed_off_total{type}}: shards this node handed to another node
 *       (rebalance or scale-in); summed over the cluster, the shards moved
 * </ul>
 */
public final class ParleyMetrics implements Extension {

  /** Journal write latency buckets: a write costs milliseconds; a slow one hundreds of them. */
  private static final Duration[] PERSIST_BUCKETS = {
    Duration.ofMillis(2), Duration.ofMillis(5), Duration.ofMillis(10), Duration.ofMillis(25),
    Duration.ofMillis(50), Duration.ofMillis(100), Duration.ofMillis(250), Duration.ofMillis(500),
    Duration.ofSeconds(1), Duration.ofMillis(2500), Duration.ofSeconds(5)
  };

  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final Counter messagesSent =
      Counter.builder("parley.messages.sent")
          .description("Chat messages written to the journal and acknowledged")
          .register(registry);
  private final Counter messagesDelivered =
      Counter.builder("parley.messages.delivered")
          .description("Timeline events delivered to client connections")
          .register(registry);
  private final Counter outboundOverflows =
      Counter.builder("parley.outbound.overflows")
          .description("Connections closed because the client read too slowly")
          .register(registry);
  private final Counter heartbeatTimeouts =
      Counter.builder("parley.heartbeat.timeouts")
          .description("WebSocket connections closed because the client answered no heartbeat in time")
          .register(registry);
  private final Counter sessionStartsRefused =
      Counter.builder("parley.session.starts.refused")
          .description("Connections answered 503 because the node was starting as many sessions as it may")
          .register(registry);
  private final Map<String, AtomicInteger> connections = new ConcurrentHashMap<>();
  private final Map<String, Timer> persistTimers = new ConcurrentHashMap<>();
  private final Map<String, ShardGauges> shardGauges = new ConcurrentHashMap<>();

  /** The client transports, each counted from the start so dashboards show a 0, not a gap. */
  public static final String WEBSOCKET = "websocket";
  public static final String SSE = "sse";
  public static final String LONG_POLL = "long-poll";

  private ParleyMetrics() {
    for (String transport : List.of(WEBSOCKET, SSE, LONG_POLL)) {
      connections(transport);
    }
  }

  public static ParleyMetrics get(ActorSystem<?> system) {
    return Id.INSTANCE.apply(system);
  }

  public PrometheusMeterRegistry registry() {
    return registry;
  }

  /** Counts {@code flow} (a WebSocket) as one open connection of {@code transport} while it runs. */
  public <I, O, M> Flow<I, O, M> countConnection(String transport, Flow<I, O, M> flow) {
    return flow.watchTermination(
        (materialized, done) -> {
          countConnection(transport, done);
          return materialized;
        });
  }

  /** Counts {@code source} (an event stream) as one open connection while it runs. */
  public <O, M> Source<O, M> countConnection(String transport, Source<O, M> source) {
    return source.watchTermination(
        (materialized, done) -> {
          countConnection(transport, done);
          return materialized;
        });
  }

  /** Counts one open connection of {@code transport} from now until {@code open} completes. */
  public void countConnection(String transport, CompletionStage<?> open) {
    AtomicInteger count = connections(transport);
    count.incrementAndGet();
    open.whenComplete((ok, failure) -> count.decrementAndGet());
  }

  /** A journal write of {@code entity} (room, user, doc) that took {@code nanos}. */
  public void persisted(String entity, long nanos, int messages) {
    persistTimers
        .computeIfAbsent(
            entity,
            e ->
                Timer.builder("parley.persist")
                    .description("Journal write latency per batch")
                    .tag("entity", e)
                    .serviceLevelObjectives(PERSIST_BUCKETS)
                    .register(registry))
        .record(nanos, TimeUnit.NANOSECONDS);
    if (messages > 0) {
      messagesSent.increment(messages);
    }
  }

  public void delivered() {
    messagesDelivered.increment();
  }

  public void outboundOverflow() {
    outboundOverflows.increment();
  }

  public void heartbeatTimeout() {
    heartbeatTimeouts.increment();
  }

  public void sessionStartRefused() {
    sessionStartsRefused.increment();
  }

  /** What {@link ShardPoller} found in this node's region of {@code type}. */
  void shardsCounted(String type, int shards, int entities, int handedOff) {
    ShardGauges gauges = shardGauges.computeIfAbsent(type, this::shardGauges);
    gauges.shards.set(shards);
    gauges.entities.set(entities);
    if (handedOff > 0) {
      gauges.handedOff.increment(handedOff);
    }
  }

  private AtomicInteger connections(String transport) {
    return connections.computeIfAbsent(
        transport,
        t -> {
          AtomicInteger open = new AtomicInteger();
          Gauge.builder("parley.connections", open, AtomicInteger::get)
              .description("Client connections open now")
              .tag("transport", t)
              .register(registry);
          return open;
        });
  }

  private ShardGauges shardGauges(String type) {
    AtomicLong shards = new AtomicLong();
    AtomicLong entities = new AtomicLong();
    Gauge.builder("parley.shards", shards, AtomicLong::get)
        .description("Shards hosted on this node")
        .tag("type", type)
        .register(registry);
    Gauge.builder("parley.entities", entities, AtomicLong::get)
        .description("Entities active (in memory) on this node")
        .tag("type", type)
        .register(registry);
    Counter handedOff =
        Counter.builder("parley.shards.handed.off")
            .description("Shards this node handed off to another node (rebalance, scale-in)")
            .tag("type", type)
            .register(registry);
    return new ShardGauges(shards, entities, handedOff);
  }

  private record ShardGauges(AtomicLong shards, AtomicLong entities, Counter handedOff) {}

  private static final class Id extends ExtensionId<ParleyMetrics> {
    static final Id INSTANCE = new Id();

    @Override
    public ParleyMetrics createExtension(ActorSystem<?> system) {
      return new ParleyMetrics();
    }
  }
}
