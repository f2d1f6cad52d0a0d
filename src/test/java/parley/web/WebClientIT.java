package parley.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.Keys;
import org.openqa.selenium.WebElement;
import parley.client.ParleyClient;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * The web client in a real headless Chromium against one node and the real Cassandra: two
 * people chat, edit, load history, lose their connection and come back. Each test leaves a
 * screenshot of its final state in target/web-screenshots.
 */
class WebClientIT {

  private static InJvmNode node;
  private static URI base;

  @BeforeAll
  static void startNode() throws Exception {
    Browser.assumeChromium();
    node = InJvmNode.start(TestCassandra.keyspacesFor("WebClientIT"));
    base = node.http();
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void thePageRunsOnTheClientPackageWithinItsContentSecurityPolicy() throws Exception {
    try (Browser olga = Browser.signIn(base, "olga")) {
      assertEquals("ParleyClient", olga.js("return window.parley.client.constructor.name;"));
      @SuppressWarnings("unchecked")
      List<String> loaded =
          (List<String>) olga.js("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname);");
      for (String module : List.of("/sdk/index.js", "/sdk/client.js", "/sdk/transports.js", "/sdk/document.js", "/sdk/ot.js", "/sdk/sendStore.js")) {
        assertTrue(loaded.contains(module), module + " is loaded: " + loaded);
      }
      assertEquals(List.of(), olga.consoleErrors(), "nothing refused by the policy, no module missing");
    }
    HttpClient http = HttpClient.newHttpClient();
    HttpResponse<String> client =
        http.send(HttpRequest.newBuilder(base.resolve("/sdk/client.js")).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, client.statusCode());
    assertTrue(client.headers().firstValue("Content-Type").orElse("").contains("javascript"), client.headers().toString());
    assertTrue(client.body().contains("export class ParleyClient"), "the package's compiled module");
  }

  @Test
  void thePageAnswersHeartbeatsAndKeepsItsSocket() throws Exception {
    // A node that pings every 500 ms and drops a client silent for 1.5 s.
    InJvmNode fast =
        InJvmNode.start(
            TestCassandra.keyspacesFor("WebClientITHeartbeat"),
            0,
            0,
            ConfigFactory.parseString(
                "parley.chat.heartbeat-interval = 500ms\nparley.chat.heartbeat-timeout = 1s"));
    try (Browser erin = Browser.signIn(fast.http(), "erin")) {
      erin.awaitOnline();
      // Five pongs: more than 1.5 s on one socket, so it is kept because the page answers.
      erin.until(d -> erin.frames().split("→ \\{\"type\":\"pong\"}", -1).length > 5 ? true : null);
      String frames = erin.frames();
      assertFalse(frames.contains("heartbeat_timeout"), frames);
      assertFalse(frames.contains("× "), "the socket was never dropped:\n" + frames);
      assertEquals("online", erin.js("return window.parley.state();"));
    } finally {
      fast.close();
    }
  }

  @Test
  void twoSessionsChatAndSeeEachOthersMessagesTypingAndReceipts() throws Exception {
    try (Browser alice = Browser.signIn(base, "alice");
        Browser bob = Browser.signIn(base, "bob")) {
      alice.createOrJoin("lobby", true);
      alice.visible(By.xpath("//li[contains(@class,'sys')][contains(., 'alice created the room')]"));
      bob.createOrJoin("lobby", false);
      alice.visible(By.xpath("//li[contains(@class,'sys')][contains(., 'bob joined')]"));

      alice.send("hello bob");
      alice.awaitStatus("hello bob", "sent");
      WebElement atBob = bob.message("hello bob");
      assertEquals("alice", atBob.getDomAttribute("data-user"));

      // Bob has the room open at the bottom: his client marks it read, and Alice sees that.
      alice.visible(By.xpath("//li[contains(@class,'msg')][.//*[contains(@class,'seen')][contains(., 'Seen by bob')]]"));

      bob.visible(By.id("composer-input")).sendKeys("hi al");
      alice.until(d -> d.findElement(By.id("typing")).getText().equals("bob is typing…") ? true : null);
      bob.driver.findElement(By.id("composer-input")).sendKeys("ice", Keys.ENTER);
      alice.message("hi alice");
      alice.until(d -> d.findElement(By.id("typing")).getText().isEmpty() ? true : null);

      // Edit from the keyboard: ↑ in the empty composer edits your newest message.
      WebElement composer = alice.driver.findElement(By.id("composer-input"));
      composer.sendKeys(Keys.ARROW_UP);
      WebElement editor = alice.visible(By.cssSelector("li.editing textarea.edit-input"));
      editor.sendKeys(Keys.chord(Keys.CONTROL, "a"), "hello bob, welcome", Keys.ENTER);
      bob.visible(By.xpath("//li[contains(@class,'msg')][.//div[@class='body'][contains(., 'hello bob, welcome')][.//span[@class='edited']]]"));

      // Bob deletes his own message; Alice sees it go.
      bob.clickInMessage("hi alice", "Delete");
      alice.visible(By.xpath("//li[contains(@class,'msg') and contains(@class,'deleted')][@data-user='bob']"));
      assertTrue(alice.messages("hi alice").isEmpty(), "the deleted message's text is gone at alice");

      alice.screenshot("chat-alice");
      bob.screenshot("chat-bob");
    }
  }

  @Test
  void aDirectMessageGoesSentDeliveredThenReadInANarrowWindow() throws Exception {
    try (Browser carol = Browser.signIn(base, "carol");
        Browser dave = Browser.signIn(base, "dave", 400, 740)) {
      carol.driver.findElement(By.cssSelector("[data-open='dm-dialog']")).click();
      carol.visible(By.id("dm-user")).sendKeys("dave", Keys.ENTER);
      carol.until(d -> d.getCurrentUrl().endsWith("#room/dm:carol:dave") ? true : null);
      carol.send("are you there?");

      // Dave's client receives it while he looks elsewhere: delivered, not read.
      carol.awaitStatus("are you there?", "delivered");

      // In a narrow window the conversations sit behind the menu button.
      dave.visible(By.id("nav-toggle")).click();
      WebElement unread = dave.visible(By.xpath("//ul[@id='dm-list']//a[.//span[@class='nav-label'][.='carol']]//span[@class='badge']"));
      assertEquals("1", unread.getText());
      dave.openConversation("carol");
      dave.message("are you there?");
      carol.awaitStatus("are you there?", "read");
      dave.send("yes!");
      carol.message("yes!");

      carol.screenshot("dm-carol");
      dave.screenshot("dm-dave-narrow");
    }
  }

  @Test
  void olderHistoryLoadsAsYouScrollUp() throws Exception {
    try (ParleyClient seeder = ParleyClient.connect(node.ws(), ParleyClient.devToken(base, "erin")).get(20, TimeUnit.SECONDS)) {
      seeder.createRoom("archive", "public", "A long story").get(20, TimeUnit.SECONDS);
    }
    HttpClient http = HttpClient.newHttpClient();
    for (int i = 1; i <= 120; i++) {
      HttpResponse<String> posted =
          http.send(
              HttpRequest.newBuilder(base.resolve("/v1/rooms/archive/messages"))
                  .header("Authorization", "Bearer " + InJvmNode.SERVER_KEY)
                  .header("Idempotency-Key", "seed-" + i)
                  .POST(HttpRequest.BodyPublishers.ofString("{\"user\":\"erin\",\"body\":\"line " + i + "\"}"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, posted.statusCode(), posted.body());
    }
    try (Browser erin = Browser.signIn(base, "erin")) {
      erin.openConversation("archive");
      erin.message("line 120");
      assertFalse(erin.bodies().contains("line 1"), "only the newest page at first");

      // Scroll to the top until the room's first event shows, page by page.
      erin.until(
          d -> {
            erin.js("document.getElementById('timeline-scroll').scrollTop = 0;");
            return d.findElement(By.id("history-status")).getText().startsWith("This is the beginning") ? true : null;
          });
      List<String> expected = new ArrayList<>();
      for (int i = 1; i <= 120; i++) {
        expected.add("line " + i);
      }
      assertEquals(expected, erin.bodies());
      erin.js("document.getElementById('timeline-scroll').scrollTop = 0;");
      erin.screenshot("history-top");
    }
  }

  @Test
  void twoSessionsEditOneDocumentAtOnceAndConverge() throws Exception {
    try (Browser hana = Browser.signIn(base, "hana");
        Browser ivan = Browser.signIn(base, "ivan")) {
      hana.openDocument("plan");
      hana.visible(By.id("doc-create")).click();
      WebElement atHana = hana.editor();
      hana.visible(By.id("share-user")).sendKeys("ivan", Keys.ENTER);
      hana.until(d -> d.findElement(By.id("doc-meta")).getText().contains("editors: ivan") ? true : null);
      atHana.sendKeys("Agenda" + Keys.ENTER);
      hana.awaitSaved();

      ivan.openDocument("plan");
      WebElement atIvan = ivan.editor();
      ivan.until(d -> atIvan.getDomProperty("value").startsWith("Agenda") ? true : null);

      // Both type at once, from two threads, at opposite ends of the text.
      atHana.sendKeys(Keys.chord(Keys.CONTROL, Keys.HOME));
      atIvan.sendKeys(Keys.chord(Keys.CONTROL, Keys.END));
      ExecutorService typists = Executors.newFixedThreadPool(2);
      try {
        Future<?> first = typists.submit(() -> words(atHana, "hana wrote these words first"));
        Future<?> second = typists.submit(() -> words(atIvan, "ivan added these at the end"));
        first.get(60, TimeUnit.SECONDS);
        second.get(60, TimeUnit.SECONDS);
      } finally {
        typists.shutdownNow();
      }
      String converged = awaitSameText(hana, ivan);
      assertEquals("hana wrote these words first Agenda\nivan added these at the end ", converged);
      hana.visible(By.cssSelector("#editor-overlay .remote-caret[data-user='ivan']"));
      ivan.visible(By.cssSelector("#editor-overlay .remote-caret[data-user='hana']"));

      // Hana's network goes while both keep typing; she comes back and nothing is lost.
      hana.setNetwork(false);
      hana.visible(By.id("offline-banner"));
      words(atHana, "(offline)");
      words(atIvan, "(online)");
      ivan.awaitSaved();
      hana.setNetwork(true);
      hana.awaitOnline();
      String healed = awaitSameText(hana, ivan);
      assertEquals("hana wrote these words first (offline) Agenda\nivan added these at the end (online) ", healed);

      hana.screenshot("document-hana");
      ivan.screenshot("document-ivan");
    }
  }

  /** Types word by word, each its own WebDriver command, so two typists interleave. */
  private static void words(WebElement editor, String text) {
    for (String word : text.split(" ")) {
      editor.sendKeys(word + " ");
    }
  }

  /** Waits until both editors show one text with nothing unsaved, and returns it. */
  private static String awaitSameText(Browser a, Browser b) {
    return a.until(
        d -> {
          String one = (String) a.js("return window.parley.documentState();");
          String two = (String) b.js("return window.parley.documentState();");
          return one != null && one.equals(two) && one.startsWith("saved:") ? one.substring("saved:".length()) : null;
        });
  }

  @Test
  void aSessionWhoseSocketIsCutComesBackWithWhatItMissed() throws Exception {
    try (Browser frank = Browser.signIn(base, "frank");
        Browser grace = Browser.signIn(base, "grace")) {
      frank.createOrJoin("ops", true);
      grace.createOrJoin("ops", false);
      frank.send("before the cut");
      grace.message("before the cut");

      grace.setNetwork(false);
      grace.visible(By.id("offline-banner"));
      grace.send("sent while offline");
      assertEquals("pending", grace.message("sent while offline").getDomAttribute("data-status"));
      for (String missed : List.of("missed 1", "missed 2", "missed 3")) {
        frank.send(missed);
        frank.awaitStatus(missed, "sent");
      }
      grace.screenshot("reconnect-grace-offline");

      grace.setNetwork(true);
      grace.until(d -> d.findElement(By.id("offline-banner")).isDisplayed() ? null : true);
      grace.message("missed 3");
      grace.awaitStatus("sent while offline", "sent");
      frank.message("sent while offline");

      // Everything once, in seq order, at both ends.
      List<String> atGrace = grace.bodies();
      for (String body : List.of("before the cut", "missed 1", "missed 2", "missed 3", "sent while offline")) {
        assertEquals(1, atGrace.stream().filter(body::equals).count(), body + " once at grace: " + atGrace);
        frank.message(body);
        assertEquals(1, frank.bodies().stream().filter(body::equals).count(), body + " once at frank");
      }
      assertEquals(List.of("before the cut", "missed 1", "missed 2", "missed 3"), atGrace.subList(0, 4));
      List<Long> seqs = grace.seqs();
      for (int i = 1; i < seqs.size(); i++) {
        assertTrue(seqs.get(i - 1) < seqs.get(i), "seqs increase: " + seqs);
      }

      // A plain cut (no outage) reconnects at once and resumes too.
      grace.js("window.parley.debugDropSocket()");
      frank.send("right after");
      grace.message("right after");
      grace.awaitOnline();
      assertEquals(1, grace.bodies().stream().filter("right after"::equals).count());
      grace.screenshot("reconnect-grace");
      frank.screenshot("reconnect-frank");
    }
  }

  @Test
  void openingARoomOrADirectMessageShowsWhoIsOnlineWithoutWaitingForAChange() throws Exception {
    // pia is online before ada's page exists, and does nothing after: no push will say so.
    try (ParleyClient pia = ParleyClient.connect(node.ws(), ParleyClient.devToken(base, "pia")).get(20, TimeUnit.SECONDS)) {
      pia.createRoom("studio", "public", null).get(20, TimeUnit.SECONDS);
      pia.sendDm("ada", "dm-1", "are you around?").get(20, TimeUnit.SECONDS);
      // quinn is a member who never connected: joined by REST, no session ever.
      HttpClient http = HttpClient.newHttpClient();
      for (String user : List.of("quinn", "ada")) {
        HttpResponse<String> joined =
            http.send(
                HttpRequest.newBuilder(base.resolve("/v1/rooms/studio/join"))
                    .header("Authorization", "Bearer " + ParleyClient.devToken(base, user))
                    .POST(HttpRequest.BodyPublishers.noBody())
                    .build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, joined.statusCode(), joined.body());
      }

      try (Browser ada = Browser.signIn(base, "ada")) {
        ada.openConversation("pia");
        ada.until(d -> d.findElement(By.id("room-members")).getText().equals("pia is online") ? true : null);

        ada.openConversation("studio");
        ada.visible(By.cssSelector("#room-members .member[data-user='pia'] .dot[data-presence='online']"));
        WebElement quinn = ada.visible(By.cssSelector("#room-members .member[data-user='quinn'] .dot"));
        assertEquals("offline", quinn.getDomAttribute("data-presence"), "never connected is offline, not online");
        assertEquals("offline", quinn.getDomAttribute("aria-label"), "and never seen: no last-seen time");
        ada.screenshot("presence-ada");

        // Changes still come as pushes: pia leaves, and ada sees when she was last there.
        pia.close();
        WebElement gone =
            ada.visible(By.cssSelector("#room-members .member[data-user='pia'] .dot[data-presence='offline']"));
        assertTrue(gone.getDomAttribute("aria-label").startsWith("offline, last seen "), gone.getDomAttribute("aria-label"));
      }
    }
  }

  @Test
  void membersOfARoomTooBigToListPresenceAreUnknownNotOffline() throws Exception {
    // Presence is listed only for rooms of up to presence-list-limit members: here, none.
    InJvmNode big =
        InJvmNode.start(
            TestCassandra.keyspacesFor("WebClientITBigRoom"), 0, 0, ConfigFactory.parseString("parley.chat.presence-list-limit = 0"));
    try (ParleyClient uma = ParleyClient.connect(big.ws(), ParleyClient.devToken(big.http(), "uma")).get(20, TimeUnit.SECONDS);
        Browser vic = Browser.signIn(big.http(), "vic")) {
      uma.createRoom("hall", "public", null).get(20, TimeUnit.SECONDS);
      vic.createOrJoin("hall", false);
      WebElement dot = vic.visible(By.cssSelector("#room-members .member[data-user='uma'] .dot"));
      // The members list has come (uma is in it) and says nothing of presence: unknown.
      assertEquals("unknown", dot.getDomAttribute("data-presence"));
      assertEquals("presence unknown", dot.getDomAttribute("aria-label"));
      // Drawn as nothing, unlike an offline member's ring.
      assertEquals("rgba(0, 0, 0, 0)", dot.getCssValue("background-color"));
      assertEquals("none", dot.getCssValue("border-top-style"));
      vic.screenshot("presence-unknown-vic");
    } finally {
      big.close();
    }
  }

  @Test
  void thePageIsOfflineTheMomentTheBrowserIsAndReconnectsTheMomentItIsBack() throws Exception {
    try (Browser rita = Browser.signIn(base, "rita")) {
      rita.createOrJoin("field", true);
      rita.send("before the outage");
      rita.awaitStatus("before the outage", "sent");

      // The socket stays open under the emulation, as it would on a real network that went
      // away; the heartbeat would notice after 50 s. The page must not wait for it.
      rita.setNetwork(false);
      rita.until(Duration.ofSeconds(5), d -> "offline".equals(d.findElement(By.id("conn-status")).getDomAttribute("data-state")) ? true : null);
      assertEquals("Offline", rita.driver.findElement(By.id("conn-text")).getText());
      assertTrue(rita.driver.findElement(By.id("offline-banner")).isDisplayed());
      assertTrue(rita.frames().contains("× closed by the client"), "the page dropped the socket itself:\n" + rita.frames());
      rita.screenshot("offline-rita");

      rita.send("written offline");
      assertEquals("pending", rita.message("written offline").getDomAttribute("data-status"));
      publish("field", "missed-1", "sent while rita was away");

      // Let the backoff grow until its next attempt is far off, then bring the network back:
      // the page must not wait for that attempt.
      rita.until(Duration.ofSeconds(40), d -> ((Number) rita.js("return window.parley.nextAttemptIn();")).longValue() > 6000 ? true : null);
      rita.setNetwork(true);
      rita.until(Duration.ofSeconds(5), d -> "online".equals(rita.js("return window.parley.state();")) ? true : null);

      // And it resumes: what was missed comes, what was written goes.
      rita.message("sent while rita was away");
      rita.awaitStatus("written offline", "sent");
      assertEquals(List.of("before the outage", "sent while rita was away", "written offline"), rita.bodies());
      rita.screenshot("offline-rita-back");
    }
  }

  @Test
  void aDirectConversationShowsItsMessagesButNoCreatedOrJoinedLines() throws Exception {
    try (Browser sam = Browser.signIn(base, "sam");
        Browser tess = Browser.signIn(base, "tess")) {
      sam.driver.findElement(By.cssSelector("[data-open='dm-dialog']")).click();
      sam.visible(By.id("dm-user")).sendKeys("tess", Keys.ENTER);
      sam.until(d -> d.getCurrentUrl().endsWith("#room/dm:sam:tess") ? true : null);
      sam.send("hi tess");
      sam.awaitStatus("hi tess", "delivered");
      tess.openConversation("sam");
      tess.message("hi tess");
      tess.send("hi sam");
      sam.message("hi sam");

      // Live at both ends, and from history after a reload: the room's creation and joins
      // reached the page, and only the messages are shown.
      tess.driver.navigate().refresh();
      tess.awaitOnline();
      tess.message("hi sam");
      for (Browser at : List.of(sam, tess)) {
        at.until(d -> at.frames().contains("\"room\":\"dm:sam:tess\"") && at.frames().contains("\"kind\":\"joined\"") ? true : null);
        assertEquals(List.of("hi tess", "hi sam"), at.bodies(), at.user);
        assertTrue(at.driver.findElements(By.cssSelector("#timeline li.sys")).isEmpty(), at.user + " shows no created/joined line");
      }
      sam.screenshot("dm-sam-no-system-lines");
    }
  }

  @Test
  void aMemberExportsTheRoomsHistoryWatchesItsProgressAndDownloadsIt() throws Exception {
    try (Browser gina = Browser.signIn(base, "gina")) {
      gina.createOrJoin("exported", true);
      for (int i = 0; i < 5; i++) {
        gina.send("archived " + i);
        gina.awaitStatus("archived " + i, "sent");
      }
      gina.visible(By.id("room-export")).click();

      // The job's pushes drive the panel: the bar ends full and a download link appears.
      WebElement link = gina.visible(By.id("export-download"));
      assertEquals("100", gina.driver.findElement(By.id("export-progress")).getDomProperty("value"));
      assertTrue(gina.driver.findElement(By.id("export-text")).getText().startsWith("Export ready: 6 events"), gina.driver.findElement(By.id("export-text")).getText());
      assertEquals("exported-history.ndjson", link.getDomAttribute("download"));
      assertTrue(gina.frames().contains("\"type\":\"job\""), "the page follows the export by job pushes");

      // Clicking the link downloads the export: every event once, in seq order.
      Path downloads = Files.createTempDirectory("parley-downloads");
      gina.driver.executeCdpCommand("Browser.setDownloadBehavior", Map.of("behavior", "allow", "downloadPath", downloads.toString()));
      link.click();
      Path file = downloads.resolve("exported-history.ndjson");
      gina.until(d -> Files.exists(file) ? true : null);
      String export = Files.readString(file);
      List<String> lines = export.lines().toList();
      assertEquals(6, lines.size(), export);
      for (int i = 0; i < lines.size(); i++) {
        assertTrue(lines.get(i).contains("\"seq\":" + (i + 1) + ","), lines.get(i));
      }
      for (int i = 0; i < 5; i++) {
        assertTrue(lines.get(i + 1).contains("\"body\":\"archived " + i + "\""), lines.get(i + 1));
      }
      gina.screenshot("export-ready");
      Files.delete(file);
      Files.delete(downloads);
    }
  }

  /** Posts into {@code room} as the application backend would (the server publish API). */
  private static void publish(String room, String key, String body) throws Exception {
    HttpResponse<String> posted =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(base.resolve("/v1/rooms/" + room + "/messages"))
                    .header("Authorization", "Bearer " + InJvmNode.SERVER_KEY)
                    .header("Idempotency-Key", key)
                    .POST(HttpRequest.BodyPublishers.ofString("{\"user\":\"system\",\"body\":\"" + body + "\"}"))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    assertEquals(200, posted.statusCode(), posted.body());
  }
}
