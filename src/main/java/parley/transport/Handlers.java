package parley.transport;

import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.cors.javadsl.settings.CorsSettings;
import parley.auth.ServerCredential;
import parley.auth.TokenService;
import parley.chat.ChatSettings;
import parley.chat.fanout.NodeHub;
import parley.chat.handler.ChatHandler;
import parley.collab.handler.DocumentHandler;
import parley.jobs.handler.JobHandler;
import parley.ops.ParleyMetrics;
import parley.protocol.Codec;

/**
 * What every transport of a node shares: the settings, the node's fan-out hub, the codec, one
 * handler per feature, the origins browsers may connect from, each user's limits, how many
 * sessions may start at once, the token
 * verifier (connections check refreshed tokens), the resume-cursor checkpoints and the worker
 * key (worker connections). Built once per node.
 */
public record Handlers(
    ChatSettings settings,
    ActorRef<NodeHub.Command> hub,
    Codec codec,
    ChatHandler chat,
    DocumentHandler documents,
    JobHandler jobs,
    AllowedOrigins origins,
    UserLimits limits,
    SessionStarts starts,
    TokenService tokens,
    CursorCheckpoints checkpoints,
    ServerCredential workers) {

  public static Handlers create(
      ActorSystem<?> system,
      ChatSettings settings,
      ActorRef<NodeHub.Command> hub,
      List<String> allowedOrigins,
      TokenService tokens,
      JobHandler jobs,
      ServerCredential workers) {
    return new Handlers(
        settings,
        hub,
        new Codec(new Codec.Limits(settings.maxBodyBytes(), settings.maxTopicBytes())),
        new ChatHandler(system, settings),
        new DocumentHandler(system, settings.askTimeout()),
        jobs,
        new AllowedOrigins(allowedOrigins, CorsSettings.create(system.classicSystem())),
        new UserLimits(settings, System::nanoTime),
        new SessionStarts(
            settings.maxStartingSessions(), settings.askTimeout(), System::nanoTime, ParleyMetrics.get(system)::sessionStartRefused),
        tokens,
        CursorCheckpoints.create(system),
        workers);
  }
}
