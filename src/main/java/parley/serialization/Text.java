package parley.serialization;

/** Text the journal can hold: well-formed UTF-16 (CBOR encodes only Unicode strings), and its UTF-8 size. */
public final class Text {

  private Text() {}

  /**
   * True when every surrogate is half of a pair. A lone surrogate is valid JSON ({@code
   * "\ud800"}) but not a Unicode string: the journal's CBOR cannot encode it, so it must be
   * refused before it reaches an entity, or the entity's write would fail.
   */
  public static boolean isWellFormed(String text) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c)) {
        if (i + 1 >= text.length() || !Character.isLowSurrogate(text.charAt(i + 1))) {
          return false;
        }
        i++;
      } else if (Character.isLowSurrogate(c)) {
        return false;
      }
    }
    return true;
  }

  /** The UTF-8 length of well-formed text, without encoding it. */
  public static long utf8Length(String text) {
    long bytes = 0;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c < 0x80) {
        bytes += 1;
      } else if (c < 0x800) {
        bytes += 2;
      } else if (Character.isHighSurrogate(c)) {
        bytes += 4;
        i++;
      } else {
        bytes += 3;
      }
    }
    return bytes;
  }
}
