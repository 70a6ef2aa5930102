package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The playground in a real browser: Debian's headless Chromium, driven through chromedriver by
 * Selenium, against a gateway in front of the real mesh. It enters the key and a prompt, submits,
 * waits for the stream, checks the tokens are coloured by provenance and the live statistics are
 * filled, and saves a screenshot under {@code target/playground/}.
 *
 * <p>Needs the Debian packages {@code chromium} and {@code chromium-driver}; without them it fails
 * (it does not skip). Nothing is downloaded: the driver and browser paths are given explicitly, so
 * Selenium Manager is never consulted.
 */
class PlaygroundBrowserIT {
  private static GatewayTestMesh mesh;
  private static GatewayServer gateway;
  private static WebDriver driver;
  private static Path profile;

  @BeforeAll
  static void start() throws Exception {
    String chromium = System.getProperty("chromium.binary", "/usr/bin/chromium");
    String chromedriver = System.getProperty("webdriver.chrome.driver", "/usr/bin/chromedriver");
    if (!new File(chromium).canExecute() || !new File(chromedriver).canExecute()) {
      fail(
          "headless Chromium is needed: "
              + chromium
              + " or "
              + chromedriver
              + " is missing (expected: apt-get install -y chromium chromium-driver)");
    }
    mesh = GatewayTestMesh.get();
    gateway = LoopbackGateway.start(mesh.config());
    profile = Files.createTempDirectory("chromium-profile");
    ChromeOptions options = new ChromeOptions();
    options.setBinary(chromium);
    options.addArguments(
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1100",
        "--user-data-dir=" + profile);
    ChromeDriverService service =
        new ChromeDriverService.Builder()
            .usingDriverExecutable(new File(chromedriver))
            .usingAnyFreePort()
            .build();
    driver = new ChromeDriver(service, options);
  }

  @AfterAll
  static void stop() {
    if (driver != null) {
      driver.quit();
    }
    if (gateway != null) {
      gateway.close();
    }
    if (profile != null) {
      try (java.util.stream.Stream<Path> files = Files.walk(profile)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (java.io.IOException e) {
        // a leftover temporary profile is harmless
      }
    }
  }

  private static void type(String id, String value) {
    WebElement e = driver.findElement(By.id(id));
    e.clear();
    e.sendKeys(value);
  }

  @Test
  void streamsTokensColouredByProvenance() throws Exception {
    driver.get("http://127.0.0.1:" + gateway.ports().http() + "/");
    assertThat(driver.getTitle()).isEqualTo("DraftMesh playground");

    type("api-key", GatewayTestMesh.KEY);
    driver.findElement(By.id("load-models")).click();
    WebDriverWait wait = new WebDriverWait(driver, Duration.ofSeconds(30));
    wait.until(d -> d.findElement(By.id("status")).getText().equals("models loaded"));
    new Select(driver.findElement(By.id("model"))).selectByValue("tiny");
    new Select(driver.findElement(By.id("strategy"))).selectByValue("speculative");
    type("k", "4");
    type("temperature", "0");
    type("max-tokens", "64");
    driver.findElement(By.id("ignore-eos")).click();
    type("prompt", "In the beginning was the word");
    driver.findElement(By.id("generate")).click();

    new WebDriverWait(driver, Duration.ofSeconds(60))
        .until(d -> d.findElement(By.id("status")).getText().startsWith("done"));
    assertThat(driver.findElement(By.id("status")).getText()).isEqualTo("done: length");

    List<WebElement> spans = driver.findElements(By.cssSelector("#output span.tok"));
    assertThat(spans).isNotEmpty();
    StringBuilder provenance = new StringBuilder();
    for (WebElement s : spans) {
      String cls = s.getAttribute("class");
      assertThat(cls).matches("tok prov-(draft_accepted|target|ngram_accepted|mixed)");
      provenance.append(s.getAttribute("data-provenance")).append(',');
      // Every span is painted: a background colour or (a verify round) a gradient.
      String colour = s.getCssValue("background-color");
      String image = s.getCssValue("background-image");
      assertThat(!colour.equals("rgba(0, 0, 0, 0)") || image.contains("linear-gradient"))
          .as("span %s is coloured (%s, %s)", cls, colour, image)
          .isTrue();
    }
    // The draft serves the target's own weights: drafts are accepted, and each round ends with
    // the target's token.
    assertThat(provenance.toString()).contains("draft_accepted").contains("target");
    WebElement draftLegend = driver.findElement(By.cssSelector("#legend .prov-draft_accepted"));
    WebElement targetLegend = driver.findElement(By.cssSelector("#legend .prov-target"));
    assertThat(draftLegend.getCssValue("background-color"))
        .isNotEqualTo(targetLegend.getCssValue("background-color"));

    assertThat(driver.findElement(By.id("acceptance")).getText())
        .matches("\\d+\\.\\d % \\(\\d+/\\d+\\)");
    double meanAccepted = Double.parseDouble(driver.findElement(By.id("mean-accepted")).getText());
    assertThat(meanAccepted).isGreaterThan(1.0);
    assertThat(driver.findElement(By.id("tokens")).getText()).startsWith("64");
    assertThat(driver.findElement(By.id("strategy-run")).getText()).isEqualTo("speculative");
    assertThat(driver.findElement(By.id("chart-caption")).getText())
        .isEqualTo("per-token entropy of the target (bits)");

    Path dir = Path.of("target", "playground");
    Files.createDirectories(dir);
    Path shot = dir.resolve("playground.png");
    Files.write(shot, ((TakesScreenshot) driver).getScreenshotAs(OutputType.BYTES));
    assertThat(Files.size(shot)).isGreaterThan(10_000);
  }

  @Test
  void showsTheAcceptedPathOfEveryTreeRound() {
    driver.get("http://127.0.0.1:" + gateway.ports().http() + "/");
    type("api-key", GatewayTestMesh.KEY);
    driver.findElement(By.id("load-models")).click();
    new WebDriverWait(driver, Duration.ofSeconds(30))
        .until(d -> d.findElement(By.id("status")).getText().equals("models loaded"));
    new Select(driver.findElement(By.id("model"))).selectByValue("tiny");
    new Select(driver.findElement(By.id("strategy"))).selectByValue("speculative");
    new Select(driver.findElement(By.id("drafter"))).selectByValue("dyspec");
    type("tree-nodes", "8");
    type("temperature", "0");
    type("max-tokens", "48");
    driver.findElement(By.id("ignore-eos")).click();
    type("prompt", "In the beginning was the word");
    driver.findElement(By.id("generate")).click();
    new WebDriverWait(driver, Duration.ofSeconds(60))
        .until(d -> d.findElement(By.id("status")).getText().startsWith("done"));
    assertThat(driver.findElement(By.id("status")).getText()).isEqualTo("done: length");

    StringBuilder provenance = new StringBuilder();
    for (WebElement sp : driver.findElements(By.cssSelector("#output span.tok"))) {
      assertThat(sp.getAttribute("class")).matches("tok prov-(tree_accepted|target|mixed)");
      provenance.append(sp.getAttribute("data-provenance")).append(',');
    }
    // The draft serves the target's weights: tree nodes are accepted.
    assertThat(provenance.toString()).contains("tree_accepted");
    assertThat(driver.findElement(By.id("drafter-run")).getText()).isEqualTo("dyspec (8 nodes)");
    // One entry per round, "#round: node→node..." (or none), root first.
    assertThat(driver.findElement(By.id("paths")).getText())
        .matches("(#\\d+: (none|\\d+(→\\d+)*)\\s*)+")
        .containsPattern("#\\d+: \\d+");
    assertThat(Double.parseDouble(driver.findElement(By.id("per-pass")).getText()))
        .isGreaterThan(1.0);
  }
}
