package parley.transport;

import parley.protocol.ErrorCode;
import parley.protocol.ProtocolException;

/** The REST {@code If-Match} header, as the requests' {@code ifVersion} field reads it. */
public final class IfMatch {

  private IfMatch() {}

  /** {@code "7"} (as an ETag gives it) or {@code 7}; anything else is {@code bad_field}. */
  public static long version(String header) {
    String v = header.trim();
    if (v.startsWith("\"") && v.endsWith("\"") && v.length() >= 2) {
      v = v.substring(1, v.length() - 1);
    }
    try {
      long version = Long.parseLong(v);
      if (version >= 0) {
        return version;
      }
    } catch (NumberFormatException e) {
      // Answered below with the one message.
    }
    throw new ProtocolException(ErrorCode.BAD_FIELD, "If-Match must be a version as its ETag gives it, e.g. \"3\"");
  }
}
