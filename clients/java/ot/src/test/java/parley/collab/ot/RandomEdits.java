package parley.collab.ot;

import java.util.List;
import java.util.Random;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;

/** Random documents and random operations on them, never cutting a surrogate pair. */
final class RandomEdits {

    /** Characters to build text from: ASCII, a BMP letter, quotes, and astral emoji and music. */
    private static final List<String> CHARACTERS = List.of("a", "b", "c", " ", "\n", "é", "\"", "😀", "𝄞");

    private RandomEdits() {}

    static Arbitrary<String> documents() {
        return Arbitraries.of(CHARACTERS).list().ofMaxSize(24).map(parts -> String.join("", parts));
    }

    static Arbitrary<TextOperation> operationsOn(String document) {
        return Arbitraries.randomValue(random -> operationOn(document, random));
    }

    static String text(Random random) {
        StringBuilder text = new StringBuilder();
        int characters = 1 + random.nextInt(4);
        for (int i = 0; i < characters; i++) {
            text.append(CHARACTERS.get(random.nextInt(CHARACTERS.size())));
        }
        return text.toString();
    }

    /** An operation fitting {@code document}, mixing retains, inserts and deletes. */
    static TextOperation operationOn(String document, Random random) {
        TextOperation.Builder operation = TextOperation.builder();
        int index = 0;
        while (index < document.length()) {
            int end = index;
            int characters = 1 + random.nextInt(4);
            for (int i = 0; i < characters && end < document.length(); i++) {
                end += Character.charCount(document.codePointAt(end));
            }
            switch (random.nextInt(5)) {
                case 0, 1 -> {
                    operation.retain(end - index);
                    index = end;
                }
                case 2, 3 -> {
                    operation.delete(end - index);
                    index = end;
                }
                default -> operation.insert(text(random));
            }
        }
        if (random.nextBoolean()) {
            operation.insert(text(random));
        }
        return operation.build();
    }
}
