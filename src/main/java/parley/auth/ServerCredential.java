package parley.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
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

  /** The key's UTF-8 bytes; null when none is configured. */
  private final byte[] expected;

  private ServerCredential(byte[] expected) {
    this.expected = expected;
  }

  public static ServerCredential from(AuthSettings settings) {
    return ofKey(settings.publishApiEnabled() ? settings.serverKey() : null);
  }

  /** A credential for another bearer key (the job workers'); off when {@code key} is empty. */
  public static ServerCredential ofKey(String key) {
    return new ServerCredential(key == null || key.isEmpty() ? null : key.getBytes(StandardCharsets.UTF_8));
  }

  /** Whether a server key is configured, that is whether the publish API is on. */
  public boolean enabled() {
    return expected != null;
  }

  /**
   * Whether an {@code Authorization} header value (null if absent) carries the server key.
   * {@link MessageDigest#isEqual} takes a time that depends only on the key's length, not on
   * the presented value's length or content. Not hashing both sides first: every WebSocket open
   * compares its token with the worker key, and that SHA-256 was 6% of the node's CPU samples
   * while connections opened.
   */
  public boolean accepts(String authorization) {
    Optional<String> presented = Bearer.credentials(authorization);
    return enabled()
        && presented.isPresent()
        && MessageDigest.isEqual(expected, presented.get().getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public String toString() {
    return enabled() ? "ServerCredential[configured]" : "ServerCredential[off]";
  }
}
