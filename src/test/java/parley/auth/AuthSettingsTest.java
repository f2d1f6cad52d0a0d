package parley.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigResolveOptions;
import com.typesafe.config.ConfigValueFactory;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import parley.app.StartupFailure;

class AuthSettingsTest {

  private static final String GOOD_SECRET = "a-production-secret-of-forty-bytes-long!";

  @Test
  void productionWithoutSecretRefusesToStart() {
    StartupFailure failure =
        assertThrows(StartupFailure.class, () -> AuthSettings.from(profile("production")));

    assertTrue(failure.getMessage().contains("PARLEY_AUTH_SECRET"), failure.getMessage());
  }

  @Test
  void secretShorterThan32BytesRefusesToStart() {
    Config config = withSecret(profile("production"), "x".repeat(31));

    StartupFailure failure = assertThrows(StartupFailure.class, () -> AuthSettings.from(config));

    assertTrue(failure.getMessage().contains("31 bytes"), failure.getMessage());
  }

  @Test
  void productionDefaultsKeepDevTokensAndPublishApiOff() {
    AuthSettings settings = AuthSettings.from(withSecret(profile("production"), GOOD_SECRET));

    assertFalse(settings.devTokens());
    assertFalse(settings.publishApiEnabled());
    assertEquals(Duration.ofHours(24), settings.tokenTtl());
    assertEquals(Duration.ofSeconds(30), settings.clockSkew());
  }

  @Test
  void devProfileHasASecretAndDevTokens() {
    AuthSettings settings = AuthSettings.from(profile("dev"));

    assertTrue(settings.devTokens());
    assertTrue(settings.secretBytes().length >= AuthSettings.MIN_SECRET_BYTES);
  }

  @Test
  void tokensLiveADayAtMostAndNoIdentityProviderIsConfiguredByDefault() {
    AuthSettings settings = AuthSettings.from(withSecret(profile("production"), GOOD_SECRET));

    assertEquals(Duration.ofHours(24), settings.tokenMaxLifetime());
    assertFalse(settings.jwks().enabled());
  }

  @Test
  void devTokensLongerThanTheMaximumLifetimeRefuseToStart() {
    Config config =
        profile("dev").withValue("parley.auth.token-max-lifetime", ConfigValueFactory.fromAnyRef("1h"));

    StartupFailure failure = assertThrows(StartupFailure.class, () -> AuthSettings.from(config));

    assertTrue(failure.getMessage().contains("token-max-lifetime"), failure.getMessage());
  }

  @Test
  void anIdentityProviderNeedsAnIssuerAndAnAudience() {
    Config withUrl =
        profile("dev").withValue("parley.auth.jwks.url", ConfigValueFactory.fromAnyRef("https://id.example/jwks.json"));

    StartupFailure failure = assertThrows(StartupFailure.class, () -> AuthSettings.from(withUrl));
    assertTrue(failure.getMessage().contains("PARLEY_TOKEN_AUDIENCE"), failure.getMessage());

    AuthSettings settings =
        AuthSettings.from(
            withUrl
                .withValue("parley.auth.jwks.issuer", ConfigValueFactory.fromAnyRef("https://id.example"))
                .withValue("parley.auth.jwks.audience", ConfigValueFactory.fromAnyRef("parley")));
    assertTrue(settings.jwks().enabled());
    assertEquals("parley", settings.jwks().audience());
  }

  @Test
  void toStringRedactsSecretAndServerKey() {
    AuthSettings settings =
        new AuthSettings(GOOD_SECRET, Duration.ofHours(1), false, "the-server-key", Duration.ZERO);

    assertFalse(settings.toString().contains(GOOD_SECRET));
    assertFalse(settings.toString().contains("the-server-key"));
  }

  @Test
  void devTokensLiveAsLongAsTheLongestTokenAllowedSoLoweringItKeepsTheNodeStarting() {
    // As PARLEY_TOKEN_MAX_LIFETIME=1h would: the dev tokens follow it down.
    Config lowered = ConfigFactory.parseString("parley.auth.token-max-lifetime = 1h")
        .withFallback(ConfigFactory.parseResources("dev.conf"))
        .resolve(ConfigResolveOptions.noSystem());
    AuthSettings settings = AuthSettings.from(lowered);

    assertEquals(Duration.ofHours(1), settings.tokenMaxLifetime());
    assertEquals(Duration.ofHours(1), settings.tokenTtl());
  }

  /** The shipped profile overlay, without the environment, so a developer's shell can't leak in. */
  private static Config profile(String name) {
    return ConfigFactory.parseResources(name + ".conf").resolve(ConfigResolveOptions.noSystem());
  }

  private static Config withSecret(Config config, String secret) {
    return config.withValue("parley.auth.secret", ConfigValueFactory.fromAnyRef(secret));
  }
}
