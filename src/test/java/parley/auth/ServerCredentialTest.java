package parley.auth;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class ServerCredentialTest {

  private static final String KEY = "backend-server-key-0123456789";

  private final ServerCredential credential = ServerCredential.from(settings(KEY));

  @Test
  void acceptsTheServerKeyAsBearerCredential() {
    assertTrue(credential.accepts("Bearer " + KEY));
    assertTrue(credential.accepts("bearer  " + KEY));
  }

  @Test
  void refusesAnythingElse() {
    assertFalse(credential.accepts(null));
    assertFalse(credential.accepts(""));
    assertFalse(credential.accepts("Bearer"));
    assertFalse(credential.accepts("Bearer " + KEY + "x"));
    assertFalse(credential.accepts("Bearer " + KEY.substring(1)));
    assertFalse(credential.accepts("Basic " + KEY));
    assertFalse(credential.accepts(KEY));
  }

  @Test
  void isOffAndAcceptsNothingWithoutAConfiguredKey() {
    ServerCredential off = ServerCredential.from(settings(""));

    assertFalse(off.enabled());
    assertFalse(off.accepts("Bearer "));
    assertFalse(off.accepts("Bearer anything"));
  }

  private static AuthSettings settings(String serverKey) {
    return new AuthSettings(
        TokenServiceTest.SECRET, Duration.ofHours(1), false, serverKey, Duration.ZERO);
  }
}
