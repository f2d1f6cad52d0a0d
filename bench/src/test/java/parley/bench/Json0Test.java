package parley.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import parley.collab.ot.TextOperation;

class Json0Test {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static JsonNode json(String text) throws Exception {
    return JSON.readTree(text.replace('\'', '"'));
  }

  @Test
  void writesEachInsertAndDeleteAtItsOffsetInTheTextTheComponentsBeforeItLeft() throws Exception {
    TextOperation op = TextOperation.builder().retain(1).insert("X").retain(2).delete(2).retain(1).build();
    assertEquals(
        json("[{'p':['text',1],'si':'X'},{'p':['text',4],'sd':'de'}]"),
        Json0.components(op, "abcdef"));
  }

  @Test
  void readsComponentsAppliedOneAfterTheOtherAsOneEdit() throws Exception {
    JsonNode components = json("[{'p':['text',1],'si':'X'},{'p':['text',4],'sd':'de'},{'p':['text',0],'sd':'a'}]");
    TextOperation op = Json0.operation(components, "abcdef");
    assertEquals("Xbcf", op.apply("abcdef"));
    assertEquals(
        json("[{'p':['text',0],'si':'X'},{'p':['text',1],'sd':'a'},{'p':['text',3],'sd':'de'}]"),
        Json0.components(op, "abcdef"));
  }

  @Test
  void refusesWhatIsNotAStringEditOfTheText() throws Exception {
    assertThrows(IllegalArgumentException.class, () -> Json0.operation(json("[{'p':['title',0],'si':'x'}]"), "abc"));
    assertThrows(IllegalArgumentException.class, () -> Json0.operation(json("[{'p':['text',0],'na':1}]"), "abc"));
    assertThrows(IllegalArgumentException.class, () -> Json0.operation(json("[{'p':['text',2],'sd':'cd'}]"), "abc"));
  }
}
