package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashSet;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.Test;

class SessionIdTest {

  @Test
  void isARandomUuidOfVersionFourAndTheIetfVariant() {
    String id = Session.newId();
    UUID parsed = UUID.fromString(id);

    assertEquals(id, parsed.toString());
    assertEquals(4, parsed.version());
    assertEquals(2, parsed.variant());
  }

  @Test
  void doesNotRepeat() {
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < 200_000; i++) {
      seen.add(Session.newId());
    }
    assertEquals(200_000, seen.size());
  }
}
