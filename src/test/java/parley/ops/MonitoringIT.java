package parley.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * The monitoring kit in deploy/monitoring/ against a real node: every metric the alert rules
 * and the Grafana dashboard name is one the node exports, and the rules pass promtool's own
 * checks and unit tests (parley-alerts-test.yml).
 */
class MonitoringIT {

  private static final Path KIT = Path.of(System.getProperty("parley.base.dir", ".")).resolve("deploy/monitoring");
  private static final Pattern METRIC = Pattern.compile("\\b((?:parley|jvm|process|system)_[a-z0-9_]+)");
  private static final Path PROMTOOL = Path.of("/usr/bin/promtool");

  private static InJvmNode node;

  @BeforeAll
  static void start() throws Exception {
    node = InJvmNode.start(TestCassandra.keyspacesFor("MonitoringIT"));
  }

  @AfterAll
  static void stop() throws Exception {
    node.close();
  }

  @Test
  void everyMetricTheRulesAndTheDashboardNameIsExported() throws Exception {
    // A message written and delivered, so the journal and message metrics have samples.
    String token = node.token("monitor");
    HttpResponse<String> created = node.rest("POST", "/v1/rooms", token, "{\"room\":\"monitored\"}", null);
    assertEquals(2, created.statusCode() / 100, created.body());
    HttpResponse<String> sent = node.rest("POST", "/v1/rooms/monitored/messages", token, "{\"body\":\"hi\"}", "m-1");
    assertEquals(2, sent.statusCode() / 100, sent.body());

    // Micrometer registers the GC pause timer at the first collection after the node bound its
    // metrics; a busy node has one within seconds, a fresh test JVM may not have had one yet.
    System.gc();

    Set<String> named = new TreeSet<>();
    for (String file : List.of("parley-alerts.yml", "grafana-dashboard.json")) {
      Matcher m = METRIC.matcher(Files.readString(KIT.resolve(file)));
      while (m.find()) {
        named.add(m.group(1));
      }
    }
    assertTrue(named.size() >= 10, "the kit names the node's metrics: " + named);
    // Shard and entity counts come from a poll every parley.ops.poll-interval (5 s).
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    Set<String> exported = scrape();
    while (!exported.containsAll(named) && System.nanoTime() < deadline) {
      Thread.sleep(500);
      exported = scrape();
    }
    Set<String> missing = new TreeSet<>(named);
    missing.removeAll(exported);
    assertTrue(missing.isEmpty(), "named in deploy/monitoring but not exported: " + missing + "\nexported: " + exported);
  }

  /** The names of the samples /metrics serves now. */
  private static Set<String> scrape() throws Exception {
    HttpResponse<String> scrape =
        HttpClient.newHttpClient()
            .send(HttpRequest.newBuilder(node.management().resolve("/metrics")).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, scrape.statusCode());
    return scrape.body().lines()
        .filter(l -> !l.startsWith("#") && !l.isBlank())
        .map(l -> l.split("[{ ]", 2)[0])
        .collect(Collectors.toCollection(TreeSet::new));
  }

  @Test
  void theAlertRulesPassPromtoolsChecksAndTests() throws Exception {
    assumeTrue(Files.isExecutable(PROMTOOL), "skipped: promtool is not installed (apt-get install -y prometheus)");
    assertPromtool("check", "rules", "parley-alerts.yml");
    assertPromtool("test", "rules", "parley-alerts-test.yml");
  }

  private static void assertPromtool(String... args) throws Exception {
    List<String> command = new java.util.ArrayList<>(List.of(PROMTOOL.toString()));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).directory(KIT.toFile()).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(process.waitFor(60, TimeUnit.SECONDS), "promtool ended");
    assertEquals(0, process.exitValue(), "promtool " + String.join(" ", args) + ":\n" + output);
  }
}
