package parley.auth;

import java.util.regex.Pattern;

/**
 * The one rule for user ids, shared by tokens, rooms and the wire protocol: 1 to 64 characters of
 * {@code A-Z a-z 0-9 _ . -}. Narrow on purpose, so an id is safe in URLs, log lines, entity ids and
 * Cassandra keys without escaping.
 */
public final class UserIds {

  public static final int MAX_LENGTH = 64;

  /** The rule in words, for error messages. */
  public static final String RULE = "1 to 64 characters of A-Z a-z 0-9 _ . -";

  private static final Pattern VALID = Pattern.compile("[A-Za-z0-9_.-]{1," + MAX_LENGTH + "}");

  private UserIds() {}

  public static boolean isValid(String userId) {
    return userId != null && VALID.matcher(userId).matches();
  }
}
