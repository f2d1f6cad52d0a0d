package parley.collab.document;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.function.Executable;
import parley.collab.ot.InvalidOperationException;
import parley.collab.ot.OtClient;
import parley.collab.ot.TextOperation;

/**
 * The server's side of docs/ot-vectors.json, the cases the TypeScript package's OT
 * (clients/js/test/ot.test.js) is held to as well: every expected output there must be what
 * TextOperation, OtClient and the cursor rule give, so neither implementation can change
 * without the other's tests noticing. It lives beside DocumentEntity because the cursor rule,
 * {@link DocumentEntity#transformIndex}, is that class's.
 */
class OtVectorsTest {

  private static final Path BASE = Path.of(System.getProperty("parley.base.dir", "."));
  private static final ObjectMapper JSON = new ObjectMapper();

  private static JsonNode vectors;

  @BeforeAll
  static void readVectors() throws IOException {
    vectors = JSON.readTree(BASE.resolve("docs/ot-vectors.json").toFile());
  }

  @TestFactory
  Stream<DynamicTest> readsAndNormalizesTheWireForm() {
    return cases("normalize", c -> expect(c, () -> assertEquals(c.get("op"), wire(op(c.get("wire"))))));
  }

  @TestFactory
  Stream<DynamicTest> appliesOperations() {
    return cases("apply", c -> expect(c, () -> assertEquals(c.path("result").asText(), op(c.get("op")).apply(c.get("doc").asText()))));
  }

  @TestFactory
  Stream<DynamicTest> invertsOperations() {
    return cases("invert", c -> assertEquals(c.get("result"), wire(op(c.get("op")).invert(c.get("doc").asText()))));
  }

  @TestFactory
  Stream<DynamicTest> composesOperations() {
    return cases("compose", c -> expect(c, () -> {
      TextOperation composed = op(c.get("a")).compose(op(c.get("b")));
      assertEquals(c.get("result"), wire(composed));
      assertEquals(c.get("text").asText(), composed.apply(c.get("doc").asText()));
    }));
  }

  @TestFactory
  Stream<DynamicTest> transformsConcurrentOperations() {
    return cases("transform", c -> expect(c, () -> {
      TextOperation a = op(c.get("a"));
      TextOperation b = op(c.get("b"));
      TextOperation.Transformed transformed = TextOperation.transform(a, b);
      assertEquals(c.get("aPrime"), wire(transformed.aPrime()));
      assertEquals(c.get("bPrime"), wire(transformed.bPrime()));
      String doc = c.get("doc").asText();
      assertEquals(c.get("text").asText(), transformed.aPrime().apply(b.apply(doc)));
      assertEquals(c.get("text").asText(), transformed.bPrime().apply(a.apply(doc)));
    }));
  }

  @TestFactory
  Stream<DynamicTest> movesCursorsPastOperations() {
    return cases("transformIndex", c ->
        assertEquals(c.get("result").asInt(), DocumentEntity.transformIndex(c.get("index").asInt(), op(c.get("op")))));
  }

  @TestFactory
  Stream<DynamicTest> runsTheClientStateMachine() {
    return cases("client", c -> {
      OtClient state = OtClient.synced();
      String text = c.get("doc").asText();
      int number = 0;
      for (JsonNode step : c.get("steps")) {
        String where = "step " + ++number;
        if (step.has("local")) {
          TextOperation edit = op(step.get("local"));
          text = edit.apply(text);
          OtClient.Outgoing out = state.applyClient(edit);
          state = out.state();
          assertEquals(step.get("send"), out.send().map(OtVectorsTest::wire).orElse(JSON.nullNode()), where);
        } else if (step.has("server")) {
          OtClient.Incoming in = state.applyServer(op(step.get("server")));
          state = in.state();
          text = in.apply().apply(text);
          assertEquals(step.get("apply"), wire(in.apply()), where);
        } else {
          OtClient.Outgoing out = state.serverAck();
          state = out.state();
          assertEquals(step.get("send"), out.send().map(OtVectorsTest::wire).orElse(JSON.nullNode()), where);
        }
        assertEquals(step.get("text").asText(), text, where);
        assertEquals(step.get("state"), describe(state), where);
      }
    });
  }

  private static Stream<DynamicTest> cases(String section, Consumer<JsonNode> check) {
    JsonNode cases = vectors.get(section);
    assertTrue(cases != null && cases.size() > 0, "docs/ot-vectors.json has no " + section + " cases");
    List<DynamicTest> tests = new ArrayList<>();
    cases.forEach(c -> tests.add(DynamicTest.dynamicTest(section + ": " + c.get("name").asText(), () -> check.accept(c))));
    return tests.stream();
  }

  /** Runs {@code check}, or expects the refusal the case names in {@code error}. */
  private static void expect(JsonNode c, Executable check) {
    if (!c.has("error")) {
      try {
        check.execute();
      } catch (RuntimeException | Error e) {
        throw e;
      } catch (Throwable e) {
        throw new AssertionError(e);
      }
      return;
    }
    InvalidOperationException refused = assertThrows(InvalidOperationException.class, check);
    assertEquals(c.get("error").asText(), refused.code(), refused.getMessage());
  }

  private static TextOperation op(JsonNode wire) {
    // As Jackson hands the wire form to TextOperation on the server: integers as Integer or
    // Long, fractions as Double.
    return TextOperation.fromWire(JSON.convertValue(wire, List.class));
  }

  private static JsonNode wire(TextOperation op) {
    return JSON.valueToTree(op.toWire());
  }

  private static JsonNode describe(OtClient state) {
    var node = JSON.createObjectNode();
    if (state instanceof OtClient.AwaitingConfirm waiting) {
      node.put("kind", "awaitingConfirm").set("outstanding", wire(waiting.outstanding()));
    } else if (state instanceof OtClient.AwaitingWithBuffer waiting) {
      node.put("kind", "awaitingWithBuffer").set("outstanding", wire(waiting.outstanding()));
      node.set("buffer", wire(waiting.buffer()));
    } else {
      node.put("kind", "synchronized");
    }
    return node;
  }
}
