package parley.web;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.logging.Level;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.Keys;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.StaleElementReferenceException;
import org.openqa.selenium.TimeoutException;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.chromium.ChromiumNetworkConditions;
import org.openqa.selenium.interactions.Actions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * One person in the web client (or on any other page, {@link #open}): a headless Debian
 * Chromium driven by its own chromedriver, with a fresh profile. Nothing is downloaded: both binaries are given by path, so Selenium
 * Manager never runs. Tests skip (not fail) only where Chromium is not installed.
 */
final class Browser implements AutoCloseable {

  static final Path CHROMIUM = Path.of("/usr/bin/chromium");
  static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
  static final Duration WAIT = Duration.ofSeconds(20);

  final String user;
  final ChromeDriver driver;
  final WebDriverWait wait;
  private final Path profile;

  private Browser(String user, ChromeDriver driver, Path profile) {
    this.user = user;
    this.driver = driver;
    this.profile = profile;
    this.wait = new WebDriverWait(driver, WAIT);
  }

  static void assumeChromium() {
    assumeTrue(
        Files.isExecutable(CHROMIUM),
        "browser tests skipped: " + CHROMIUM + " is not installed (apt-get install -y chromium chromium-driver)");
  }

  /** Opens the client at {@code base} in a window of the given size, signed in as {@code user}. */
  static Browser signIn(URI base, String user, int width, int height) throws IOException {
    Browser browser = launch(user, width, height);
    browser.driver.get(base.resolve("/").toString());
    browser.visible(By.id("login-name")).sendKeys(user);
    browser.driver.findElement(By.id("login-submit")).click();
    browser.awaitOnline();
    return browser;
  }

  static Browser signIn(URI base, String user) throws IOException {
    return signIn(base, user, 1100, 760);
  }

  /** Opens {@code page}, any page, in a window of its own; {@code user} names its evidence. */
  static Browser open(URI page, String user) throws IOException {
    Browser browser = launch(user, 1100, 760);
    browser.driver.get(page.toString());
    return browser;
  }

  private static Browser launch(String user, int width, int height) throws IOException {
    assumeChromium();
    Path profile = Files.createTempDirectory("parley-chromium-" + user);
    ChromeOptions options = new ChromeOptions();
    options.setBinary(CHROMIUM.toFile());
    options.addArguments(
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--user-data-dir=" + profile,
        "--window-size=" + width + "," + height);
    options.setCapability("goog:loggingPrefs", Map.of("browser", "ALL"));
    ChromeDriverService service =
        new ChromeDriverService.Builder()
            .usingDriverExecutable(CHROMEDRIVER.toFile())
            .usingAnyFreePort()
            .build();
    Browser browser = new Browser(user, new ChromeDriver(service, options), profile);
    browser.driver.manage().window().setSize(new Dimension(width, height));
    return browser;
  }

  // ---------------------------------------------------------------------------------------
  // Waiting and finding

  <T> T until(Function<ChromeDriver, T> condition) {
    return until(WAIT, condition);
  }

  /** Waits at most {@code timeout}: for what must happen sooner than the usual wait allows. */
  <T> T until(Duration timeout, Function<ChromeDriver, T> condition) {
    try {
      return new WebDriverWait(driver, timeout).until(d -> condition.apply(driver));
    } catch (TimeoutException e) {
      saveEvidence();
      throw e;
    }
  }

  WebElement visible(By by) {
    try {
      return wait.until(ExpectedConditions.visibilityOfElementLocated(by));
    } catch (TimeoutException e) {
      saveEvidence();
      throw e;
    }
  }

  /** On a failed wait: the screen and the page's last WebSocket frames, beside the screenshots. */
  private void saveEvidence() {
    try {
      screenshot("FAILED-" + user);
      Object frames = js("return window.parley ? window.parley.frames() : 'no client';");
      StringBuilder console = new StringBuilder();
      driver.manage().logs().get(LogType.BROWSER).forEach(entry -> console.append(entry).append('\n'));
      Files.writeString(screenshots().resolve("FAILED-" + user + ".frames.txt"), frames + "\n--- console ---\n" + console);
    } catch (IOException | RuntimeException e) {
      // The evidence is a courtesy; the timeout is what the test reports.
    }
  }

  void awaitOnline() {
    visible(By.cssSelector("#conn-status[data-state='online']"));
  }

  Object js(String script, Object... args) {
    return ((JavascriptExecutor) driver).executeScript(script, args);
  }

  /** What the page logged as errors in the console (a refused script, a module that did not load). */
  List<String> consoleErrors() {
    return driver.manage().logs().get(LogType.BROWSER).getAll().stream()
        .filter(entry -> entry.getLevel().intValue() >= Level.SEVERE.intValue())
        .map(LogEntry::getMessage)
        .toList();
  }

  /** The page's last WebSocket frames each way, and each socket's end ("× who closed it"). */
  String frames() {
    return (String) js("return window.parley.frames();");
  }

  /**
   * Chromium's own network emulation, as DevTools' "Offline": the page gets the real
   * {@code offline}/{@code online} events and new connections fail, while a socket already open
   * stays open (as one does when a network really goes away, until TCP gives up).
   */
  void setNetwork(boolean up) {
    if (up) {
      driver.deleteNetworkConditions();
    } else {
      driver.setNetworkConditions(new ChromiumNetworkConditions().setOffline(true).setLatency(Duration.ZERO));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Chat

  /** The create-or-join dialog: {@code create} presses Create, otherwise Join. */
  void createOrJoin(String room, boolean create) {
    driver.findElement(By.cssSelector("[data-open='room-dialog']")).click();
    visible(By.id("room-name")).sendKeys(room);
    driver.findElement(By.id(create ? "room-create" : "room-join")).click();
    until(d -> d.getCurrentUrl().endsWith("#room/" + room));
    visible(By.id("room-view"));
  }

  /**
   * Clicks a button of the message {@code text} (shown on hover). A push can render the
   * message anew between finding the button and clicking it: then it is found again.
   */
  void clickInMessage(String text, String button) {
    until(
        d -> {
          try {
            WebElement message = message(text);
            new Actions(driver).moveToElement(message).perform();
            message.findElement(By.xpath(".//button[normalize-space(.)=" + literal(button) + "]")).click();
            return true;
          } catch (StaleElementReferenceException e) {
            return null;
          }
        });
  }

  void send(String text) {
    WebElement input = visible(By.id("composer-input"));
    input.sendKeys(text);
    input.sendKeys(Keys.ENTER);
  }

  /** The message whose body starts with {@code text}, once it is shown. */
  WebElement message(String text) {
    return until(d -> messages(text).stream().findFirst().orElse(null));
  }

  /** Waits until your message {@code text} is {@code pending}, {@code sent}, {@code delivered} or {@code read}. */
  void awaitStatus(String text, String status) {
    until(d -> status.equals(message(text).getDomAttribute("data-status")) ? true : null);
  }

  List<WebElement> messages(String text) {
    return driver.findElements(
        By.xpath("//ol[@id='timeline']/li[contains(@class,'msg')][.//div[@class='body'][starts-with(normalize-space(.), " + literal(text) + ")]]"));
  }

  /** The bodies of every message in the open room, top to bottom. */
  @SuppressWarnings("unchecked")
  List<String> bodies() {
    return (List<String>)
        js("return [...document.querySelectorAll('#timeline li.msg .body')].map(b => b.textContent);");
  }

  /** The seqs of every message in the open room, top to bottom (0 for one not yet stored). */
  @SuppressWarnings("unchecked")
  List<Long> seqs() {
    return (List<Long>)
        js("return [...document.querySelectorAll('#timeline li.msg')].map(m => Number(m.dataset.seq || 0));");
  }

  /** Clicks the conversation in the sidebar, which is drawn anew on every change: found again if it was. */
  void openConversation(String label) {
    until(
        d -> {
          try {
            WebElement link =
                d.findElements(By.xpath("//nav[@id='sidebar']//a[.//span[@class='nav-label'][normalize-space(.)=" + literal(label) + "]]"))
                    .stream()
                    .findFirst()
                    .orElse(null);
            if (link == null) {
              return null;
            }
            link.click();
            return true;
          } catch (StaleElementReferenceException e) {
            return null;
          }
        });
  }

  // ---------------------------------------------------------------------------------------
  // Documents

  void openDocument(String doc) {
    driver.findElement(By.cssSelector("#sidebar [data-open='doc-dialog']")).click();
    visible(By.id("doc-name")).sendKeys(doc, Keys.ENTER);
    until(d -> d.getCurrentUrl().endsWith("#doc/" + doc) ? true : null);
  }

  /** The document's editor, once the text has loaded. */
  WebElement editor() {
    return visible(By.cssSelector("#editor:not([readonly])"));
  }

  void awaitSaved() {
    visible(By.cssSelector("#doc-sync[data-pending='no']"));
  }

  // ---------------------------------------------------------------------------------------

  /** Saves what the window shows to target/web-screenshots/{name}.png. */
  void screenshot(String name) throws IOException {
    Path shot = driver.getScreenshotAs(OutputType.FILE).toPath();
    Files.copy(shot, screenshots().resolve(name + ".png"), StandardCopyOption.REPLACE_EXISTING);
  }

  private static Path screenshots() throws IOException {
    return Files.createDirectories(Path.of(System.getProperty("parley.build.dir", "target"), "web-screenshots"));
  }

  static String literal(String text) {
    if (!text.contains("'")) {
      return "'" + text + "'";
    }
    return "concat('" + text.replace("'", "', \"'\", '") + "')";
  }

  @Override
  public void close() throws IOException {
    try {
      driver.quit();
    } finally {
      try (var files = Files.walk(profile)) {
        files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }
}
