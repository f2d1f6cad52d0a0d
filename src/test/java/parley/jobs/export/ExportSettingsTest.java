package parley.jobs.export;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import parley.jobs.JobSettings;

class ExportSettingsTest {

  private static final Config SHIPPED = ConfigFactory.load();

  @Test
  void theShippedExportQueueTakesNoDirectSubmissions() {
    JobSettings jobs = JobSettings.from(SHIPPED);
    ExportSettings export = ExportSettings.from(SHIPPED, jobs);
    assertEquals("parley.export", export.queue().name());
    assertFalse(export.queue().usersMaySubmit(), "members export through export_room, which checks membership");
    assertFalse(export.queue().serverMaySubmit());
    assertEquals(2, export.workers());
    assertEquals(500, export.pageSize());
    assertEquals(64 * 1024, export.chunkBytes());
    assertEquals(Duration.ofDays(7), export.retention());
    assertTrue(export.lease().compareTo(jobs.maxLease()) <= 0);
  }

  @Test
  void anUndeclaredQueueOrAnOutOfRangeSettingStopsTheNode() {
    Config undeclared = ConfigFactory.parseString("parley.jobs.export.queue = nowhere").withFallback(SHIPPED);
    IllegalArgumentException missing =
        assertThrows(IllegalArgumentException.class, () -> ExportSettings.from(undeclared, JobSettings.from(undeclared)));
    assertTrue(missing.getMessage().contains("nowhere"), missing.getMessage());

    Config tiny = ConfigFactory.parseString("parley.jobs.export.chunk-size = 10").withFallback(SHIPPED);
    assertThrows(IllegalArgumentException.class, () -> ExportSettings.from(tiny, JobSettings.from(tiny)));
    Config longLease = ConfigFactory.parseString("parley.jobs.export.lease = 1h").withFallback(SHIPPED);
    assertThrows(IllegalArgumentException.class, () -> ExportSettings.from(longLease, JobSettings.from(longLease)));
  }
}
