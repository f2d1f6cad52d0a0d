package parley.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DocumentsScenarioTest {

  private static Map<String, Object> step(int rate, int opsPerSecond, double ackP99, int errors) {
    return Map.of("step", "1x20 rate=" + rate, "ops_per_s", opsPerSecond, "ack_p99_ms", ackP99, "errors", errors);
  }

  @Test
  void capacityIsTheMostAcknowledgedOperationsInAStepWithinThe50msP99AndWithoutErrors() {
    List<Map<String, Object>> rows =
        List.of(step(5, 100, 8.0, 0), step(10, 200, 49.9, 0), step(20, 390, 48.0, 3), step(40, 420, 75.0, 0));
    assertEquals(Map.of("step", "1x20 capacity", "ops_per_s_at_p99_50ms", 200L),
        DocumentsScenario.capacity("1x20 capacity", rows));
  }

  @Test
  void capacityIsZeroWhenNoStepStayedWithinTheLimit() {
    List<Map<String, Object>> rows = List.of(step(5, 100, 51.0, 0), Map.of("step", "1x20 rate=10", "ops_per_s", 0));
    assertEquals(0L, DocumentsScenario.capacity("1x20 capacity", rows).get("ops_per_s_at_p99_50ms"));
  }
}
