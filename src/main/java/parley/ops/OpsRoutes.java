package parley.ops;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.onSuccess;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathEndOrSingleSlash;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefixTest;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.management.cluster.javadsl.ClusterHttpManagementRoutes;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;
import parley.jobs.JobService;
import parley.jobs.JobSettings;
import parley.jobs.QueueOverview;

/**
 * The operators' routes on Pekko Management's port, registered in {@code conf/metrics.conf}
 * ({@code pekko.management.http.routes}), so the client API knows nothing of them:
 * {@code GET /metrics} (Prometheus text format), {@code GET /shard-distribution} (see
 * {@link ShardDistribution}), {@code GET /queues} (see {@link QueueOverview}) and Pekko
 * Management's read-only cluster routes
 * ({@code /cluster/members}, …), all but the metrics behind the management token
 * ({@link ManagementToken}). Management creates this once per node when it starts, which is
 * also when this node's metrics start counting shards and cluster members.
 */
public final class OpsRoutes implements ManagementRouteProvider {

  private final ParleyMetrics metrics;
  private final ShardDistribution distribution;
  private final Route clusterRoutes;
  private final ManagementToken token;
  private final QueueOverview queues;

  public OpsRoutes(ExtendedActorSystem classic) {
    ActorSystem<?> system = Adapter.toTyped(classic);
    OpsSettings settings = OpsSettings.from(system.settings().config());
    this.metrics = ParleyMetrics.get(system);
    this.distribution = new ShardDistribution(system, settings);
    this.clusterRoutes = ClusterHttpManagementRoutes.readOnly(Cluster.get(system));
    this.token = new ManagementToken(settings.managementToken());
    JobSettings jobs = JobSettings.from(system.settings().config());
    this.queues = new QueueOverview(new JobService(system, jobs, settings.statsTimeout()), jobs);
    bindNode(system, settings);
  }

  @Override
  public Route routes(ManagementRouteProviderSettings settings) {
    return concat(
        pathPrefixTest("cluster", () -> token.required(() -> clusterRoutes)),
        pathPrefixTest("shard-distribution", () -> token.required(this::shardDistribution)),
        pathPrefixTest("queues", () -> token.required(() -> get(() -> path("queues", () -> json(queues.all()))))),
        get(() -> path("metrics", () -> complete(HttpEntities.create(ContentTypes.TEXT_PLAIN_UTF8, metrics.registry().scrape())))));
  }

  private Route shardDistribution() {
    return get(
        () ->
            pathPrefix(
                "shard-distribution",
                () ->
                    concat(
                        pathEndOrSingleSlash(() -> json(distribution.all())),
                        path(
                            segment().slash(segment()),
                            (type, id) ->
                                ShardDistribution.type(type)
                                    .map(key -> json(distribution.entity(key, id)))
                                    .orElseGet(
                                        () ->
                                            complete(
                                                StatusCodes.NOT_FOUND,
                                                "no sharded type '" + type + "'"))))));
  }

  private static Route json(CompletionStage<String> body) {
    return onSuccess(body, text -> complete(HttpEntities.create(ContentTypes.APPLICATION_JSON, text)));
  }

  /** Node-wide gauges: cluster membership, the JVM, and this node's shards (polled). */
  private void bindNode(ActorSystem<?> system, OpsSettings settings) {
    var registry = metrics.registry();
    Cluster cluster = Cluster.get(system);
    for (MemberStatus status :
        new MemberStatus[] {
          MemberStatus.joining(), MemberStatus.weaklyUp(), MemberStatus.up(),
          MemberStatus.leaving(), MemberStatus.exiting(), MemberStatus.down()
        }) {
      Gauge.builder("parley.cluster.members", cluster, c -> count(c, status))
          .description("Cluster members by status, as this node sees them")
          .tag("status", statusName(status))
          .register(registry);
    }
    Gauge.builder("parley.cluster.unreachable", cluster, c -> c.state().getUnreachable().size())
        .description("Members this node's failure detector considers unreachable")
        .register(registry);
    new JvmMemoryMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    JvmGcMetrics gc = new JvmGcMetrics();
    gc.bindTo(registry);
    CoordinatedShutdown.get(system)
        .addTask(
            CoordinatedShutdown.PhaseActorSystemTerminate(),
            "parley-metrics-close",
            () -> {
              gc.close();
              return CompletableFuture.completedFuture(Done.getInstance());
            });
    system.systemActorOf(ShardPoller.create(metrics, settings), "parley-shard-poller", Props.empty());
  }

  private static double count(Cluster cluster, MemberStatus status) {
    int n = 0;
    for (Member member : cluster.state().getMembers()) {
      if (member.status().equals(status)) {
        n++;
      }
    }
    return n;
  }

  private static String statusName(MemberStatus status) {
    return status.toString().replaceAll("([a-z])([A-Z])", "$1-$2").toLowerCase(Locale.ROOT);
  }
}
