package parley.app;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.AddressFromURIString;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.JoinSeedNodes;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.management.cluster.bootstrap.ClusterBootstrap;
import org.apache.pekko.management.javadsl.PekkoManagement;
import parley.chat.ChatSettings;
import parley.chat.fanout.NodeHub;
import parley.chat.room.RoomEntity;
import parley.chat.user.UserEntity;
import parley.cluster.ExitedPeerDowning;
import parley.transport.websocket.NettyWebSocketServer;
import parley.collab.document.DocumentEntity;
import parley.collab.document.DocumentSettings;
import parley.jobs.JobService;
import parley.jobs.JobSettings;
import parley.jobs.export.ExportSettings;
import parley.jobs.export.ExportStore;
import parley.jobs.export.ExportWorker;
import parley.jobs.queue.QueueKeeper;
import parley.jobs.queue.QueuePartition;

/**
 * The node's root actor: starts the sharded entities (rooms, users, documents, job queue
 * partitions) and this node's fan-out hub, then the client HTTP port and Pekko Management, and
 * joins the cluster once both are bound. {@code started} completes when both ports are bound,
 * or fails with a {@link StartupFailure} saying which one could not be.
 */
public final class Guardian {

  private Guardian() {}

  public static Behavior<Void> create(Settings settings, CompletableFuture<ServerBinding> started) {
    return Behaviors.setup(
        context -> {
          ActorSystem<Void> system = context.getSystem();
          ChatSettings chat = ChatSettings.from(system.settings().config());
          ActorRef<Topic.Command<RoomEntity.Started>> roomStarts = context.spawn(RoomEntity.startsTopic(), "room-starts");
          RoomEntity.init(system, chat, roomStarts);
          UserEntity.init(system);
          DocumentEntity.init(system, DocumentSettings.from(system.settings().config()));
          JobSettings jobs = JobSettings.from(system.settings().config());
          QueuePartition.init(system, jobs);
          context.spawn(QueueKeeper.create(jobs), "queue-keeper");
          ExportSettings exports = ExportSettings.from(system.settings().config(), jobs);
          ExportWorker.start(system, new JobService(system, jobs, chat.askTimeout()), exports, new ExportStore(system, exports), chat.askTimeout());
          ActorRef<NodeHub.Command> hub = context.spawn(NodeHub.create(chat, roomStarts), "hub");
          ApiRoutes.Api api = ApiRoutes.create(system, settings, chat, hub, jobs);
          CompletionStage<ServerBinding> http =
              HttpServer.start(system, settings.http(), api.route())
                  .thenCompose(binding -> startWebSocketPort(system, settings.http(), binding.localAddress().getPort(), api).thenApply(ignored -> binding));
          CompletionStage<?> management = startManagement(system, settings.cluster());
          http.thenCombine(management, (binding, ignored) -> binding)
              .whenComplete(
                  (binding, error) -> {
                    if (error != null) {
                      started.completeExceptionally(error);
                    } else {
                      // Joined only now: a member gets shards at once, and a node still
                      // starting (cold routes, ports not bound) would stall every one of them.
                      joinCluster(system, settings.cluster());
                      ExitedPeerDowning.start(system, settings.cluster().exitedPeerDowning());
                      started.complete(binding);
                    }
                  });
          return Behaviors.empty();
        });
  }

  /** The Netty WebSocket port, when one is set (parley.http.websocket-port). */
  private static CompletionStage<?> startWebSocketPort(
      ActorSystem<?> system, Settings.Http http, int clientPort, ApiRoutes.Api api) {
    if (http.websocketPort() == 0) {
      return CompletableFuture.completedFuture(null);
    }
    return NettyWebSocketServer.start(
            system, http.iface(), http.websocketPort(), clientPort, http.requestHeaderTimeout(), api.handlers(), api.tokens())
        .exceptionally(error -> {
          throw new StartupFailure(
              "Cannot listen for WebSockets on " + http.iface() + ":" + http.websocketPort() + " ("
                  + HttpServer.rootMessage(error) + "). Stop what holds the port or set PARLEY_WS_PORT (0: none).");
        });
  }

  private static void joinCluster(ActorSystem<?> system, Settings.ClusterSettings settings) {
    Cluster cluster = Cluster.get(system);
    if (!settings.seedNodes().isEmpty()) {
      cluster
          .manager()
          .tell(
              new JoinSeedNodes(
                  settings.seedNodes().stream().map(AddressFromURIString::parse).toList()));
    } else if (!settings.bootstrap()) {
      // No seeds and no bootstrap: a cluster of one, as in development.
      cluster.manager().tell(org.apache.pekko.cluster.typed.Join.create(cluster.selfMember().address()));
    }
  }

  private static CompletionStage<?> startManagement(
      ActorSystem<?> system, Settings.ClusterSettings settings) {
    var config = system.settings().config().getConfig("pekko.management.http");
    String where = config.getString("hostname") + ":" + config.getInt("port");
    return PekkoManagement.get(system)
        .start()
        .handle(
            (uri, error) -> {
              if (error != null) {
                throw new StartupFailure(
                    "Cannot start Pekko Management on "
                        + where
                        + " ("
                        + HttpServer.rootMessage(error)
                        + "). Stop what holds the port or set PARLEY_MANAGEMENT_PORT.");
              }
              if (settings.bootstrap()) {
                ClusterBootstrap.get(system).start();
              }
              return uri;
            });
  }
}
