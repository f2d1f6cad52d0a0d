package parley.app;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;

import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.actor.typed.ActorRef;
import parley.auth.AuthRoutes;
import parley.chat.fanout.NodeHub;
import parley.auth.TokenService;
import parley.chat.ChatSettings;
import parley.transport.poll.PollRoute;
import parley.transport.Handlers;
import parley.transport.HttpAnswers;
import parley.transport.rest.RestRoutes;
import parley.transport.sse.SseRoute;
import parley.transport.web.SpecRoutes;
import parley.transport.web.WebRoutes;
import parley.transport.websocket.WebSocketRoute;
import parley.auth.ServerCredential;
import parley.jobs.JobService;
import parley.jobs.JobSettings;
import parley.jobs.handler.JobHandler;
import parley.jobs.http.JobRoutes;
import parley.jobs.export.ExportRoutes;
import parley.jobs.export.ExportSettings;
import parley.jobs.export.ExportStore;

/** The client API's route tree, versioned under /v1, and the web client at /. */
public final class ApiRoutes {

  private ApiRoutes() {}

  /** The routes, and what a second WebSocket edge needs to admit and serve sessions the same way. */
  public record Api(Route route, Handlers handlers, TokenService tokens) {}

  public static Api create(
      ActorSystem<?> system, Settings settings, ChatSettings chat, ActorRef<NodeHub.Command> hub, JobSettings jobSettings) {
    String address = system.address().toString();
    ExportSettings exports = ExportSettings.from(system.settings().config(), jobSettings);
    TokenService tokens = new TokenService(settings.auth());
    JobService jobService = new JobService(system, jobSettings, chat.askTimeout());
    JobHandler jobs = new JobHandler(jobService, jobSettings);
    Handlers handlers = Handlers.create(
        system, chat, hub, settings.http().allowedOrigins(), tokens, jobs, ServerCredential.ofKey(jobSettings.workerKey()));
    // Built once: a route given as a Supplier is built again for every request, and these hold
    // node-wide state (REST's per-user request rates) that must outlive one request.
    Route v1 =
        concat(
            AuthRoutes.create(settings.auth(), tokens),
            WebSocketRoute.create(system, handlers, tokens),
            SseRoute.create(system, handlers, tokens),
            PollRoute.create(system, handlers, tokens),
            RestRoutes.create(system, handlers, tokens, ServerCredential.from(settings.auth())),
            JobRoutes.create(jobs, jobService, handlers.codec(), jobSettings, tokens, ServerCredential.from(settings.auth()), handlers.limits()),
            SpecRoutes.create(),
            ExportRoutes.create(
                new JobService(system, jobSettings, chat.askTimeout()), exports, new ExportStore(system, exports), tokens, ServerCredential.from(settings.auth()), handlers.limits()),
            path(
                "info",
                () ->
                    get(
                        () ->
                            complete(
                                HttpEntities.create(
                                    ContentTypes.APPLICATION_JSON,
                                    "{\"name\":\"parley\",\"protocol\":\"v1\",\"node\":\""
                                        + address
                                        + "\"}")))));
    Route web = WebRoutes.create();
    // CORS for pages of the allowed origins (PARLEY_ALLOWED_ORIGINS): REST, SSE and long-poll.
    // Every refusal under /v1 is a JSON error, and a request body is held to the frame limit.
    Route refusing = HttpAnswers.jsonRefusals(chat.maxFrameBytes(), () -> v1);
    return new Api(concat(pathPrefix("v1", () -> handlers.origins().cors(() -> refusing)), web), handlers, tokens);
  }
}
