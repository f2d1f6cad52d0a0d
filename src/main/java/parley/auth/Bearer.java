package parley.auth;

import java.util.Optional;

/** Reads the credentials of an {@code Authorization: Bearer <credentials>} value (RFC 6750). */
final class Bearer {

  private static final String SCHEME = "Bearer";

  private Bearer() {}

  /** The credentials, or empty for another scheme (say a proxy's Basic) or none at all. */
  static Optional<String> credentials(String authorization) {
    if (authorization == null) {
      return Optional.empty();
    }
    String value = authorization.strip();
    // The scheme is case-insensitive (RFC 9110 §11.1).
    if (value.length() <= SCHEME.length()
        || !value.regionMatches(true, 0, SCHEME, 0, SCHEME.length())
        || !Character.isWhitespace(value.charAt(SCHEME.length()))) {
      return Optional.empty();
    }
    String credentials = value.substring(SCHEME.length()).strip();
    return credentials.isEmpty() ? Optional.empty() : Optional.of(credentials);
  }
}
