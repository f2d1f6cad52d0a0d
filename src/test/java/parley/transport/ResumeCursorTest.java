package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class ResumeCursorTest {

  private static final long EPOCH = 1_764_800_000_000L;

  @Test
  void aCursorNamesItsCheckpointAndTheRoomsMovedSince() {
    Map<String, ResumeCursor.Position> moved = Map.of("mix", new ResumeCursor.Position(5, EPOCH), "dm:alice:bob", new ResumeCursor.Position(0, 0));
    ResumeCursor decoded = ResumeCursor.decode(new ResumeCursor("Xq3vN0bQ8kT2mYcA", Map.of(), moved).encode());
    assertEquals("Xq3vN0bQ8kT2mYcA", decoded.checkpoint());
    assertEquals(moved, decoded.rooms());

    ResumeCursor none = ResumeCursor.decode(new ResumeCursor(Map.of("mix", new ResumeCursor.Position(4, EPOCH))).encode());
    assertNull(none.checkpoint());
    assertEquals("2..A21peASAzLDVqjM", new ResumeCursor(Map.of("mix", new ResumeCursor.Position(4, 1_763_800_000_000L))).encode(), "the docs' example");
  }

  @Test
  void aCursorMayCarryItsPlaceInTheJobPushes() {
    ResumeCursor.Jobs jobs = new ResumeCursor.Jobs("k3x9a1", 1234);
    String encoded = new ResumeCursor("Xq3vN0bQ8kT2mYcA", Map.of(), Map.of("mix", new ResumeCursor.Position(5, EPOCH)), jobs).encode();
    assertEquals(jobs, ResumeCursor.decode(encoded).jobs());
    assertEquals(Map.of("mix", new ResumeCursor.Position(5, EPOCH)), ResumeCursor.decode(encoded).rooms());
    assertNull(ResumeCursor.decode("2..A21peASAzLDVqjM").jobs(), "a cursor from before has no place");
    for (String bad : List.of("2..A21peASAzLDVqjM.", "2..A21peASAzLDVqjM.k3x9a1", "2..A21peASAzLDVqjM.K3-1", "2..A21peASAzLDVqjM.k3-")) {
      assertThrows(ResumeCursor.Invalid.class, () -> ResumeCursor.decode(bad), bad);
    }
  }

  @Test
  void theCheckpointsPositionsGiveWayToTheDelta() {
    ResumeCursor cursor = new ResumeCursor("id", Map.of(), Map.of("a", new ResumeCursor.Position(9, 1)))
        .withBase(Map.of("a", new ResumeCursor.Position(3, 1), "b", new ResumeCursor.Position(7, 1)));
    assertEquals(Map.of("a", new ResumeCursor.Position(9, 1), "b", new ResumeCursor.Position(7, 1)), cursor.positions());
  }

  @Test
  void aVersion1CursorIsStillRead() {
    String v1 = Base64.getUrlEncoder().withoutPadding()
        .encodeToString(("{\"v\":1,\"r\":{\"mix\":[4," + EPOCH + "]}}").getBytes(StandardCharsets.UTF_8));
    assertEquals(Map.of("mix", new ResumeCursor.Position(4, EPOCH)), ResumeCursor.decode(v1).positions());
  }

  @Test
  void anythingElseIsInvalid() {
    String truncated = new ResumeCursor(Map.of("mix", new ResumeCursor.Position(300, EPOCH))).encode();
    for (String bad : List.of(
        "2.",
        "2.bad id!.",
        "2..***",
        truncated.substring(0, truncated.length() - 2),
        "2.." + Base64.getUrlEncoder().withoutPadding().encodeToString(new byte[] {3, 'a', '/', 'b', 1, 1}),
        "2.." + Base64.getUrlEncoder().withoutPadding().encodeToString(new byte[] {0, 1, 1}),
        "2.." + Base64.getUrlEncoder().withoutPadding().encodeToString(new byte[] {1, 'a', -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}),
        "not a cursor",
        Base64.getUrlEncoder().encodeToString("{\"v\":3}".getBytes(StandardCharsets.UTF_8)))) {
      assertThrows(ResumeCursor.Invalid.class, () -> ResumeCursor.decode(bad), bad);
    }
  }

  @Test
  void aThousandRoomsSpelledOutWouldNotFitAUrlWhichIsWhyCursorsNameACheckpoint() {
    Map<String, ResumeCursor.Position> rooms = new TreeMap<>();
    for (int i = 0; i < 1000; i++) {
      rooms.put(String.format("project-room-%04d", i), new ResumeCursor.Position(1234, EPOCH));
    }
    int spelledOut = new ResumeCursor(rooms).encode().length();
    System.out.printf("[cursor] 1000 rooms of 17-character ids spelled out: %d chars%n", spelledOut);
    assertTrue(spelledOut > 8192, "more than any header or URL limit: " + spelledOut);
  }
}
