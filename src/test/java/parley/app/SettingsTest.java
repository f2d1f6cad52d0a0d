package parley.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class SettingsTest {

  @Test
  void allowedOriginsAreSchemeHostAndPortOrAStar() {
    assertEquals(
        List.of("https://app.example.com", "http://localhost:3000", "*"),
        Settings.parseOrigins(" https://app.example.com , http://localhost:3000,*,"));
    assertEquals(List.of(), Settings.parseOrigins(""));
  }

  @Test
  void anEntryThatIsNoOriginStopsTheNodeNamingIt() {
    for (String bad : List.of("app.example.com", "https://app.example.com/path", "ftp://app.example.com", "https://", "https://a.example?x=1")) {
      StartupFailure failure = assertThrows(StartupFailure.class, () -> Settings.parseOrigins("https://ok.example," + bad));
      assertTrue(failure.getMessage().contains("'" + bad + "'"), failure.getMessage());
    }
  }
}
