package parley.collab.document;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class DocumentSettingsTest {

  @Test
  void defaultsComeFromDocumentsConf() {
    assertEquals(
        new DocumentSettings(100, 1000, 1024 * 1024, 1000, Duration.ofSeconds(10), Duration.ofSeconds(3), 512 * 1024),
        DocumentSettings.from(ConfigFactory.load()));
  }

  @Test
  void readsSizesWithUnits() {
    DocumentSettings settings =
        DocumentSettings.from(
            ConfigFactory.parseString("parley.documents.max-size = 64 KiB").withFallback(ConfigFactory.load()));

    assertEquals(65536, settings.maxBytes());
    assertEquals(true, settings.tooLarge("x".repeat(32769)));
    assertEquals(false, settings.tooLarge("x".repeat(32768)));
  }

  @Test
  void refusesNonPositiveLimits() {
    assertThrows(
        IllegalArgumentException.class,
        () -> new DocumentSettings(0, 1000, 1024, 1000, Duration.ofSeconds(10), Duration.ofSeconds(3), 1 << 20));
    assertThrows(
        IllegalArgumentException.class,
        () -> new DocumentSettings(100, 1000, 1024, 1000, Duration.ZERO, Duration.ofSeconds(3), 1 << 20));
  }
}
