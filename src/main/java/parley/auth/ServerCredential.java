package parley.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Optional;

/**
 * The application backends' credential for the server publish API: the configured {@code
 * parley.auth.server-key}, presented as {@code Authorization: Bearer <server-key>}. With no key
 * configured the publish API is off and nothing is accepted.
 */
public final class ServerCredential {

  /** No {@code Authorization: Bearer} header on a publish API request. */
  public static final String SERVER_KEY_MISSING = "server_key_missing";

  /** A bearer credential that is not the server key. */
  public static final String SERVER_KEY_INVALID = "server_key_invalid";

  /** SHA-256 of the server key; null when none is configured. */
  private final byte[] expectedDigest;

  private ServerCredential(byte[] expectedDigest) {
    this.expectedDigest = expectedDigest;
  }

  public static ServerCredential from(AuthSettings settings) {
    return new ServerCredential(settings.publishApiEnabled() ? sha256(settings.serverKey()) : null);
  }

  /** A credential for another bearer key (the job workers'); off when {@code key} is empty. */
  public static ServerCredential ofKey(String key) {
    return new ServerCredential(key == null || key.isEmpty() ? null : sha256(key));
  }

  /** Whether a server key is configured, that is whether the publish API is on. */
  public boolean enabled() {
    return expectedDigest != null;
  }

  /**
   * Whether an {@code Authorization} header value (null if absent) carries the server key. Both
   * sides are hashed first, so the comparison takes the same time whatever the presented value's
   * length or content, and leaks neither through timing.
   */
  public boolean accepts(String authorization) {
    Optional<String> presented = Bearer.credentials(authorization);
    return enabled()
        && presented.isPresent()
        && MessageDigest.isEqual(expectedDigest, sha256(presented.get()));
  }

  private static byte[] sha256(String value) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(value.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("Every Java platform has SHA-256", e);
    }
  }

  @Override
  public String toString() {
    return enabled() ? "ServerCredential[configured]" : "ServerCredential[off]";
  }
}
