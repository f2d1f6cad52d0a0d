package parley.collab.ot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class TextOperationTest {

    private final ObjectMapper json = new ObjectMapper();

    private static TextOperation op(Object... wire) {
        return TextOperation.fromWire(Arrays.asList(wire));
    }

    private static void assertCode(String code, Executable action) {
        InvalidOperationException e = assertThrows(InvalidOperationException.class, action);
        assertEquals(code, e.code(), e.getMessage());
    }

    @Test
    void appliesRetainsInsertsAndDeletesInOrder() {
        TextOperation operation = op(6, "brave new ", -5);
        assertEquals("hello brave new ", operation.apply("hello world"));
        assertEquals(11, operation.baseLength());
        assertEquals(16, operation.targetLength());
    }

    @Test
    void builderMergesAdjacentComponentsAndDropsEmptyOnes() {
        TextOperation operation = TextOperation.builder()
                .retain(2).retain(0).retain(3)
                .insert("ab").insert("").insert("c")
                .delete(1).delete(0).delete(4)
                .build();
        assertEquals(List.of(5, "abc", -5), operation.toWire());
    }

    @Test
    void builderPutsAnInsertBeforeTheDeleteItFollows() {
        assertEquals(List.of(1, "xy", -3), TextOperation.builder().retain(1).delete(3).insert("x").insert("y").build().toWire());
        assertEquals(List.of("xy", -3), TextOperation.builder().insert("x").delete(3).insert("y").build().toWire());
        assertEquals(op(1, -3, "x"), op(1, "x", -3));
    }

    @Test
    void countsUtf16CodeUnitsSoAnEmojiIsTwoLong() {
        String document = "a😀b";
        assertEquals(4, document.length());
        assertEquals("ab", op(1, -2, 1).apply(document));
        assertEquals("a😀🎉b", op(3, "🎉", 1).apply(document));
        assertEquals(4, op(1, "🎉", 1).targetLength());
    }

    @Test
    void refusesToCutASurrogatePairOfTheDocument() {
        assertCode(InvalidOperationException.BAD_OPERATION, () -> op(2, "x", 1).apply("a😀"));
        assertCode(InvalidOperationException.BAD_OPERATION, () -> op(1, -1, 1).apply("a😀"));
        assertCode(InvalidOperationException.BAD_OPERATION, () -> op(2, -1).invert("a😀"));
    }

    @Test
    void refusesAnInsertHoldingALoneSurrogate() {
        assertCode(InvalidOperationException.BAD_OPERATION, () -> op("\uD83D"));
        assertCode(InvalidOperationException.BAD_OPERATION, () -> op("x\uDE00y"));
        assertCode(InvalidOperationException.BAD_OPERATION, () -> TextOperation.builder().insert("\uDE00\uD83D").build());
    }

    @Test
    void acceptsASurrogatePairSplitAcrossBuilderCalls() {
        assertEquals(op("😀"), TextOperation.builder().insert("\uD83D").insert("\uDE00").build());
    }

    @Test
    void refusesToApplyToADocumentOfAnotherLength() {
        InvalidOperationException e = assertThrows(InvalidOperationException.class, () -> op(3, "x").apply("ab"));
        assertEquals("base_length_mismatch", e.code());
        assertEquals("cannot apply: the operation has base length 3 but the document has length 2", e.getMessage());
        assertCode(InvalidOperationException.BASE_LENGTH_MISMATCH, () -> op(3).invert("abcd"));
    }

    @Test
    void refusesToComposeOrTransformOperationsThatDoNotLineUp() {
        assertCode(InvalidOperationException.BASE_LENGTH_MISMATCH, () -> op(2, "x").compose(op(2)));
        assertCode(InvalidOperationException.BASE_LENGTH_MISMATCH, () -> TextOperation.transform(op(2), op(3)));
    }

    @Test
    void refusesMalformedWireComponentsAsBadOperation() {
        List<List<?>> malformed = new ArrayList<>(List.of(
                List.of(0), List.of(1.5), List.of(2.0), List.of(""), List.of(true), List.of(List.of(1)),
                List.of(Map.of("retain", 1)), List.of(3_000_000_000L), List.of(-3_000_000_000L),
                List.of(Integer.MIN_VALUE), List.of(Long.MIN_VALUE),
                List.of(new BigInteger("123456789012345678901234567890"))));
        malformed.add(Arrays.asList(1, null));
        for (List<?> wire : malformed) {
            assertCode(InvalidOperationException.BAD_OPERATION, () -> TextOperation.fromWire(wire));
        }
    }

    @Test
    void refusesAnOperationLongerThanAnyString() {
        assertCode(InvalidOperationException.BAD_OPERATION, () -> op(Integer.MAX_VALUE, -1));
    }

    @Test
    void refusesNegativeLengthsInTheBuilder() {
        assertCode(InvalidOperationException.BAD_OPERATION, () -> TextOperation.builder().retain(-1));
        assertCode(InvalidOperationException.BAD_OPERATION, () -> TextOperation.builder().delete(-1));
        assertCode(InvalidOperationException.BAD_OPERATION, () -> new TextOperation.Insert(""));
    }

    @Test
    void isNoopOnlyWhenItChangesNothing() {
        assertTrue(TextOperation.empty().isNoop());
        assertTrue(op(5).isNoop());
        assertTrue(TextOperation.identity(0).isNoop());
        assertFalse(op(5, "x").isNoop());
        assertFalse(op(-5).isNoop());
    }

    @Test
    void composeHasTheEffectOfBothInTurn() {
        TextOperation first = op(5, " there", 6);
        TextOperation second = op(11, -6, "!");
        TextOperation both = first.compose(second);
        assertEquals("hello there!", both.apply("hello world"));
        assertEquals(op(5, " there!", -6), both);
    }

    @Test
    void composeDropsTextInsertedThenDeleted() {
        assertEquals(op(2), op(1, "xyz", 1).compose(op(1, -3, 1)));
    }

    @Test
    void transformPutsTheFirstOperationsInsertFirstOnATie() {
        TextOperation a = op(1, "A", 1);
        TextOperation b = op(1, "B", 1);
        TextOperation.Transformed t = TextOperation.transform(a, b);
        assertEquals("xABy", t.bPrime().apply(a.apply("xy")));
        assertEquals("xABy", t.aPrime().apply(b.apply("xy")));
    }

    @Test
    void transformLetsBothDeleteTheSameTextOnce() {
        TextOperation a = op(1, -2, 1);
        TextOperation b = op(2, -2);
        TextOperation.Transformed t = TextOperation.transform(a, b);
        assertEquals(op(1, -1), t.aPrime());
        assertEquals(op(1, -1), t.bPrime());
        assertEquals("a", t.aPrime().apply(b.apply("abcd")));
    }

    @Test
    void invertRestoresDeletedTextAndRemovesInsertedText() {
        TextOperation operation = op(1, "xy", -2, 1);
        String document = "a😀b";
        TextOperation inverse = operation.invert(document);
        assertEquals(op(1, "😀", -2, 1), inverse);
        assertEquals(document, inverse.apply(operation.apply(document)));
    }

    @Test
    void writesTheOtJsWireFormAsJson() throws Exception {
        assertEquals("[3,\"h\\\"i\",-2]", json.writeValueAsString(op(3, "h\"i", -2)));
        assertEquals("[3,\"h\\\"i\",-2]", op(3, "h\"i", -2).toString());
    }

    @Test
    void readsTheOtJsWireFormFromJson() throws Exception {
        assertEquals(op(3, "😀", -2), json.readValue("[3,\"\\ud83d\\ude00\",-2]", TextOperation.class));
        assertEquals(TextOperation.empty(), json.readValue("[]", TextOperation.class));
    }

    @Test
    void reportsAMalformedJsonOperationWithItsCode() {
        ValueInstantiationException e = assertThrows(ValueInstantiationException.class,
                () -> json.readValue("[1,0]", TextOperation.class));
        InvalidOperationException cause = assertInstanceOf(InvalidOperationException.class, e.getCause());
        assertEquals(InvalidOperationException.BAD_OPERATION, cause.code());
    }

    @Test
    void reportsAJsonNumberTooLargeForALengthAsBadOperation() {
        ValueInstantiationException e = assertThrows(ValueInstantiationException.class,
                () -> json.readValue("[12345678901234567890123]", TextOperation.class));
        assertEquals(InvalidOperationException.BAD_OPERATION, ((InvalidOperationException) e.getCause()).code());
    }

    @Test
    void roundTripsInsideARecordAsJson() throws Exception {
        Edit edit = new Edit(7, op(2, "x", -1));
        String text = json.writeValueAsString(edit);
        assertEquals("{\"revision\":7,\"operation\":[2,\"x\",-1]}", text);
        assertEquals(edit, json.readValue(text, Edit.class));
    }

    record Edit(long revision, TextOperation operation) {}
}
