package parley.transport.web;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.ConfigFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.http.javadsl.Http;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The node serves docs/'s specs, as the build copied them into the jar, as JSON. */
class SpecRoutesTest {

  private static final Path DOCS = Path.of(System.getProperty("parley.base.dir", ".")).resolve("docs");

  private static ActorTestKit testKit;
  private static URI base;

  @BeforeAll
  static void bind() throws Exception {
    // Reference configuration only: the node's own (cluster, persistence) is not needed here.
    testKit = ActorTestKit.create("SpecRoutesTest", ConfigFactory.parseString("pekko.actor.provider = local"));
    int port =
        Http.get(testKit.system())
            .newServerAt("127.0.0.1", 0)
            .bind(SpecRoutes.create())
            .toCompletableFuture()
            .get(10, TimeUnit.SECONDS)
            .localAddress()
            .getPort();
    base = URI.create("http://127.0.0.1:" + port + "/");
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  @ParameterizedTest
  @ValueSource(strings = {"asyncapi.json", "openapi.json"})
  void servesTheSpecOfDocsAsJson(String file) throws Exception {
    HttpResponse<String> response =
        HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()
            .send(HttpRequest.newBuilder(base.resolve(file)).build(), HttpResponse.BodyHandlers.ofString());

    assertEquals(200, response.statusCode());
    assertEquals("application/json", response.headers().firstValue("Content-Type").orElse(""));
    assertEquals(Files.readString(DOCS.resolve(file)), response.body());
  }
}
