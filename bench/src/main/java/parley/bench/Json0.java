package parley.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import parley.collab.ot.TextOperation;

/**
 * Text edits in ShareDB's json0 form, for a document {@code {"text": "…"}}, and back. A json0
 * text operation is a list of components applied one after the other, each at a UTF-16 offset
 * into the text as the components before it left it: {@code {"p":["text",3],"si":"ab"}}
 * inserts, {@code {"p":["text",3],"sd":"ab"}} deletes (naming the text it deletes, which the
 * server checks). The editors of the docs scenario keep their state as {@link TextOperation}s,
 * so a ShareDB editor runs the same client-side OT as Parley's.
 */
final class Json0 {

  static final String FIELD = "text";

  private Json0() {}

  /** The json0 components of {@code op}, which applies to {@code base}. */
  static ArrayNode components(TextOperation op, String base) {
    if (op.baseLength() != base.length()) {
      throw new IllegalArgumentException(
          "the operation applies to " + op.baseLength() + " characters, the text has " + base.length());
    }
    ArrayNode components = JsonNodeFactory.instance.arrayNode();
    int at = 0;
    int read = 0;
    for (TextOperation.Component component : op.components()) {
      if (component instanceof TextOperation.Retain retain) {
        at += retain.n();
        read += retain.n();
      } else if (component instanceof TextOperation.Insert insert) {
        component(components, at).put("si", insert.s());
        at += insert.s().length();
      } else if (component instanceof TextOperation.Delete delete) {
        component(components, at).put("sd", base.substring(read, read + delete.n()));
        read += delete.n();
      }
    }
    return components;
  }

  /**
   * The operation json0 {@code components} make of {@code base}.
   *
   * @throws IllegalArgumentException for a component that is not a string insert or delete of
   *     the text field, or one that does not fit
   */
  static TextOperation operation(JsonNode components, String base) {
    int length = base.length();
    TextOperation op = TextOperation.identity(length);
    for (JsonNode component : components) {
      JsonNode path = component.path("p");
      if (path.size() != 2 || !FIELD.equals(path.get(0).asText()) || !path.get(1).canConvertToInt()) {
        throw new IllegalArgumentException("not an edit of the text: " + component);
      }
      int at = path.get(1).asInt();
      TextOperation step;
      if (component.hasNonNull("si")) {
        String inserted = component.get("si").asText();
        require(at <= length, component);
        step = TextOperation.builder().retain(at).insert(inserted).retain(length - at).build();
        length += inserted.length();
      } else if (component.hasNonNull("sd")) {
        int deleted = component.get("sd").asText().length();
        require(at + deleted <= length, component);
        step = TextOperation.builder().retain(at).delete(deleted).retain(length - at - deleted).build();
        length -= deleted;
      } else {
        throw new IllegalArgumentException("not a string insert or delete: " + component);
      }
      op = op.compose(step);
    }
    return op;
  }

  private static ObjectNode component(ArrayNode components, int at) {
    ObjectNode component = components.addObject();
    component.putArray("p").add(FIELD).add(at);
    return component;
  }

  private static void require(boolean fits, JsonNode component) {
    if (!fits) {
      throw new IllegalArgumentException("the component does not fit the text: " + component);
    }
  }
}
