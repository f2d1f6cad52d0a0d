package parley.collab.ot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.cbor.databind.CBORMapper;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

class TextOperationPropertiesTest {

    private final ObjectMapper json = new ObjectMapper();
    private final ObjectMapper cbor = new CBORMapper();

    /** A document and one operation on it. */
    record Edit(String document, TextOperation operation) {}

    /** A document and two operations made on it concurrently. */
    record Concurrent(String document, TextOperation a, TextOperation b) {}

    /** A document, an operation on it, and an operation on the result. */
    record Sequential(String document, TextOperation first, TextOperation second) {}

    @Provide
    Arbitrary<Edit> edits() {
        return RandomEdits.documents().flatMap(document ->
                RandomEdits.operationsOn(document).map(operation -> new Edit(document, operation)));
    }

    @Provide
    Arbitrary<Concurrent> concurrentEdits() {
        return RandomEdits.documents().flatMap(document -> Combinators
                .combine(RandomEdits.operationsOn(document), RandomEdits.operationsOn(document))
                .as((a, b) -> new Concurrent(document, a, b)));
    }

    @Provide
    Arbitrary<Sequential> sequentialEdits() {
        return edits().flatMap(edit -> RandomEdits.operationsOn(edit.operation().apply(edit.document()))
                .map(second -> new Sequential(edit.document(), edit.operation(), second)));
    }

    @Property
    void applyingGivesTextOfTheTargetLength(@ForAll("edits") Edit edit) {
        assertEquals(edit.document().length(), edit.operation().baseLength());
        assertEquals(edit.operation().targetLength(), edit.operation().apply(edit.document()).length());
    }

    @Property
    void concurrentOperationsConvergeWhicheverOrderTheyApplyIn(@ForAll("concurrentEdits") Concurrent edits) {
        TextOperation.Transformed t = TextOperation.transform(edits.a(), edits.b());
        String aThenB = t.bPrime().apply(edits.a().apply(edits.document()));
        String bThenA = t.aPrime().apply(edits.b().apply(edits.document()));
        assertEquals(aThenB, bThenA);
        assertWellFormed(aThenB);
    }

    @Property
    void transformedPairsComposeToTheSameOperation(@ForAll("concurrentEdits") Concurrent edits) {
        TextOperation.Transformed t = TextOperation.transform(edits.a(), edits.b());
        assertEquals(edits.a().compose(t.bPrime()), edits.b().compose(t.aPrime()));
    }

    @Property
    void transformingAgainstANoopChangesNothing(@ForAll("edits") Edit edit) {
        TextOperation noop = TextOperation.identity(edit.document().length());
        TextOperation.Transformed t = TextOperation.transform(edit.operation(), noop);
        assertEquals(edit.operation(), t.aPrime());
        assertTrue(t.bPrime().isNoop());
    }

    @Property
    void composingAgreesWithApplyingInSequence(@ForAll("sequentialEdits") Sequential edits) {
        TextOperation both = edits.first().compose(edits.second());
        assertEquals(edits.second().apply(edits.first().apply(edits.document())), both.apply(edits.document()));
        assertEquals(edits.first().baseLength(), both.baseLength());
        assertEquals(edits.second().targetLength(), both.targetLength());
    }

    @Property
    void invertUndoes(@ForAll("edits") Edit edit) {
        String after = edit.operation().apply(edit.document());
        TextOperation inverse = edit.operation().invert(edit.document());
        assertEquals(edit.document(), inverse.apply(after));
        assertEquals(edit.operation(), inverse.invert(after));
    }

    @Property
    void operationsAreAlwaysNormalized(@ForAll("edits") Edit edit) {
        List<TextOperation.Component> components = edit.operation().components();
        for (int i = 1; i < components.size(); i++) {
            TextOperation.Component before = components.get(i - 1);
            TextOperation.Component after = components.get(i);
            assertFalse(before.getClass() == after.getClass(), () -> "adjacent alike in " + edit.operation());
            assertFalse(before instanceof TextOperation.Delete && after instanceof TextOperation.Insert,
                    () -> "insert after delete in " + edit.operation());
        }
    }

    @Property
    void builderNormalizationKeepsTheMeaningOfTheRawComponents(@ForAll("edits") Edit edit,
            @ForAll("splits") List<Integer> cuts) {
        // Cut every component into pieces and feed them to a builder one by one; the result
        // must be the same normalized operation.
        TextOperation.Builder rebuilt = TextOperation.builder();
        int cut = 0;
        for (TextOperation.Component component : edit.operation().components()) {
            int piece = Math.min(component.length(), cuts.isEmpty() ? 1 : 1 + cuts.get(cut++ % cuts.size()));
            for (int from = 0; from < component.length(); from += piece) {
                int to = Math.min(component.length(), from + piece);
                if (component instanceof TextOperation.Insert i) {
                    rebuilt.insert(i.s().substring(from, to));
                } else if (component instanceof TextOperation.Delete) {
                    rebuilt.delete(to - from);
                } else {
                    rebuilt.retain(to - from);
                }
            }
        }
        assertEquals(edit.operation(), rebuilt.build());
    }

    @Provide
    Arbitrary<List<Integer>> splits() {
        return Arbitraries.integers().between(0, 3).list().ofMaxSize(5);
    }

    @Property
    void wireFormRoundTrips(@ForAll("edits") Edit edit) {
        List<Object> wire = new ArrayList<>(edit.operation().toWire());
        assertEquals(edit.operation(), TextOperation.fromWire(wire));
    }

    @Property
    void jsonRoundTrips(@ForAll("edits") Edit edit) throws Exception {
        String text = json.writeValueAsString(edit.operation());
        assertEquals(edit.operation(), json.readValue(text, TextOperation.class));
    }

    @Property
    void cborRoundTrips(@ForAll("edits") Edit edit) throws Exception {
        byte[] bytes = cbor.writeValueAsBytes(edit.operation());
        assertEquals(edit.operation(), cbor.readValue(bytes, TextOperation.class));
    }

    private static void assertWellFormed(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c)) {
                assertTrue(i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1)), text);
                i++;
            } else {
                assertFalse(Character.isLowSurrogate(c), text);
            }
        }
    }
}
