// A bare Pekko HTTP WebSocket echo: the floor of Parley's current transport (issue 15). Every
// frame goes back as it came; there is no session, no actor, no timer, no authentication. What
// an idle connection costs here is what Pekko HTTP's connection and WebSocket stream machinery
// costs before Parley adds anything, measured with the same load tool, the same scenario
// (`bench connections --target pekko-echo`, spoken by parley.bench.WsLink) and the same JVM
// settings as the node.
//
// Not part of any artifact: a single source file run on the node's classpath, so it uses the
// node's Pekko and Pekko HTTP versions and the load tool never links Pekko.
//
//   java -Xms2g -Xmx2g -XX:+AlwaysPreTouch -cp 'target/lib/*' bench/peers/PekkoEcho.java [port]
//
// Listens on 127.0.0.1 (default port PEER_PEKKO_ECHO_PORT, else 18304), WebSocket upgrades on
// "/". The server settings that touch an idle connection are the node's (conf/http.conf);
// nothing else of the node's configuration is loaded. A system property overrides them, to see
// what one costs: -Dpekko.http.server.idle-timeout=infinite.

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.model.ws.Message;
import org.apache.pekko.http.javadsl.server.Directives;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.stream.javadsl.Flow;

public final class PekkoEcho {

  public static void main(String[] argv) {
    int port = Integer.parseInt(
        argv.length > 0 ? argv[0] : System.getenv().getOrDefault("PEER_PEKKO_ECHO_PORT", "18304"));
    Config config = ConfigFactory.systemProperties()
        .withFallback(ConfigFactory.parseString(
            """
            pekko.loglevel = WARNING
            pekko.http.server.idle-timeout = 120s
            pekko.http.server.server-header = ""
            """))
        .withFallback(ConfigFactory.load());
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "pekko-echo", config);

    Flow<Message, Message, NotUsed> echo = Flow.create();
    Route route = Directives.pathSingleSlash(() -> Directives.handleWebSocketMessages(echo));
    Http.get(system)
        .newServerAt("127.0.0.1", port)
        .bind(route)
        .whenComplete(
            (binding, error) -> {
              if (error != null) {
                System.err.println("pekko-echo: cannot listen on 127.0.0.1:" + port + ": " + error);
                system.terminate();
                return;
              }
              System.out.printf(
                  "pekko-echo listening on 127.0.0.1:%d (pid %d)%n", port, ProcessHandle.current().pid());
            });
  }
}
