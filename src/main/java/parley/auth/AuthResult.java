package parley.auth;

import java.time.Instant;

/** The outcome of checking a client's token: who the client is, or why it is refused. */
public sealed interface AuthResult {

  /**
   * A verified token for {@code userId}, which satisfies {@link UserIds#isValid}, valid until
   * {@code expiresAt} (its {@code exp}).
   */
  record Authenticated(String userId, Instant expiresAt) implements AuthResult {}

  /**
   * A refused token. {@code code} is the stable contract clients switch on; {@code message} is for
   * people.
   */
  record AuthFailure(String code, String message) implements AuthResult {
    /** No token was presented in any of the places a client may put one. */
    public static final String TOKEN_MISSING = "token_missing";

    /** Not a parseable JWT, or a JWT whose claims are not a JSON object. */
    public static final String TOKEN_MALFORMED = "token_malformed";

    /**
     * Bad signature, an algorithm other than HS256 or (with an identity provider) RS256 and ES256
     * (including none), no key for its {@code kid}, the wrong issuer or audience, no expiry, or a
     * {@code nbf} still in the future.
     */
    public static final String TOKEN_INVALID = "token_invalid";

    /** Past its {@code exp}, allowing for clock skew. */
    public static final String TOKEN_EXPIRED = "token_expired";

    /** Its {@code exp} is further from its {@code iat} than the node's maximum token lifetime. */
    public static final String TOKEN_LIFETIME_TOO_LONG = "token_lifetime_too_long";

    /** Its {@code iat} is in the future, beyond the allowed clock skew. */
    public static final String TOKEN_ISSUED_IN_FUTURE = "token_issued_in_future";

    /** The {@code sub} claim is missing or not a valid user id. */
    public static final String BAD_USER_ID = "bad_user_id";
  }
}
