package parley.collab.ot;

/**
 * An operation that cannot be accepted: malformed in itself, or not fitting the document or
 * the other operation it meets. {@link #code()} is the stable machine code that callers put on
 * the wire; the message is for humans.
 */
public final class InvalidOperationException extends RuntimeException {

    /** A component is malformed: zero, not an integer, of the wrong type, empty, or too long. */
    public static final String BAD_OPERATION = "bad_operation";

    /** The operation's base length differs from the document's or the other operation's length. */
    public static final String BASE_LENGTH_MISMATCH = "base_length_mismatch";

    private final String code;

    private InvalidOperationException(String code, String message) {
        super(message);
        this.code = code;
    }

    static InvalidOperationException badOperation(String message) {
        return new InvalidOperationException(BAD_OPERATION, message);
    }

    static InvalidOperationException baseLengthMismatch(String message) {
        return new InvalidOperationException(BASE_LENGTH_MISMATCH, message);
    }

    /** The stable machine code: {@link #BAD_OPERATION} or {@link #BASE_LENGTH_MISMATCH}. */
    public String code() {
        return code;
    }
}
