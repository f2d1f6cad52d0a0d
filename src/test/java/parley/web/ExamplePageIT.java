package parley.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.net.httpserver.HttpServer;
import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.Keys;
import org.openqa.selenium.TimeoutException;
import org.openqa.selenium.support.ui.ExpectedConditions;
import parley.testing.InJvmNode;
import parley.testing.Npm;
import parley.testing.TestCassandra;

/**
 * examples/chat/index.html run as its README says: the client package built by {@code npm run
 * build}, the repository's root served over HTTP, a node whose allowed origins name that
 * server's, and the page opened in headless Chromium with the node, user and room in its query.
 * The page imports the package's build by a relative path, so it runs only if that import does.
 */
class ExamplePageIT {

  private static final Path ROOT = Path.of(System.getProperty("parley.base.dir", ".")).toAbsolutePath().normalize();
  private static final String ROOM = "porch";
  private static HttpServer site;
  private static InJvmNode node;

  @BeforeAll
  static void start() throws Exception {
    Browser.assumeChromium();
    assumeTrue(Npm.available(), "example page test skipped: npm (Node 20) is not installed");
    Npm.built(ROOT.resolve("clients").resolve("js"));
    site = serve(ROOT);
    node =
        InJvmNode.start(
            TestCassandra.keyspacesFor("ExamplePageIT"),
            0,
            0,
            ConfigFactory.parseString("parley.http.allowed-origins = \"" + origin() + "\""));
  }

  @AfterAll
  static void stop() throws Exception {
    try {
      if (node != null) {
        node.close();
      }
    } finally {
      if (site != null) {
        site.stop(0);
      }
    }
  }

  @Test
  void twoPagesOnThePackagesBuildChatInOneRoom() throws Exception {
    try (Browser ann = open("ann")) {
      printed(ann, "\\[open over websocket\\]");
      printed(ann, "connected as ann");
      @SuppressWarnings("unchecked")
      List<String> loaded =
          (List<String>) ann.js("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname);");
      assertTrue(loaded.contains("/clients/js/dist/index.js"), "the page runs on the package's build: " + loaded);

      say(ann, "first from the page");
      printed(ann, seqOf("ann", "first from the page"));

      try (Browser ben = open("ben")) {
        printed(ben, "connected as ben");
        // The form is enabled once the page has created or joined the room.
        ben.wait.until(ExpectedConditions.elementToBeClickable(By.id("line")));
        printed(ann, seqOf("ben", "\\(joined\\)"));

        say(ann, "hello ben");
        String annSaid = printed(ann, seqOf("ann", "hello ben")).group(1);
        assertEquals(annSaid, printed(ben, seqOf("ann", "hello ben")).group(1), "one seq at both pages");

        say(ben, "hello ann");
        String benSaid = printed(ben, seqOf("ben", "hello ann")).group(1);
        assertEquals(benSaid, printed(ann, seqOf("ben", "hello ann")).group(1), "one seq at both pages");
        ann.screenshot("example-page-ann");
        ben.screenshot("example-page-ben");
      }
    }
  }

  /** The page as the README opens it, with {@code url}, {@code user} and {@code room} in its query. */
  private static Browser open(String user) throws IOException {
    String query =
        "url=" + URLEncoder.encode(node.http().toString(), StandardCharsets.UTF_8) + "&user=" + user + "&room=" + ROOM;
    return Browser.open(URI.create(origin() + "/examples/chat/?" + query), user);
  }

  /** The page's line for an event of the room: {@code <room> #<seq> <user>: <body>}, the seq captured. */
  private static String seqOf(String user, String bodyRegex) {
    return Pattern.quote(ROOM) + " #(\\d+) " + Pattern.quote(user) + ": " + bodyRegex;
  }

  /** Types {@code line} in the page's form and submits it with Enter. */
  private static void say(Browser page, String line) {
    page.wait.until(ExpectedConditions.elementToBeClickable(By.id("line"))).sendKeys(line, Keys.ENTER);
  }

  /**
   * Waits for a line of the page's log that is all of {@code regex}. A page whose module did not
   * load prints nothing: the failure then shows the console, which says why.
   */
  private static Matcher printed(Browser page, String regex) {
    Pattern line = Pattern.compile("^" + regex + "$", Pattern.MULTILINE);
    try {
      return page.wait.until(
          d -> {
            Matcher found = line.matcher(log(page));
            return found.find() ? found : null;
          });
    } catch (TimeoutException e) {
      throw new AssertionError(
          page.user + "'s page printed no line matching " + line + ":\n" + log(page) + "\nconsole: " + page.consoleErrors(), e);
    }
  }

  private static String log(Browser page) {
    return page.driver.findElement(By.id("log")).getDomProperty("textContent");
  }

  private static String origin() {
    return "http://127.0.0.1:" + site.getAddress().getPort();
  }

  /**
   * {@code root} over HTTP as {@code python3 -m http.server} serves it in the README: a folder
   * as its index.html, and modules as JavaScript, which a browser requires of an ES module.
   */
  private static HttpServer serve(Path root) throws IOException {
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext(
        "/",
        exchange -> {
          try (exchange) {
            Path file = root.resolve(exchange.getRequestURI().getPath().substring(1)).normalize();
            if (Files.isDirectory(file)) {
              file = file.resolve("index.html");
            }
            if (!"GET".equals(exchange.getRequestMethod()) || !file.startsWith(root) || !Files.isRegularFile(file)) {
              exchange.sendResponseHeaders(404, -1);
              return;
            }
            exchange.getResponseHeaders().set("Content-Type", contentType(file));
            exchange.sendResponseHeaders(200, Files.size(file));
            Files.copy(file, exchange.getResponseBody());
          }
        });
    server.start();
    return server;
  }

  private static String contentType(Path file) {
    String name = file.getFileName().toString();
    return switch (name.substring(name.lastIndexOf('.') + 1)) {
      case "html" -> "text/html; charset=utf-8";
      case "js" -> "text/javascript; charset=utf-8";
      case "json", "map" -> "application/json";
      case "css" -> "text/css; charset=utf-8";
      default -> "application/octet-stream";
    };
  }
}
