package parley.collab.ot;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * One edit of a plain-text document, in the model of ot.js: a walk over the whole document
 * that retains, inserts or deletes text, measured in UTF-16 code units (Java {@code char}s,
 * which is also how JavaScript counts).
 *
 * <p>An operation is immutable and always normalized: no zero-length components, adjacent
 * components of one kind merged, and an insert never directly after a delete (the insert is
 * placed first, as ot.js does). Two operations with the same effect therefore have equal
 * components, and {@link #equals} compares them.
 *
 * <p>The wire form (JSON, and CBOR in the journal) is ot.js's: an array where a positive
 * integer retains, a string inserts and a negative integer deletes, e.g. {@code [3,"hi",-2,4]}.
 *
 * <p>Text stays well-formed UTF-16: an insert may not contain a lone surrogate, and
 * {@link #apply} and {@link #invert} refuse an operation that cuts a surrogate pair of the
 * document in half. A document that only ever changed through operations therefore never holds
 * a lone surrogate, which binary formats such as CBOR cannot encode.
 *
 * <p>{@link #transform} is the heart of OT: for two operations made concurrently on the same
 * document it gives versions of each that apply after the other, so both orders meet in the
 * same text.
 */
public final class TextOperation {

    /** One step of the walk over the document. */
    public sealed interface Component permits Retain, Insert, Delete {
        /** Code units this component retains, inserts or deletes. */
        int length();
    }

    /** Keep the next {@code n} code units. */
    public record Retain(int n) implements Component {
        public Retain {
            if (n <= 0) {
                throw InvalidOperationException.badOperation("a retain must be positive, was " + n);
            }
        }

        @Override
        public int length() {
            return n;
        }
    }

    /** Insert {@code s} here. */
    public record Insert(String s) implements Component {
        public Insert {
            if (s == null || s.isEmpty()) {
                throw InvalidOperationException.badOperation("an insert must be a non-empty string");
            }
        }

        @Override
        public int length() {
            return s.length();
        }
    }

    /** Remove the next {@code n} code units. */
    public record Delete(int n) implements Component {
        public Delete {
            if (n <= 0) {
                throw InvalidOperationException.badOperation("a delete must be positive, was " + n);
            }
        }

        @Override
        public int length() {
            return n;
        }
    }

    /**
     * The result of {@link #transform(TextOperation, TextOperation) transform(a, b)}:
     * {@code aPrime} applies after {@code b}, {@code bPrime} applies after {@code a}.
     */
    public record Transformed(TextOperation aPrime, TextOperation bPrime) {}

    private static final TextOperation EMPTY = new TextOperation(List.of(), 0, 0);

    private final List<Component> components;
    private final int baseLength;
    private final int targetLength;

    private TextOperation(List<Component> components, int baseLength, int targetLength) {
        this.components = components;
        this.baseLength = baseLength;
        this.targetLength = targetLength;
    }

    /** The operation on the empty document that does nothing. */
    public static TextOperation empty() {
        return EMPTY;
    }

    /** The operation that leaves a document of {@code length} code units as it is. */
    public static TextOperation identity(int length) {
        return builder().retain(length).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Reads the wire form: positive integer = retain, string = insert, negative integer =
     * delete. Jackson uses this for JSON and CBOR alike.
     *
     * @throws InvalidOperationException with code {@code bad_operation} for a zero, a number
     *     that is not an integer or does not fit an {@code int}, an empty string or any other
     *     type
     */
    @JsonCreator(mode = JsonCreator.Mode.DELEGATING)
    public static TextOperation fromWire(List<?> wire) {
        if (wire == null) {
            throw InvalidOperationException.badOperation("an operation must be an array");
        }
        Builder builder = builder();
        for (int i = 0; i < wire.size(); i++) {
            Object element = wire.get(i);
            if (element instanceof String s) {
                if (s.isEmpty()) {
                    throw InvalidOperationException.badOperation(
                            "component " + i + " is an empty string; inserts must not be empty");
                }
                builder.insert(s);
            } else if (isIntegral(element)) {
                long value = toLongInIntRange(i, (Number) element);
                if (value > 0) {
                    builder.retain((int) value);
                } else if (value < 0) {
                    builder.delete((int) -value);
                } else {
                    throw InvalidOperationException.badOperation(
                            "component " + i + " is 0; retains and deletes must not be zero");
                }
            } else if (element instanceof Number) {
                throw InvalidOperationException.badOperation(
                        "component " + i + " is " + element + "; numbers must be integers");
            } else {
                throw InvalidOperationException.badOperation("component " + i + " is "
                        + describe(element) + "; expected an integer or a string");
            }
        }
        return builder.build();
    }

    private static boolean isIntegral(Object element) {
        return element instanceof Integer || element instanceof Long || element instanceof Short
                || element instanceof Byte || element instanceof BigInteger;
    }

    private static long toLongInIntRange(int index, Number number) {
        // -Integer.MIN_VALUE has no int, so both signs stop at Integer.MAX_VALUE.
        if (number instanceof BigInteger big && big.bitLength() > 31
                || number.longValue() > Integer.MAX_VALUE || number.longValue() < -Integer.MAX_VALUE) {
            throw InvalidOperationException.badOperation(
                    "component " + index + " is " + number + "; too large for a text length");
        }
        return number.longValue();
    }

    private static String describe(Object element) {
        if (element == null) {
            return "null";
        }
        if (element instanceof Boolean) {
            return "a boolean";
        }
        if (element instanceof List) {
            return "an array";
        }
        if (element instanceof Map) {
            return "an object";
        }
        return "a " + element.getClass().getSimpleName();
    }

    /** The wire form, as ot.js writes it; the inverse of {@link #fromWire}. */
    @JsonValue
    public List<Object> toWire() {
        List<Object> wire = new ArrayList<>(components.size());
        for (Component component : components) {
            wire.add(wireValue(component));
        }
        return wire;
    }

    private static Object wireValue(Component component) {
        if (component instanceof Insert i) {
            return i.s();
        }
        return component instanceof Delete d ? -d.n() : component.length();
    }

    /** The normalized components, in document order. */
    public List<Component> components() {
        return components;
    }

    /** Length of the document this operation applies to. */
    public int baseLength() {
        return baseLength;
    }

    /** Length of the document this operation produces. */
    public int targetLength() {
        return targetLength;
    }

    /** True when applying this operation leaves every document it fits unchanged. */
    public boolean isNoop() {
        return components.isEmpty() || components.size() == 1 && components.get(0) instanceof Retain;
    }

    /**
     * Applies this operation to {@code document}.
     *
     * @throws InvalidOperationException {@code base_length_mismatch} if the document is not
     *     {@link #baseLength()} long; {@code bad_operation} if the operation cuts a surrogate pair
     */
    public String apply(String document) {
        requireFits(document, "apply");
        StringBuilder result = new StringBuilder(targetLength);
        int index = 0;
        for (Component component : components) {
            if (component instanceof Retain r) {
                result.append(document, index, index + r.n());
                index += r.n();
            } else if (component instanceof Insert i) {
                result.append(i.s());
            } else {
                index += component.length();
            }
        }
        return result.toString();
    }

    /**
     * The operation that undoes this one: applied to {@code apply(document)} it gives
     * {@code document} back.
     *
     * @param document the document this operation applies to (deleted text is taken from it)
     * @throws InvalidOperationException as {@link #apply}
     */
    public TextOperation invert(String document) {
        requireFits(document, "invert");
        Builder inverse = builder();
        int index = 0;
        for (Component component : components) {
            if (component instanceof Retain r) {
                inverse.retain(r.n());
                index += r.n();
            } else if (component instanceof Insert i) {
                inverse.delete(i.s().length());
            } else {
                inverse.insert(document.substring(index, index + component.length()));
                index += component.length();
            }
        }
        return inverse.build();
    }

    private void requireFits(String document, String verb) {
        if (document.length() != baseLength) {
            throw InvalidOperationException.baseLengthMismatch("cannot " + verb + ": the operation has base length "
                    + baseLength + " but the document has length " + document.length());
        }
        int index = 0;
        for (Component component : components) {
            requireNotInsidePair(document, index);
            if (!(component instanceof Insert)) {
                index += component.length();
            }
        }
        requireNotInsidePair(document, index);
    }

    private static void requireNotInsidePair(String document, int index) {
        if (index > 0 && index < document.length()
                && Character.isHighSurrogate(document.charAt(index - 1))
                && Character.isLowSurrogate(document.charAt(index))) {
            throw InvalidOperationException.badOperation(
                    "the operation cuts the surrogate pair at code units " + (index - 1) + "-" + index);
        }
    }

    /**
     * The single operation with the effect of this one followed by {@code next}.
     *
     * @throws InvalidOperationException {@code base_length_mismatch} unless {@code next}'s base
     *     length is this operation's target length
     */
    public TextOperation compose(TextOperation next) {
        if (targetLength != next.baseLength) {
            throw InvalidOperationException.baseLengthMismatch("cannot compose an operation of target length "
                    + targetLength + " with one of base length " + next.baseLength);
        }
        Builder composed = builder();
        Cursor first = new Cursor(components);
        Cursor second = new Cursor(next.components);
        while (first.head() != null || second.head() != null) {
            // The first operation's deletes touch text the second never sees, and the second's
            // inserts touch text the first never made: both pass straight through.
            if (first.head() instanceof Delete d) {
                composed.delete(d.n());
                first.next();
                continue;
            }
            if (second.head() instanceof Insert i) {
                composed.insert(i.s());
                second.next();
                continue;
            }
            Component x = first.require();
            Component y = second.require();
            int n = Math.min(x.length(), y.length());
            if (x instanceof Retain) {
                if (y instanceof Retain) {
                    composed.retain(n);
                } else {
                    composed.delete(n);
                }
            } else if (y instanceof Retain) {
                composed.insert(((Insert) x).s().substring(0, n));
            }
            // Otherwise the first inserted text the second deletes: it never existed.
            first.take(n);
            second.take(n);
        }
        return composed.build();
    }

    /**
     * Transforms two operations made concurrently on the same document, so that
     * {@code b.then(aPrime)} and {@code a.then(bPrime)} produce the same text.
     *
     * <p>When both insert at the same position, {@code a}'s text comes first, whichever order
     * the results are applied in. Every caller must therefore put the same side first: on the
     * server and in {@link OtClient} the client's operation is {@code a} and the operation the
     * server already applied is {@code b}.
     *
     * @throws InvalidOperationException {@code base_length_mismatch} unless both have the same
     *     base length
     */
    public static Transformed transform(TextOperation a, TextOperation b) {
        if (a.baseLength != b.baseLength) {
            throw InvalidOperationException.baseLengthMismatch("cannot transform an operation of base length "
                    + a.baseLength + " against one of base length " + b.baseLength);
        }
        Builder aPrime = builder();
        Builder bPrime = builder();
        Cursor left = new Cursor(a.components);
        Cursor right = new Cursor(b.components);
        while (left.head() != null || right.head() != null) {
            if (left.head() instanceof Insert i) {
                aPrime.insert(i.s());
                bPrime.retain(i.s().length());
                left.next();
                continue;
            }
            if (right.head() instanceof Insert i) {
                aPrime.retain(i.s().length());
                bPrime.insert(i.s());
                right.next();
                continue;
            }
            Component x = left.require();
            Component y = right.require();
            int n = Math.min(x.length(), y.length());
            if (x instanceof Retain && y instanceof Retain) {
                aPrime.retain(n);
                bPrime.retain(n);
            } else if (x instanceof Delete && y instanceof Retain) {
                aPrime.delete(n);
            } else if (x instanceof Retain && y instanceof Delete) {
                bPrime.delete(n);
            }
            // Deleted by both: already gone on either side, so neither result mentions it.
            left.take(n);
            right.take(n);
        }
        return new Transformed(aPrime.build(), bPrime.build());
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof TextOperation that && components.equals(that.components);
    }

    @Override
    public int hashCode() {
        return components.hashCode();
    }

    /** The wire form, e.g. {@code [3,"hi",-2]}. */
    @Override
    public String toString() {
        StringBuilder text = new StringBuilder("[");
        for (Component component : components) {
            if (text.length() > 1) {
                text.append(',');
            }
            if (component instanceof Insert i) {
                text.append('"').append(i.s().replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
            } else {
                text.append(wireValue(component));
            }
        }
        return text.append(']').toString();
    }

    /** Walks a component list, consuming components in parts. */
    private static final class Cursor {
        private final List<Component> components;
        private int index;
        private Component head;

        Cursor(List<Component> components) {
            this.components = components;
            next();
        }

        Component head() {
            return head;
        }

        Component require() {
            if (head == null) {
                throw new IllegalStateException("operation ended early although lengths matched");
            }
            return head;
        }

        void next() {
            head = index < components.size() ? components.get(index++) : null;
        }

        void take(int n) {
            if (n == head.length()) {
                next();
                return;
            }
            int rest = head.length() - n;
            if (head instanceof Retain) {
                head = new Retain(rest);
            } else if (head instanceof Insert i) {
                head = new Insert(i.s().substring(n));
            } else {
                head = new Delete(rest);
            }
        }
    }

    /**
     * Builds a normalized operation. Zero-length components are ignored, so algorithms can
     * emit them freely; negative lengths are rejected.
     */
    public static final class Builder {
        private final List<Component> components = new ArrayList<>();
        private int baseLength;
        private int targetLength;

        private Builder() {}

        public Builder retain(int n) {
            requireNotNegative(n, "retain");
            if (n == 0) {
                return this;
            }
            baseLength = add(baseLength, n);
            targetLength = add(targetLength, n);
            if (last(1) instanceof Retain r) {
                components.set(components.size() - 1, new Retain(add(r.n(), n)));
            } else {
                components.add(new Retain(n));
            }
            return this;
        }

        public Builder insert(String s) {
            if (s == null) {
                throw InvalidOperationException.badOperation("an insert must be a string");
            }
            if (s.isEmpty()) {
                return this;
            }
            targetLength = add(targetLength, s.length());
            if (last(1) instanceof Insert i) {
                components.set(components.size() - 1, new Insert(i.s() + s));
            } else if (last(1) instanceof Delete) {
                // Insert-then-delete and delete-then-insert mean the same; keeping one order
                // makes equal operations equal component by component.
                if (last(2) instanceof Insert i) {
                    components.set(components.size() - 2, new Insert(i.s() + s));
                } else {
                    components.add(components.size() - 1, new Insert(s));
                }
            } else {
                components.add(new Insert(s));
            }
            return this;
        }

        public Builder delete(int n) {
            requireNotNegative(n, "delete");
            if (n == 0) {
                return this;
            }
            baseLength = add(baseLength, n);
            if (last(1) instanceof Delete d) {
                components.set(components.size() - 1, new Delete(add(d.n(), n)));
            } else {
                components.add(new Delete(n));
            }
            return this;
        }

        /**
         * @throws InvalidOperationException {@code bad_operation} if an insert holds a lone
         *     surrogate
         */
        public TextOperation build() {
            for (Component component : components) {
                if (component instanceof Insert i) {
                    requireWellFormed(i.s());
                }
            }
            return new TextOperation(Collections.unmodifiableList(new ArrayList<>(components)),
                    baseLength, targetLength);
        }

        private Component last(int fromEnd) {
            int index = components.size() - fromEnd;
            return index >= 0 ? components.get(index) : null;
        }

        private static void requireNotNegative(int n, String kind) {
            if (n < 0) {
                throw InvalidOperationException.badOperation("cannot " + kind + " a negative length " + n);
            }
        }

        private static int add(int a, int b) {
            try {
                return Math.addExact(a, b);
            } catch (ArithmeticException overflow) {
                throw InvalidOperationException.badOperation("the operation is too long");
            }
        }

        private static void requireWellFormed(String s) {
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (Character.isHighSurrogate(c) && i + 1 < s.length()
                        && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                } else if (Character.isSurrogate(c)) {
                    throw InvalidOperationException.badOperation(
                            "an insert holds a lone surrogate at code unit " + i);
                }
            }
        }
    }
}
